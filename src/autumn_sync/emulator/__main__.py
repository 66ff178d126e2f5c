"""`python -m autumn_sync.emulator --port 12111 [...]`: serve the emulator until Ctrl-C
(SIGINT) or SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from autumn_sync.emulator.server import Emulator


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m autumn_sync.emulator",
        description="Serve a stateful Stripe API emulator for autumn-sync's tests and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=12111, help="port to bind; 0 picks one")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay per request")
    parser.add_argument("--rate-limit", type=float, default=None, help="requests per second")
    parser.add_argument(
        "--meter-event-rate-limit",
        type=float,
        default=None,
        help="meter events per second (off: they count toward --rate-limit only)",
    )
    parser.add_argument("--fault-rate", type=float, default=0.0, help="fraction answered 500")
    parser.add_argument(
        "--drop-rate", type=float, default=0.0, help="fraction done but left unanswered"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for ids and faults")
    parser.add_argument(
        "--webhook-url", default=None, help="POST signed events (subscriptions, invoices) here"
    )
    parser.add_argument(
        "--webhook-secret",
        default=os.environ.get("STRIPE_WEBHOOK_SECRET"),
        help="the endpoint's signing secret [STRIPE_WEBHOOK_SECRET]",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Start the emulator, print its URL on one line, and serve until interrupted."""
    args = parse_args(argv)
    try:
        emulator = Emulator(
            host=args.host,
            port=args.port,
            latency_ms=args.latency_ms,
            rate_limit=args.rate_limit,
            meter_event_rate_limit=args.meter_event_rate_limit,
            fault_rate=args.fault_rate,
            drop_rate=args.drop_rate,
            seed=args.seed,
            webhook_url=args.webhook_url,
            webhook_secret=args.webhook_secret,
        )
        emulator.bind()
    except (OSError, ValueError) as exc:
        print(f"emulator: {exc}", file=sys.stderr)
        return 1
    print(emulator.url, flush=True)
    _stop_on_signals()
    with contextlib.suppress(KeyboardInterrupt):
        emulator.serve_forever()
    return 0


def _stop_on_signals() -> None:
    """Ctrl-C (SIGINT) and SIGTERM stop serving, also when the process was started with
    SIGINT ignored (Python then leaves it ignored: a shell's background job, some CI
    runners)."""

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


if __name__ == "__main__":
    sys.exit(main())
