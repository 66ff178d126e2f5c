"""Benchmark of the pipeline on a generated catalog: how long each step takes and how many SQL
statements it issues.

Run from the repository root:

    python benchmarks/run.py                  # a temporary SQLite file, 50 features, 200 plans
    python benchmarks/run.py --plans 1000 --features 100
    python benchmarks/run.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    python benchmarks/run.py --database-url mysql+pymysql://root@127.0.0.1:3306/test

With a server URL the benchmark creates scratch databases (`autumn_sync_bench_<pid>_<n>`) on
that server, works only in them and drops them at the end: the URL's own database is used only
to connect, so the user needs the right to create databases. SQLite always runs on temporary
files.

What it measures, on a catalog from `benchmarks/catalog.py` (`make_catalog`):

- validate: `load_text` of the YAML text (parse, validate, convert; no database);
- migrate: `connect` on an empty database (creates the schema), then `connect` again on the
  migrated one (must not migrate again: a small fixed number of statements);
- first plan: `make_plan` against the empty database (every record is a create);
- apply: `apply_plan` of that plan (one transaction);
- no-change plan: `make_plan` again (the median of `--repeat` runs), and a no-change apply;
- scaling: the no-change plan at N and 2N plans (each size on its own database, the runs of
  the two sizes taking turns so that load from other processes hits both alike). Reading the
  catalog is a fixed number of `select()`s, so the statements must be equal, and the time
  should about double (target: ratio ≤ 2.2).

Statements are counted with SQLAlchemy's `before_cursor_execute` event (an executemany counts
once). Times come from `time.perf_counter`. The exit status is 1 when the statement counts of
the scaling line differ, else 0.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

if __package__ in (None, ""):  # run as `python benchmarks/run.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from autumn_sync.config import load_text
from autumn_sync.database.engine import connect
from autumn_sync.model.state import State
from autumn_sync.pipeline import apply_plan, make_plan
from benchmarks.catalog import make_catalog

T = TypeVar("T")
TIME_RATIO_TARGET = 2.2
DATABASE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mysql": "MySQL"}


@dataclass
class Step:
    name: str
    seconds: float
    statements: int | None = None  # None: the step does not touch the database
    changes: int | None = None


class Counter:
    """Counts the statements every engine executes (listens on the `Engine` class, so the
    engines `connect` creates are counted from their first statement)."""

    def __init__(self) -> None:
        self.count = 0
        event.listen(Engine, "before_cursor_execute", self._record)

    def _record(self, *_args: object) -> None:
        self.count += 1

    def close(self) -> None:
        event.remove(Engine, "before_cursor_execute", self._record)


def measure(counter: Counter, call: Callable[[], T]) -> tuple[T, float, int]:
    """Result, seconds and statements of `call()`."""
    gc.collect()
    before = counter.count
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    return result, seconds, counter.count - before


def median_of(counter: Counter, call: Callable[[], T], repeat: int) -> tuple[T, float, int]:
    """Like `measure`, with the median time of `repeat` runs (and the last run's statements,
    which must be the same every time)."""
    runs = [measure(counter, call) for _ in range(repeat)]
    counts = {statements for _, _, statements in runs}
    assert len(counts) == 1, f"statement counts vary between runs: {sorted(counts)}"
    return runs[-1][0], statistics.median(seconds for _, seconds, _ in runs), counts.pop()


class Databases:
    """Fresh empty databases: temporary SQLite files, or scratch databases on a server (all
    dropped at the end)."""

    def __init__(self, url: str | None, workdir: Path) -> None:
        self.server = url if url and not url.startswith("sqlite") else None
        self.workdir = workdir
        self.created: list[str] = []
        self.server_version = ""  # filled in once a database was opened

    @property
    def label(self) -> str:
        if self.server is None:
            return f"{self.server_version} (temporary file)"
        url = make_url(self.server)
        return f"{self.server_version} on {url.host}:{url.port} (scratch database)"

    def opened(self, engine: Engine) -> None:
        """Note which database software `engine` talks to (for the report)."""
        dialect = engine.dialect
        name = DATABASE_NAMES.get(dialect.name, dialect.name)
        if getattr(dialect, "is_mariadb", False):
            name = "MariaDB"
        version = ".".join(str(part) for part in dialect.server_version_info or ())
        self.server_version = f"{name} {version}".strip()

    def fresh(self) -> str:
        """The URL of a new, empty database."""
        name = f"autumn_sync_bench_{os.getpid()}_{len(self.created) + 1}"
        if self.server is None:
            self.created.append(name)
            return f"sqlite:///{self.workdir / f'{name}.db'}"
        _admin(self.server, f"CREATE DATABASE {name}")
        self.created.append(name)
        return make_url(self.server).set(database=name).render_as_string(hide_password=False)

    def close(self) -> None:
        if self.server is not None:
            for name in self.created:
                _admin(self.server, f"DROP DATABASE IF EXISTS {name}")


def _admin(url: str, statement: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(statement))
    engine.dispose()


@dataclass
class Size:
    """One catalog size on its own database, applied: what the no-change plans run on."""

    plans: int
    engine: Engine
    desired: State
    steps: list[Step]

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name.startswith(name))


def prepare(
    counter: Counter, databases: Databases, args: argparse.Namespace, plans: int, full: bool
) -> Size:
    """Validate a catalog of `plans` plans, migrate a fresh database, plan and apply it
    (`full=False`: the same without recording the steps the scaling line does not need)."""
    catalog = make_catalog(features=args.features, plans=plans, rewards=args.rewards)
    steps: list[Step] = []
    desired, seconds, _ = median_of(counter, lambda: load_text(catalog), 3 if full else 1)
    steps.append(Step("validate (median of 3)", seconds))
    url = databases.fresh()
    engine, seconds, statements = measure(counter, lambda: connect(url))
    databases.opened(engine)
    steps.append(Step("migrate (empty database)", seconds, statements))
    try:
        again, seconds, statements = measure(counter, lambda: connect(url))
        again.dispose()
        steps.append(Step("connect (already migrated)", seconds, statements))
        plan, seconds, statements = measure(counter, lambda: make_plan(engine, desired))
        steps.append(Step("first plan (empty database)", seconds, statements, len(plan.changes)))
        result, seconds, statements = measure(counter, lambda: apply_plan(engine, plan))
        steps.append(Step("apply", seconds, statements, len(result.applied)))
    except BaseException:
        engine.dispose()  # a server drops a scratch database only once nobody is connected
        raise
    return Size(plans, engine, desired, steps if full else [])


def median_plans(
    counter: Counter, targets: list[tuple[Engine, State]], repeat: int
) -> list[tuple[float, int, int]]:
    """Plan each (engine, desired) `repeat` times, taking turns (so a burst of load on the
    machine slows all alike): per target the median seconds, the statements (the same every
    run) and the number of changes."""
    runs: list[list[tuple[int, float, int]]] = [[] for _ in targets]
    for _ in range(repeat):
        for (engine, desired), times in zip(targets, runs, strict=True):
            plan, seconds, statements = measure(counter, partial(make_plan, engine, desired))
            times.append((len(plan.changes), seconds, statements))
    medians = []
    for times in runs:
        counts = {statements for _, _, statements in times}
        assert len(counts) == 1, f"statement counts vary between runs: {sorted(counts)}"
        median = statistics.median(seconds for _, seconds, _ in times)
        medians.append((median, counts.pop(), times[-1][0]))
    return medians


def no_change_plans(counter: Counter, sizes: list[Size], repeat: int) -> None:
    """Time the no-change plan of every size, `repeat` times, taking turns (so a burst of
    load on the machine slows all sizes alike), and record the medians; then a no-change
    apply of each."""
    medians = median_plans(counter, [(size.engine, size.desired) for size in sizes], repeat)
    for size, (median, statements, changes) in zip(sizes, medians, strict=True):
        name = f"no-change plan (median of {repeat})"
        size.steps.append(Step(name, median, statements, changes))
        plan = make_plan(size.engine, size.desired)
        result, seconds, statements = measure(counter, partial(apply_plan, size.engine, plan))
        size.steps.append(Step("no-change apply", seconds, statements, len(result.applied)))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def _cell(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def report(label: str, args: argparse.Namespace, main: Size, double: Size) -> Iterator[str]:
    """The lines of the printed report."""
    rewards = max(1, args.plans // 5) if args.rewards is None else args.rewards
    yield (
        f"autumn-sync benchmark: {label}; catalog of {args.features} features, "
        f"{args.plans} plans, {rewards} rewards"
    )
    yield ""
    header = f"{'step':<32}{'time':>12}{'statements':>13}{'changes':>10}"
    yield header
    yield "-" * len(header)
    for step in main.steps:
        yield (
            f"{step.name:<32}{_ms(step.seconds):>12}{_cell(step.statements):>13}"
            f"{_cell(step.changes):>10}"
        )
    yield ""
    small, large = main.step("no-change plan"), double.step("no-change plan")
    ratio = large.seconds / small.seconds if small.seconds else float("inf")
    time_ok = "ok" if ratio <= TIME_RATIO_TARGET else f"over the target of {TIME_RATIO_TARGET}"
    same = small.statements == large.statements
    yield (
        f"scaling, no-change plan: {main.plans} plans {_ms(small.seconds)}, "
        f"{small.statements} statements; {double.plans} plans {_ms(large.seconds)}, "
        f"{large.statements} statements"
    )
    yield (
        f"  time ratio {ratio:.2f} (target ≤ {TIME_RATIO_TARGET}: {time_ok}); statements "
        f"{'equal (ok)' if same else 'DIFFER (a per-row query?)'}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time validate, plan and apply on a generated catalog and count the SQL.",
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL or MariaDB server to run on (a scratch database is created and "
        "dropped); default: a temporary SQLite file",
    )
    parser.add_argument("--plans", type=int, default=200, help="plans in the catalog (200)")
    parser.add_argument("--features", type=int, default=50, help="features (50)")
    parser.add_argument("--rewards", type=int, help="rewards (default: one per five plans)")
    parser.add_argument(
        "--repeat", type=int, default=7, help="runs of the no-change plan to take the median of"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    counter = Counter()
    sizes: list[Size] = []
    with tempfile.TemporaryDirectory(prefix="autumn-sync-bench-") as workdir:
        databases = Databases(args.database_url, Path(workdir))
        try:
            sizes.append(prepare(counter, databases, args, args.plans, full=True))
            sizes.append(prepare(counter, databases, args, args.plans * 2, full=False))
            no_change_plans(counter, sizes, args.repeat)
        finally:
            for size in sizes:
                size.engine.dispose()
            databases.close()
            counter.close()
    main_size, double = sizes
    for line in report(databases.label, args, main_size, double):
        print(line)
    small, large = main_size.step("no-change plan"), double.step("no-change plan")
    return 0 if small.statements == large.statements else 1


if __name__ == "__main__":
    sys.exit(main())
