"""Benchmark of customers as code: a catalog of 50 features and 200 plans plus 10,000 customers
of the file with balances (DESIGN §7).

Run from the repository root:

    python benchmarks/customers.py                   # a temporary SQLite file
    python benchmarks/customers.py --customers 2000 --no-stripe
    python benchmarks/customers.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

With a server URL the benchmark works in scratch databases it creates and drops (as
`benchmarks/run.py` does). The customers come from `benchmarks/catalog.py` (`make_catalog(...,
customers=N)`): most by id and email on a plan of a product line, some with an add-on, every
tenth pre-provisioned by email with a negotiated custom version and invoice billing, some with
entities and rewards, one or two balances each with an onboarding grant (and at times an
allowance or a negative correction).

What it prints:

- validate: loading the YAML (parse, validate, convert), and its peak memory;
- first plan and first apply on an empty database: time, SQL statements, changes;
- no-change plan (the median of `--repeat` runs), its peak memory (`tracemalloc`, a separate
  run: tracing slows Python down), and a no-change apply (it must only read);
- Stripe, with the emulator in this process (`Emulator()`, no latency): the first plan with
  Stripe connected, its apply, and the no-change plan after it, each with the requests it
  sent (a no-change plan should need the list pages only: objects/100 + a few);
- scaling: the no-change plan at N and 2N customers, each on its own database, the runs taking
  turns; the statements must be equal, the time ratio at most 2.2.

The exit status is 1 when the statement counts of the scaling line differ or a no-change plan
is not empty, else 0.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

if __package__ in (None, ""):  # run as `python benchmarks/customers.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine

from autumn_sync.config import load_text
from autumn_sync.database.engine import connect
from autumn_sync.emulator import DEFAULT_API_KEY, Emulator
from autumn_sync.model.address import Target
from autumn_sync.model.state import State
from autumn_sync.pipeline import apply_plan, make_plan
from autumn_sync.plan.plan import ChangePlan
from autumn_sync.stripe.gateway import Gateway, StripeConfig
from benchmarks.catalog import make_catalog
from benchmarks.run import TIME_RATIO_TARGET, Counter, Databases, measure, median_plans

T = TypeVar("T")


@dataclass
class Line:
    name: str
    seconds: float | None = None
    statements: int | None = None
    changes: int | None = None
    requests: int | None = None
    memory: int | None = None  # peak bytes


@dataclass
class Size:
    """One number of customers on its own database, applied."""

    customers: int
    engine: Engine
    desired: State
    lines: list[Line] = field(default_factory=list)
    no_change: Line | None = None


class WriteCounter(Counter):
    """Counts statements, and the writes among them."""

    def __init__(self) -> None:
        self.writes = 0
        super().__init__()

    def _record(self, *args: object) -> None:
        super()._record(*args)
        statement = str(args[2]).lstrip().upper()
        if statement.startswith(("INSERT", "UPDATE", "DELETE")):
            self.writes += 1


def peak_memory(call: Callable[[], T]) -> tuple[T, int]:
    """Result of `call()` and the peak of memory Python allocated meanwhile (bytes)."""
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def prepare(counter: Counter, databases: Databases, args: argparse.Namespace, n: int) -> Size:
    """Generate and validate the file, migrate a fresh database, plan and apply."""
    text = make_catalog(features=args.features, plans=args.plans, customers=n)
    desired, seconds, _ = measure(counter, lambda: load_text(text))
    _, memory = peak_memory(lambda: load_text(text))
    lines = [Line(f"validate ({len(text) / 1e6:.1f} MB of YAML)", seconds, memory=memory)]
    url = databases.fresh()
    engine = connect(url)
    databases.opened(engine)
    try:
        plan, seconds, statements = measure(counter, lambda: make_plan(engine, desired))
        lines.append(Line("first plan (empty database)", seconds, statements, len(plan.changes)))
        result, seconds, statements = measure(counter, lambda: apply_plan(engine, plan))
        lines.append(Line("first apply", seconds, statements, len(result.applied)))
    except BaseException:
        engine.dispose()
        raise
    return Size(n, engine, desired, lines)


def no_change_plans(counter: Counter, sizes: list[Size], repeat: int) -> None:
    """The no-change plan of every size, `repeat` times taking turns; medians recorded."""
    medians = median_plans(counter, [(size.engine, size.desired) for size in sizes], repeat)
    for size, (median, statements, changes) in zip(sizes, medians, strict=True):
        _, memory = peak_memory(partial(make_plan, size.engine, size.desired))
        name = f"no-change plan (median of {repeat})"
        size.no_change = Line(name, median, statements, changes, memory=memory)
        size.lines.append(size.no_change)


def no_change_apply(counter: WriteCounter, size: Size) -> bool:
    """A no-change apply: True when it only read (no INSERT, UPDATE or DELETE)."""
    plan = make_plan(size.engine, size.desired)
    writes_before = counter.writes
    result, seconds, statements = measure(counter, partial(apply_plan, size.engine, plan))
    size.lines.append(Line("no-change apply", seconds, statements, len(result.applied)))
    return bool(counter.writes == writes_before)


class StripeSteps:
    """Plan with Stripe connected (Stripe empty), apply, plan again: each returns the Stripe
    changes (or all changes, for the last) it saw."""

    def __init__(self, size: Size, gateway: Gateway) -> None:
        self.size, self.gateway = size, gateway
        self.plan: ChangePlan | None = None

    def first_plan(self) -> int:
        self.plan = make_plan(self.size.engine, self.size.desired, self.gateway)
        return sum(c.kind.target is Target.STRIPE for c in self.plan.changes)

    def first_apply(self) -> int:
        assert self.plan is not None
        result = apply_plan(self.size.engine, self.plan, gateway=self.gateway)
        return sum(c.kind.target is Target.STRIPE for c in result.applied)

    def again(self) -> int:
        return len(make_plan(self.size.engine, self.size.desired, self.gateway).changes)


def with_stripe(counter: Counter, size: Size) -> list[Line]:
    """The Stripe steps against the emulator, with the requests it logged. A failure (Stripe
    customers and subscriptions are being built) is reported with what was counted."""
    lines: list[Line] = []
    with Emulator() as emu:
        steps = StripeSteps(size, Gateway(StripeConfig(DEFAULT_API_KEY, emu.url)))
        named: list[tuple[str, Callable[[], int]]] = [
            ("plan with Stripe (Stripe empty)", steps.first_plan),
            ("apply to Stripe", steps.first_apply),
            ("no-change plan with Stripe", steps.again),
        ]
        for name, step in named:
            emu.requests.clear()
            try:
                changes, seconds, statements = measure(counter, step)
            except Exception as exc:
                failed = f"{name}: FAILED ({type(exc).__name__}: {exc})"
                lines.append(Line(failed[:100], requests=len(emu.requests)))
                break
            lines.append(Line(name, seconds, statements, changes, len(emu.requests)))
    return lines


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f} ms"


def _cell(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.1f} MB"


def table(lines: list[Line]) -> Iterator[str]:
    header = (
        f"{'step':<40}{'time':>11}{'statements':>12}{'changes':>9}{'requests':>10}{'peak mem':>11}"
    )
    yield header
    yield "-" * len(header)
    for line in lines:
        yield (
            f"{line.name:<40}{_ms(line.seconds):>11}{_cell(line.statements):>12}"
            f"{_cell(line.changes):>9}{_cell(line.requests):>10}{_mb(line.memory):>11}"
        )


def report(label: str, args: argparse.Namespace, main: Size, double: Size) -> Iterator[str]:
    state = main.desired
    balances = len(state.balances)
    grants = sum(len(b.grants) for b in state.balances.values())
    yield (
        f"autumn-sync customers benchmark: {label}; {args.features} features, {args.plans} "
        f"plans, {main.customers:,} customers of the file with {balances:,} balances and "
        f"{grants:,} grants"
    )
    yield ""
    yield from table(main.lines)
    yield ""
    small, large = main.no_change, double.no_change
    assert small is not None and large is not None
    assert small.seconds is not None and large.seconds is not None
    ratio = large.seconds / small.seconds if small.seconds else float("inf")
    ok = "ok" if ratio <= TIME_RATIO_TARGET else f"OVER the target of {TIME_RATIO_TARGET}"
    same = small.statements == large.statements
    yield (
        f"scaling, no-change plan: {main.customers:,} customers {_ms(small.seconds)}, "
        f"{small.statements} statements, {_mb(small.memory)}; {double.customers:,} customers "
        f"{_ms(large.seconds)}, {large.statements} statements, {_mb(large.memory)}"
    )
    yield (
        f"  time ratio {ratio:.2f} (target ≤ {TIME_RATIO_TARGET}: {ok}); statements "
        f"{'equal (ok)' if same else 'DIFFER (a per-row query?)'}"
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield f"process peak resident memory: {rss / 1024:,.0f} MB (everything above, both sizes)"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time plan and apply with thousands of file customers; count SQL and "
        "Stripe requests; measure memory and how the no-change plan scales."
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL or MariaDB server (scratch databases are created and dropped); "
        "default: a temporary SQLite file",
    )
    parser.add_argument("--customers", type=int, default=10_000, help="customers (10,000)")
    parser.add_argument("--features", type=int, default=50, help="features (50)")
    parser.add_argument("--plans", type=int, default=200, help="plans (200)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of the no-change plan")
    parser.add_argument(
        "--no-stripe", action="store_true", help="skip the Stripe steps (the emulator)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    counter = WriteCounter()
    sizes: list[Size] = []
    status = 0
    with tempfile.TemporaryDirectory(prefix="autumn-sync-bench-") as workdir:
        databases = Databases(args.database_url, Path(workdir))
        try:
            for n in (args.customers, args.customers * 2):
                print(f"preparing {n:,} customers…", file=sys.stderr, flush=True)
                sizes.append(prepare(counter, databases, args, n))
            no_change_plans(counter, sizes, args.repeat)
            main_size = sizes[0]
            if not no_change_apply(counter, main_size):
                print("a no-change apply wrote to the database", file=sys.stderr)
                status = 1
            if any(s.no_change is None or s.no_change.changes for s in sizes):
                status = 1
            if not args.no_stripe:
                print("Stripe steps…", file=sys.stderr, flush=True)
                main_size.lines += with_stripe(counter, main_size)
        finally:
            for size in sizes:
                size.engine.dispose()
            databases.close()
            counter.close()
    main_size, double = sizes
    for line in report(databases.label, args, main_size, double):
        print(line)
    assert main_size.no_change is not None and double.no_change is not None
    if main_size.no_change.statements != double.no_change.statements:
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
