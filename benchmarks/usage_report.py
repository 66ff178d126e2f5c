"""Benchmark of `usage report` against the emulator's meter-event rate limit (issue 12).

Run from the repository root:

    python benchmarks/usage_report.py                     # 10,000 customers, 500 events/s
    python benchmarks/usage_report.py --customers 2000 --rate-limit 200 --latency-ms 100

It starts the Stripe emulator in this process with a meter-event rate limit (over it the
emulator answers 429) and a latency per request, applies a one-plan catalog (Pro: messages
priced pay-per-use on a meter) to a temporary SQLite database and the emulator, puts
`--customers` customers on Pro with usage (bulk inserts in the database, the customers
stored in the emulator), and runs `usage report` twice. It prints:

- events: the meter events the first run sent (one per customer), the wall time, and the
  events sent per second as a fraction of the limit (target: at least 0.8);
- the 429s the emulator answered and the events not sent (must be 0);
- whether the emulator holds every customer's usage once, and what the second run sent
  (must be nothing).

The exit status is 1 when the target is missed, an event was not sent, or the second run
sent anything.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as `python benchmarks/usage_report.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, insert, select

from autumn_sync.config import load_text
from autumn_sync.database import schema as t
from autumn_sync.database.engine import connect
from autumn_sync.emulator import DEFAULT_API_KEY, Emulator
from autumn_sync.metering import report_usage
from autumn_sync.pipeline import apply_plan, make_plan
from autumn_sync.stripe.gateway import Gateway, StripeConfig

TARGET = 0.8
CATALOG = """\
version: 1
features:
  messages: {name: Messages, type: metered, consumable: true}
plans:
  pro:
    name: Pro
    price: {amount: 20, interval: month}
    items:
      - {feature: messages, included: 1000, reset: month,
         price: {amount: 5, per: 100, billing: pay_per_use}}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--rate-limit", type=float, default=500.0, help="meter events a second")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory() as folder,
        Emulator(latency_ms=args.latency_ms, meter_event_rate_limit=args.rate_limit) as emu,
    ):
        engine = connect(f"sqlite:///{Path(folder) / 'bench.db'}")
        gateway = Gateway(StripeConfig(DEFAULT_API_KEY, emu.url))
        desired = load_text(CATALOG)
        apply_plan(engine, make_plan(engine, desired, gateway), gateway=gateway)
        now = datetime.now().replace(microsecond=0)
        _seed(engine, emu, args.customers, now)
        started = time.perf_counter()
        first = report_usage(engine, gateway, now)
        wall = time.perf_counter() - started
        refused = gateway.rate_limited
        second = report_usage(engine, gateway, now)
        held = sum(len(events) for events in emu.state.meter_events.values())
        engine.dispose()
    rate = len(first.sent) / wall
    fraction = rate / args.rate_limit
    print(f"customers:          {args.customers}")
    print(f"events sent:        {len(first.sent)} in {wall:.1f} s")
    print(f"achieved events/s:  {rate:.1f} of {args.rate_limit:g} ({fraction:.2f} of the limit)")
    print(f"429s answered:      {refused}")
    print(f"not sent:           {len(first.failed)}")
    print(f"events held:        {held} (one per customer: {held == args.customers})")
    print(f"second run sent:    {len(second.sent)}")
    ok = fraction >= TARGET and not first.failed and held == args.customers and not second.sent
    print("target met" if ok else "TARGET MISSED")
    return 0 if ok else 1


def _seed(engine: Engine, emu: Emulator, count: int, now: datetime) -> None:
    """`count` customers on Pro, each with a Stripe customer and subscription recorded and
    1,000 + its number of messages used this period."""
    with engine.begin() as conn:
        version = conn.execute(
            select(t.plans.c.current_version).where(t.plans.c.id == "pro")
        ).scalar_one()
        first = 1 + (conn.execute(select(t.customers.c.internal_id)).scalars().all() or [0])[-1]
        ids = range(first, first + count)
        conn.execute(
            insert(t.customers),
            [
                {"internal_id": i, "id": f"user_{i}", "created_at": now, "stripe_id": f"cus_b{i}"}
                for i in ids
            ],
        )
        plan = {"plan_id": "pro", "version": version, "status": "active", "attached_at": now}
        rows = [{"customer_internal_id": i, "stripe_subscription_id": f"s{i}", **plan} for i in ids]
        conn.execute(insert(t.customer_plans), rows)
        used = {
            "feature_id": "messages",
            "source": "plan:pro",
            "next_reset": now + timedelta(days=30),
        }
        usage = [{"customer_internal_id": i, "used": 1000 + i, **used} for i in ids]
        conn.execute(insert(t.balance_usage), usage)
    for i in range(first, first + count):
        emu.add_customer(f"cus_b{i}", email=f"user_{i}@example.com")


if __name__ == "__main__":
    sys.exit(main())
