"""What the field-level diff (deepdiff, `plan.fields.field_changes`) costs in a plan of the
10,000-customer file (DESIGN §7; issue: keep a hand-written diff only where deepdiff costs
more than 10 % of such a plan).

Run from the repository root:

    python benchmarks/field_diff.py                       # 10,000 customers, SQLite
    python benchmarks/field_diff.py --customers 2000

It applies the catalog of `benchmarks/customers.py` (50 features, 200 plans) with the
customers, then times three plans: the no-change plan, a plan where every customer and
every plan changes a plain field (a new email, a new name), and one where every plan's items
and every customer's grants change (nested fields). For each it prints the plan's time, the time
spent in `field_changes` (each call timed), the share of it that DeepDiff takes, and what
DeepDiff would add were it used for the records there is one of per customer too (they are
compared leaf by leaf). The exit status is 1 when DeepDiff's share is above 10 %.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
    to another domain: plain fields."""
    text = re.sub(r"(?m)^(\s+(?:- )?name: )(.+)$", r"\1\2 (new)", text)
    return text.replace("@example.com", "@example.org")


def regranted(text: str) -> str:
    """The file with one more unit included in every plan item and granted by every grant:
    nested fields (`items[…].included`, `grants[…].amount`)."""
    text = re.sub(r"included: (\d+)", lambda m: f"included: {int(m.group(1)) + 1}", text)
    return re.sub(r"amount: (\d+)\}", lambda m: f"amount: {int(m.group(1)) + 1}}}", text)


class Timed:
    """Times every call of `plan.fields.field_changes` (wherever it was imported) and of
    DeepDiff inside it, and what DeepDiff would take for the per-customer records, which
    `field_changes` compares leaf by leaf."""

    def __init__(self) -> None:
        self.reset()
        self.original = fields.field_changes
        self.deep = fields.compare_deep
        for module in list(sys.modules.values()):
            if getattr(module, "field_changes", None) is self.original:
                module.field_changes = self  # type: ignore[attr-defined]
        fields.compare_deep = self.compare_deep  # type: ignore[assignment]

    def reset(self) -> None:
        self.seconds = self.deep_seconds = self.deep_instead = 0.0
        self.calls = 0

    def __call__(self, before: object, after: object) -> object:
        started = time.perf_counter()
        try:
            return self.original(before, after)  # type: ignore[arg-type]
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1
            self._deep_instead(before, after)

    def compare_deep(self, old: Any, new: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.deep(old, new)
        finally:
            self.deep_seconds += time.perf_counter() - started

    def _deep_instead(self, before: object, after: object) -> None:
        if not isinstance(before, fields.PER_CUSTOMER):
            return
        old, new = attributes(before), attributes(after)  # type: ignore[arg-type]
        if old != new:
            started = time.perf_counter()
            self.deep(old, new)
            self.deep_instead += time.perf_counter() - started


def timed(engine: Engine, desired: State, timer: Timed) -> tuple[float, int]:
    """(plan seconds, without the probe of `_deep_instead`; changes) of one plan."""
    timer.reset()
    started = time.perf_counter()
    plan = make_plan(engine, desired)
    return time.perf_counter() - started - timer.deep_instead, len(plan.changes)


def report(name: str, total: float, changes: int, timer: Timed) -> float:
    """Print one plan's figures; DeepDiff's share of the plan."""
    share = timer.deep_seconds / total
    instead = timer.deep_instead
    print(f"  {name}: {total:.2f} s, {changes:,} changes")
    print(
        f"    field_changes: {timer.calls:,} calls, {timer.seconds:.2f} s "
        f"({timer.seconds / total:.1%} of the plan, with the records' attributes)"
    )
    print(f"    DeepDiff in it: {timer.deep_seconds:.2f} s = {share:.1%} (target ≤ {TARGET:.0%})")
    print(
        f"    DeepDiff for the per-customer records too: +{instead:.2f} s = "
        f"{(timer.deep_seconds + instead) / (total + instead):.1%} of the plan"
    )
    return share


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
            ("plan renaming every plan, every customer's email", load_text(renamed(text))),
            ("plan changing every plan's items, every grant", load_text(regranted(text))),
        ):
            total, changes = timed(engine, state, timer)
            worst = max(worst, report(name, total, changes, timer))
        engine.dispose()
    return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
