"""What the field-level diff (deepdiff, `plan.fields.field_changes`) costs in a plan of the
10,000-customer file (DESIGN §7; issue: keep a hand-written diff only where deepdiff costs
more than 10 % of such a plan).

Run from the repository root:

    python benchmarks/field_diff.py                       # 10,000 customers, SQLite
    python benchmarks/field_diff.py --customers 2000

It applies the catalog of `benchmarks/customers.py` (50 features, 200 plans) with the
customers, then times two plans: the no-change plan, and a plan where every customer and
every plan changes (a new email, a new name). For each it prints the plan's time, the time
spent in `field_changes` (each call timed) and its share of the plan, and what DeepDiff
would add were it used for the records there is one of per customer too (they are compared
leaf by leaf). The exit status is 1 when the share is above 10 %.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python benchmarks/field_diff.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine

from autumn_sync.config import load_text
from autumn_sync.database.engine import connect
from autumn_sync.model.attributes import attributes
from autumn_sync.model.state import State
from autumn_sync.pipeline import apply_plan, make_plan
from autumn_sync.plan import fields
from benchmarks.catalog import make_catalog

TARGET = 0.10


def renamed(text: str) -> str:
    """The file with every plan renamed (`name: X (new)`) and every customer's email moved
    to another domain."""
    text = re.sub(r"(?m)^(\s+(?:- )?name: )(.+)$", r"\1\2 (new)", text)
    return text.replace("@example.com", "@example.org")


class Timed:
    """Times every call of `plan.fields.field_changes`, wherever it was imported, and what
    DeepDiff would take for the per-customer records it compares leaf by leaf."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self.deep_instead = 0.0
        self.original = fields.field_changes
        for module in list(sys.modules.values()):
            if getattr(module, "field_changes", None) is self.original:
                module.field_changes = self  # type: ignore[attr-defined]

    def __call__(self, before: object, after: object) -> object:
        started = time.perf_counter()
        try:
            return self.original(before, after)  # type: ignore[arg-type]
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1
            self._deep(before, after)

    def _deep(self, before: object, after: object) -> None:
        if not isinstance(before, fields.PER_CUSTOMER):
            return
        old, new = attributes(before), attributes(after)  # type: ignore[arg-type]
        if old != new:
            started = time.perf_counter()
            fields.compare_deep(old, new)
            self.deep_instead += time.perf_counter() - started


def timed(engine: Engine, desired: State, timer: Timed) -> tuple[float, float, int, int]:
    """(plan seconds, seconds inside field_changes, its calls, changes) of one plan."""
    timer.seconds, timer.calls, timer.deep_instead = 0.0, 0, 0.0
    started = time.perf_counter()
    plan = make_plan(engine, desired)
    total = time.perf_counter() - started - timer.deep_instead  # the plan without the probe
    return total, timer.seconds, timer.calls, len(plan.changes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    args = parser.parse_args()
    text = make_catalog(features=50, plans=200, customers=args.customers)
    worst = 0.0
    with tempfile.TemporaryDirectory() as folder:
        engine = connect(f"sqlite:///{folder}/billing.db")
        desired = load_text(text)
        apply_plan(engine, make_plan(engine, desired))
        print(f"{args.customers:,} customers, 50 features, 200 plans (SQLite)")
        timer = Timed()
        for name, state in (
            ("no-change plan", desired),
            ("plan changing every customer and plan", load_text(renamed(text))),
        ):
            total, inside, calls, changes = timed(engine, state, timer)
            share = inside / total
            worst = max(worst, share)
            print(
                f"  {name:<38} {total:6.2f} s, {changes:>6,} changes; field_changes "
                f"({calls:,} calls) {inside:5.2f} s = {share:5.1%} of the plan "
                f"(target ≤ {TARGET:.0%})"
            )
            deep = timer.deep_instead
            print(
                f"  {'':<38} DeepDiff for the per-customer records instead: +{deep:5.2f} s "
                f"= {(inside + deep) / (total + deep):5.1%} of the plan"
            )
        engine.dispose()
    return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
