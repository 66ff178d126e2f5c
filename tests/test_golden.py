"""Golden plan cases, in the style of migra's `tests/FIXTURES`: the files are the spec.

Every folder of `tests/golden/` is one case:

- `before.yaml` (optional): applied to an empty database first (absent: the database stays
  empty);
- `customers.yaml` (optional): a mapping `plan_id: count`; that many app-created customers are
  put on the plan's current version once `before.yaml` is applied;
- `before-2.yaml` (optional): applied after the customers, to reach states only history makes
  (an archived plan, customers on an older version);
- `after.yaml`: the file that is planned;
- `plan.txt`, `plan.json`, `plan.md`: the expected plan from the text (no colour), JSON and
  Markdown renderers;
- `stripe.txt`: the Stripe part of the plan when the same case runs with Stripe connected
  (the emulator, on SQLite);
- `stripe.md`: the whole of that plan in Markdown (the database's and Stripe's sections).

Each case runs on SQLite, and on PostgreSQL and MariaDB when their URLs are set (see
`conftest.py`), against the same expected files: the three databases must read the same state.
For that reason the JSON `checksum` is compared as it is (it digests the state the plan was
made against and the changes, so it is deterministic for equal states); only
`autumn_sync_version` is written as `<version>` so that a release does not touch every case.

After the comparison the plan is applied (destroys allowed), and then:

- planning `after.yaml` again must give an empty plan (convergence);
- the catalog must equal what a fresh apply of `after.yaml` to an empty database gives:
  settings, features and rewards exactly, and the active plans' attributes (name, description,
  group, flags and current content), whatever their version numbers; plans that left the file
  must be archived (customers kept them) or gone;
- so must the customers the file manages and their declared balances, by attributes (not by
  the versions their plans are on, nor their row ids): grants given once, nothing left over.

To (re)generate the expected files after an intended change, run

    AUTUMN_SYNC_UPDATE_GOLDEN=1 pytest tests/test_golden.py

then run the tests again without it (so every database is compared with what was written) and
read the diff of `tests/golden/` as carefully as a diff of the code.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine

from autumn_sync.database.engine import connect
from autumn_sync.emulator import Emulator
from autumn_sync.emulator.store import Clock
from autumn_sync.model.address import Target
from autumn_sync.model.attributes import attributes
from autumn_sync.model.state import State
from autumn_sync.model.stripe import OWNER_KEY, VERSION_KEY
from autumn_sync.pipeline import apply_plan, load_desired, make_plan, read_current
from autumn_sync.plan.changes import Change
from autumn_sync.plan.plan import ChangePlan
from autumn_sync.render import render_json, render_markdown, render_text
from autumn_sync.stripe.gateway import Gateway, StripeConfig
from tests.conftest import reset_database
from tests.helpers import add_customers, as_declared

# Plans that date things (a downgrade at the end of the period) are planned on a fixed day.
TODAY = datetime(2026, 12, 1)


def clock() -> datetime:
    return TODAY


GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("AUTUMN_SYNC_UPDATE_GOLDEN") == "1"
CASES = sorted(path.name for path in GOLDEN.iterdir() if (path / "after.yaml").is_file())
VERSION_FIELD = re.compile(r'^(  "autumn_sync_version": )"[^"]*"', re.MULTILINE)

RENDERINGS: dict[str, Callable[[ChangePlan], str]] = {
    "plan.txt": lambda plan: render_text(plan, False),
    "plan.json": lambda plan: VERSION_FIELD.sub(r'\1"<version>"', render_json(plan)),
    "plan.md": render_markdown,
}
STRIPE_RENDERINGS = ("stripe.txt", "stripe.md")


def test_cases_are_complete() -> None:
    assert len(CASES) >= 12
    for case in CASES:
        names = {path.name for path in (GOLDEN / case).iterdir()}
        inputs = {"before.yaml", "customers.yaml", "before-2.yaml", "after.yaml"}
        assert names <= inputs | set(RENDERINGS) | set(STRIPE_RENDERINGS), case
        if not UPDATE:
            assert set(RENDERINGS) | set(STRIPE_RENDERINGS) <= names, (
                f"{case}: run with AUTUMN_SYNC_UPDATE_GOLDEN=1"
            )


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, db_url: str) -> None:
    folder = GOLDEN / case
    desired = load_desired(folder / "after.yaml")
    engine = connect(db_url)
    try:
        _prepare(engine, folder)
        plan = make_plan(engine, desired, clock=clock)
        for name, render in RENDERINGS.items():
            _compare(folder / name, render(plan))

        apply_plan(engine, plan, allow_destroy=True, clock=clock)
        assert make_plan(engine, desired, clock=clock).empty, "the plan does not converge"
        converged = read_current(engine)
    finally:
        engine.dispose()

    reset_database(db_url)
    fresh_engine = connect(db_url)
    try:
        apply_plan(fresh_engine, make_plan(fresh_engine, desired, clock=clock), clock=clock)
        fresh = read_current(fresh_engine)
    finally:
        fresh_engine.dispose()
    assert catalog(converged) == catalog(fresh)
    for plan_id, kept in converged.plans.items():
        if plan_id not in desired.plans:
            assert kept.archived and kept.customers_total, f"plan.{plan_id} should be gone"


@pytest.mark.parametrize("case", CASES)
def test_golden_with_stripe(case: str, sqlite_url: str) -> None:
    """The same case with Stripe connected (the emulator): the Stripe part of the plan is
    `stripe.txt` and the whole plan in Markdown `stripe.md`; the apply converges, and every
    address has one active object (older prices stay active only for customers on older plan
    versions)."""
    folder = GOLDEN / case
    desired = load_desired(folder / "after.yaml")
    engine = connect(sqlite_url)
    with Emulator(clock=Clock(lambda: TODAY.replace(tzinfo=UTC).timestamp())) as emu:
        gateway = Gateway(StripeConfig("sk_test_golden", emu.url))
        _prepare(engine, folder, gateway)
        plan = make_plan(engine, desired, gateway, clock=clock)
        stripe_part = replace(plan, changes=tuple(c for c in plan.changes if _stripe(c)))
        _compare(folder / "stripe.txt", render_text(stripe_part))
        _compare(folder / "stripe.md", render_markdown(plan))
        apply_plan(engine, plan, allow_destroy=True, gateway=gateway, clock=clock)
        assert make_plan(engine, desired, gateway, clock=clock).empty, "the plan does not converge"
        _assert_no_duplicates(emu)
    engine.dispose()


def _stripe(change: Change) -> bool:
    return change.kind.target is Target.STRIPE


def _assert_no_duplicates(emu: Emulator) -> None:
    for kind in ("product", "coupon", "promotion_code"):
        active = Counter(
            o["metadata"].get(OWNER_KEY)
            for o in emu.state.all(kind)
            if o.get("active", True) and o["metadata"].get("autumn_sync_archived") != "true"
        )
        assert all(n == 1 for n in active.values()), (kind, active)
    versions = Counter(
        (o["metadata"][OWNER_KEY], o["metadata"].get(VERSION_KEY))
        for o in emu.state.all("price")
        if o["active"]
    )
    assert all(n == 1 for n in versions.values()), versions


def _prepare(engine: Engine, folder: Path, gateway: Gateway | None = None) -> None:
    """Bring the empty database to the case's starting point."""
    if (folder / "before.yaml").is_file():
        _apply_file(engine, folder / "before.yaml", gateway)
    if (folder / "customers.yaml").is_file():
        counts = yaml.safe_load((folder / "customers.yaml").read_text(encoding="utf-8"))
        for plan_id, count in counts.items():
            add_customers(engine, plan_id, count)
    if (folder / "before-2.yaml").is_file():
        _apply_file(engine, folder / "before-2.yaml", gateway)


def _apply_file(engine: Engine, path: Path, gateway: Gateway | None = None) -> None:
    plan = make_plan(engine, load_desired(path), gateway, clock=clock)
    apply_plan(engine, plan, allow_destroy=True, gateway=gateway, clock=clock)


def _compare(path: Path, actual: str) -> None:
    if UPDATE:
        if not path.is_file() or path.read_text(encoding="utf-8") != actual:
            path.write_text(actual, encoding="utf-8")
        return
    assert path.is_file(), f"{path} is missing: run with AUTUMN_SYNC_UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8"), f"{path.parent.name}/{path.name} differs"


def catalog(state: State) -> dict[str, Any]:
    """What a catalog means, without its history: the active plans by their attributes, not
    by version number or customers; the managed customers (with the plans the file gives
    them: not one a downgrade leaves at the period's end, nor the dates it sets) and their
    balances by attributes."""
    return {
        "settings": state.settings,
        "features": state.features,
        "plans": {pid: attributes(plan) for pid, plan in state.active_plans.items()},
        "rewards": state.rewards,
        "customers": {
            key: attributes(as_declared(customer))
            for key, customer in state.customers.items()
            if customer.managed
        },
        "balances": {address: attributes(b) for address, b in state.balances.items()},
    }
