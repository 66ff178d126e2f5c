"""Benchmark of applying a catalog to Stripe under a rate limit (DESIGN §7).

Run from the repository root:

    python benchmarks/stripe_apply.py            # >= 1,000 writes, 250 ms latency, 100 req/s
    python benchmarks/stripe_apply.py --writes 2000 --workers 48
    python benchmarks/stripe_apply.py --latency-ms 50 --rate-limit 25

It starts the Stripe emulator in this process with the given latency (each request, 429s
included, takes that long) and rate limit (a token bucket: `--rate-limit` requests a second,
one second's worth of burst; over it the emulator answers 429), generates a catalog with
`benchmarks/catalog.py` big enough to need at least `--writes` Stripe writes, applies it to a
temporary SQLite database and the emulator, and prints:

- writes: the Stripe writes the apply did (POSTs the emulator carried out);
- wall time of the apply (database transaction and Stripe changes);
- achieved requests/s: the requests the emulator let through (everything but the 429s) per
  second of apply, and that rate as a fraction of the limit (target: at least 0.8);
- the 429s seen, the other retries, and the failed changes (must be 0);
- whether the plan after the apply is empty (it must be: the apply converged).

The exit status is 1 when the target is missed, a change failed or the plan is not empty.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):  # run as `python benchmarks/stripe_apply.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autumn_sync.config import load_text
from autumn_sync.database.engine import connect
from autumn_sync.emulator import DEFAULT_API_KEY, Emulator
from autumn_sync.model.address import Target
from autumn_sync.model.state import State
from autumn_sync.pipeline import apply_plan, make_plan
from autumn_sync.stripe.executor import DEFAULT_WORKERS, StripeApplyFailed
from autumn_sync.stripe.gateway import Gateway, StripeConfig
from autumn_sync.stripe.map.catalog import desired_stripe
from benchmarks.catalog import make_catalog

TARGET = 0.8


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=1000, help="at least this many writes")
    parser.add_argument("--latency-ms", type=float, default=250.0, help="emulator latency")
    parser.add_argument("--rate-limit", type=float, default=100.0, help="requests per second")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="concurrency")
    parser.add_argument(
        "--per-endpoint",
        type=int,
        default=StripeConfig.per_endpoint,
        help="requests in flight to one endpoint at most",
    )
    parser.add_argument("--features", type=int, default=20, help="features in the catalog")
    parser.add_argument("--seed", type=int, default=2026, help="catalog and emulator seed")
    return parser.parse_args()


def expected_writes(desired: State) -> int:
    """The Stripe writes creating `desired` from nothing takes: one per object, and one more
    per product whose default price is set once the price exists."""
    stripe = desired_stripe(desired, {})
    objects = sum(len(kind) for kind in stripe.kinds())
    defaults = sum(1 for product in stripe.products.values() if product.default_price)
    return objects + defaults


def catalog_for(writes: int, features: int, seed: int) -> tuple[State, int, int]:
    """The smallest generated catalog (in steps of 10 plans) needing at least `writes`
    writes: its state, its number of plans and its expected writes."""
    plans = 10
    while True:
        desired = load_text(make_catalog(features=features, plans=plans, seed=seed))
        expected = expected_writes(desired)
        if expected >= writes:
            return desired, plans, expected
        plans += 10


def main() -> int:
    args = parse_args()
    desired, plans, expected = catalog_for(args.writes, args.features, args.seed)
    print(
        f"catalog: {args.features} features, {plans} plans, {len(desired.rewards)} rewards "
        f"({expected} Stripe writes expected)"
    )
    print(
        f"emulator: {args.latency_ms:g} ms latency, {args.rate_limit:g} req/s limit; "
        f"{args.workers} workers, at most {args.per_endpoint} in flight per endpoint"
    )
    with (
        tempfile.TemporaryDirectory() as workdir,
        Emulator(latency_ms=args.latency_ms, rate_limit=args.rate_limit, seed=args.seed) as emu,
    ):
        engine = connect(f"sqlite:///{Path(workdir) / 'billing.db'}")
        config = StripeConfig(DEFAULT_API_KEY, emu.url, per_endpoint=args.per_endpoint)
        gateway = Gateway(config)
        start = time.perf_counter()
        plan = make_plan(engine, desired, gateway)
        plan_seconds = time.perf_counter() - start
        stripe_changes = sum(1 for c in plan.changes if c.kind.target is Target.STRIPE)
        print(f"plan: {stripe_changes} Stripe changes in {plan_seconds:.1f} s")

        emu.requests.clear()
        before = (gateway.rate_limited, gateway.retries)
        failed = 0
        start = time.perf_counter()
        try:
            apply_plan(engine, plan, gateway=gateway, workers=args.workers)
        except StripeApplyFailed as exc:
            failed = 1
            print(f"FAILED: {exc.change.address}: {exc.error}")
        seconds = time.perf_counter() - start
        outcomes = Counter(entry.outcome for entry in emu.requests.entries())
        writes = sum(
            1
            for entry in emu.requests.entries()
            if entry.method == "POST" and entry.outcome in ("ok", "dropped")
        )
        limited = outcomes["rate_limited"]
        admitted = sum(outcomes.values()) - limited
        rate = admitted / seconds
        fraction = rate / args.rate_limit
        burst = emu.faults.bucket.capacity if emu.faults.bucket is not None else 0.0
        sustained = max(admitted - burst, 0) / seconds

        after = make_plan(engine, desired, gateway)
        print(f"writes:            {writes}")
        print(f"wall time:         {seconds:.2f} s")
        print(
            f"achieved:          {rate:.1f} req/s = {fraction:.2f} of the limit (target ≥ {TARGET})"
        )
        print(
            f"  without the burst: {sustained:.1f} req/s = {sustained / args.rate_limit:.2f} "
            f"(the bucket starts full: {burst:g} requests)"
        )
        print(f"writes/s:          {writes / seconds:.1f}")
        print(f"429s seen:         {limited} (gateway: {gateway.rate_limited - before[0]})")
        print(f"other retries:     {gateway.retries - before[1]}")
        print(f"failed changes:    {failed}")
        print(f"plan after apply:  {'empty' if after.empty else f'{len(after.changes)} changes'}")
        engine.dispose()
    ok = fraction >= TARGET and failed == 0 and after.empty and writes >= args.writes
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
