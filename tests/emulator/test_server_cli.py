"""`python -m autumn_sync.emulator` as a separate process, answering the real client."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
import stripe

from autumn_sync.emulator.__main__ import parse_args


@pytest.fixture(params=[False, True], ids=["sigint", "sigint-ignored-by-the-parent"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The emulator started as a subprocess on a free port, and the URL it printed; also as
    a background job of a shell starts it, with SIGINT ignored (it must still stop)."""
    # -X faulthandler: if the server ever hangs on exit, SIGABRT prints where every thread is
    command = [sys.executable, "-X", "faulthandler", "-m", "autumn_sync.emulator"]
    command += ["--port", "0", "--seed", "3"]

    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    setup = ignore_sigint if request.param else None
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=setup
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_subprocess_serves_requests(server: tuple[subprocess.Popen[str], str]) -> None:
    process, url = server
    assert url.startswith("http://127.0.0.1:")
    client = stripe.StripeClient("sk_test_cli", base_addresses={"api": url})
    product = client.v1.products.create(params={"name": "From the CLI"})
    assert client.v1.products.retrieve(product.id).name == "From the CLI"
    process.send_signal(signal.SIGINT)
    try:
        code = process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        _, stderr = process.communicate(timeout=10)
        pytest.fail(f"the emulator did not exit on SIGINT; its threads:\n{stderr}")
    assert code == 0


def test_options() -> None:
    args = parse_args(
        ["--port", "12111", "--latency-ms", "250", "--rate-limit", "100", "--fault-rate", "0.1"]
    )
    assert (args.port, args.host, args.latency_ms, args.rate_limit, args.fault_rate) == (
        12111,
        "127.0.0.1",
        250.0,
        100.0,
        0.1,
    )
    assert (args.drop_rate, args.seed) == (0.0, None)


def test_bad_option_value_exits_nonzero() -> None:
    command = [sys.executable, "-m", "autumn_sync.emulator", "--port", "0", "--fault-rate", "2"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert finished.returncode == 1
    assert "fault_rate" in finished.stderr


def test_the_package_does_not_import_stripe() -> None:
    code = "import sys, autumn_sync.emulator.__main__; print('stripe' in sys.modules)"
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert finished.stdout.strip() == "False"
