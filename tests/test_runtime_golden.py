"""Golden runtime cases: a scripted scenario run through the real `Billing` API on a fixed
clock, its `show customer.ID` text and its `check` answers compared with files.

Every folder of `tests/golden_runtime/` is one case:

- `billing.yaml` (and any other file a step applies);
- `script.yaml`: `customer` (the one shown and checked by default) and `steps`, run in
  order, each at its `at` (the clock's time; a date is its midnight), doing one of:
  - `apply: FILE`: plan and apply the file (the plan after it must be empty);
  - `track: {feature, value, customer, entity, key, overage}`: `Billing.track`;
  - `check: {name, feature, required, customer, entity}`: `Billing.check`, written as
    `check.<name>.json` by the command line's JSON writer;
  - `show: NAME`: `show customer.ID` as text, written as `show.<NAME>.txt`;
  and, for a track or a check, `expect`: values of its JSON answer worked out by hand
  (`recorded`, `dropped`, `allowed`, `balance`...), asserted as they are.

The expected files are rewritten with

    AUTUMN_SYNC_UPDATE_GOLDEN=1 pytest tests/test_runtime_golden.py

(read their diff as carefully as a diff of the code). Each case runs on SQLite, and on
PostgreSQL and MariaDB when their URLs are set: the three must answer the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from autumn_sync import Billing
from autumn_sync.database.engine import connect
from autumn_sync.render.json import exact_json
from autumn_sync.render.show import text
from autumn_sync.show import show_address
from tests.test_runtime import Clock, apply_file

GOLDEN = Path(__file__).parent / "golden_runtime"
UPDATE = os.environ.get("AUTUMN_SYNC_UPDATE_GOLDEN") == "1"
CASES = sorted(path.name for path in GOLDEN.iterdir() if (path / "script.yaml").is_file())
VERBS = ("apply", "track", "check", "show")


def load_script(case: str) -> dict[str, Any]:
    script: dict[str, Any] = yaml.safe_load((GOLDEN / case / "script.yaml").read_text())
    return script


def outputs(script: dict[str, Any]) -> set[str]:
    """The files the script's checks and shows write."""
    found = set()
    for step in script["steps"]:
        if "check" in step:
            found.add(f"check.{step['check']['name']}.json")
        if "show" in step:
            found.add(f"show.{step['show']}.txt")
    return found


def test_cases_are_complete() -> None:
    assert {"breakdowns", "entities", "rollovers_and_caps"} <= set(CASES)
    for case in CASES:
        script = load_script(case)
        for step in script["steps"]:
            assert [verb for verb in VERBS if verb in step] != [], (case, step)
        names = {path.name for path in (GOLDEN / case).iterdir()}
        produced = {name for name in names if name.startswith(("check.", "show."))}
        if not UPDATE:
            assert produced == outputs(script), f"{case}: run with AUTUMN_SYNC_UPDATE_GOLDEN=1"


class Run:
    """A case being run: its folder, the API on a fixed clock, the customer it is about."""

    def __init__(self, folder: Path, db_url: str, customer: str) -> None:
        self.folder = folder
        self.clock = Clock()
        self.billing = Billing(engine=connect(db_url), clock=self.clock)
        self.customer = customer

    def apply(self, step: dict[str, Any]) -> None:
        apply_file(self.billing.engine, self.folder / step["apply"], self.clock)

    def track(self, step: dict[str, Any]) -> None:
        args = step["track"]
        result = self.billing.track(
            args.get("customer", self.customer),
            args["feature"],
            str(args["value"]),
            idempotency_key=args.get("key"),
            entity_id=args.get("entity"),
            overage=args.get("overage", "cap"),
        )
        _expect(step, result.as_dict())

    def check(self, step: dict[str, Any]) -> None:
        args = step["check"]
        result = self.billing.check(
            args.get("customer", self.customer),
            args["feature"],
            str(args.get("required", 1)),
            entity_id=args.get("entity"),
        )
        document = result.as_dict()
        _expect(step, document)
        _compare(self.folder / f"check.{args['name']}.json", exact_json(document))

    def show(self, step: dict[str, Any]) -> None:
        with self.billing.engine.connect() as conn:
            shown = show_address(conn, f"customer.{self.customer}", self.clock.now)
        _compare(self.folder / f"show.{step['show']}.txt", text(shown.kind, shown.document))

    def step(self, step: dict[str, Any]) -> None:
        self.clock.now = _moment(step["at"])
        (verb,) = [verb for verb in VERBS if verb in step]
        actions: dict[str, Callable[[dict[str, Any]], None]] = {
            "apply": self.apply,
            "track": self.track,
            "check": self.check,
            "show": self.show,
        }
        actions[verb](step)


def _moment(at: date | datetime) -> datetime:
    return at if isinstance(at, datetime) else datetime(at.year, at.month, at.day)


def _expect(step: dict[str, Any], document: dict[str, Any]) -> None:
    """The answer's values the step expects (numbers compare exactly: 150 == Decimal(150))."""
    expected = step.get("expect", {})
    found = {key: document.get(key) for key in expected}
    assert found == expected, (step, found)


def _compare(path: Path, actual: str) -> None:
    if UPDATE:
        if not path.is_file() or path.read_text(encoding="utf-8") != actual:
            path.write_text(actual, encoding="utf-8")
        return
    assert path.is_file(), f"{path} is missing: run with AUTUMN_SYNC_UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8"), f"{path.parent.name}/{path.name} differs"


@pytest.mark.parametrize("case", CASES)
def test_runtime_golden(case: str, db_url: str) -> None:
    script = load_script(case)
    run = Run(GOLDEN / case, db_url, script["customer"])
    try:
        for step in script["steps"]:
            run.step(step)
    finally:
        run.billing.engine.dispose()
