"""The plan as a pull-request comment: sections, escaping, warnings, and the cut that keeps a
long plan under GitHub's 65,536-character limit.

The long plans are golden files in `tests/markdown/` (regenerated, like `tests/golden/`, with
`AUTUMN_SYNC_UPDATE_GOLDEN=1`). They are planned against a database that holds a small
catalog and one customer (`BEFORE`, plus three app-created customers on `plan.legacy`), from a
file that drops both (an archive and a destroy), changes the currency (a warning) and adds
hundreds or thousands of customers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine

from autumn_sync.database.engine import connect
from autumn_sync.emulator import Emulator
from autumn_sync.model.address import Target
from autumn_sync.pipeline import apply_plan, load_desired, make_plan
from autumn_sync.plan.plan import ChangePlan
from autumn_sync.render.markdown import MARKER, MAX_BODY, render_markdown
from autumn_sync.stripe.gateway import Gateway, StripeConfig
from tests.conftest import EXAMPLES
from tests.helpers import add_customers

GOLDEN = Path(__file__).parent / "markdown"
UPDATE = os.environ.get("AUTUMN_SYNC_UPDATE_GOLDEN") == "1"
RUN_FULL = "Run `autumn-sync plan` for the full plan."
UNLIMITED = 10**9
FENCE = re.compile(r"^`{3,}")

BEFORE = """\
version: 1
settings: {currency: usd}
features:
  messages: {name: Messages, type: metered, consumable: true}
plans:
  free:
    name: Free
    default: true
    items: [{feature: messages, included: 100, reset: month}]
  legacy:
    name: Legacy
    price: {amount: 10, interval: month}
    items: [{feature: messages, included: 500, reset: month}]
customers:
  - {email: gone@example.com, name: Gone Ltd, plans: [free]}
"""

AFTER_HEAD = """\
version: 1
settings: {currency: eur}
features:
  messages: {name: Messages, type: metered, consumable: true}
plans:
  free:
    name: Free
    default: true
    items: [{feature: messages, included: 100, reset: month}]
  pro:
    name: Pro
    price: {amount: 20, interval: month}
    items: [{feature: messages, included: 1000, reset: month}]
customers:
"""

CALLOUT = [
    "> [!CAUTION]",
    "> This plan destroys and archives:",
    "> - `customer[gone@example.com]`: destroy: removed from the file: its plans, entities and"
    " balances go (usage too); in Stripe its subscriptions end at period end and the customer"
    " stays",
    "> - `plan.legacy`: archive: 3 customers stay on it",
    ">",
    "> `autumn-sync apply` refuses to destroy without `--allow-destroy`.",
]
WARNING = [
    "> [!WARNING]",
    "> The currency changes from USD to EUR and amounts are not converted: every price,"
    " including those of plan versions customers are on, is read in EUR",
]


def after_file(customers: int) -> str:
    """The file planned: the catalog without `legacy` and `customers` customers on pro."""
    lines = [
        f"  - {{id: user_{n:05d}, email: user{n}@example.com, name: Customer {n}, plans: [pro]}}"
        for n in range(customers)
    ]
    return AFTER_HEAD + "\n".join(lines) + "\n"


def long_plan(engine: Engine, tmp_path: Path, customers: int) -> ChangePlan:
    (tmp_path / "before.yaml").write_text(BEFORE, encoding="utf-8")
    (tmp_path / "after.yaml").write_text(after_file(customers), encoding="utf-8")
    before = make_plan(engine, load_desired(tmp_path / "before.yaml"))
    apply_plan(engine, before)
    add_customers(engine, "legacy", 3)
    return make_plan(engine, load_desired(tmp_path / "after.yaml"))


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = connect(sqlite_url)
    yield engine
    engine.dispose()


def compare(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.is_file(), f"{path} is missing: run with AUTUMN_SYNC_UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8"), f"markdown/{name} differs"


# --- checks every cut body passes -----------------------------------------------------------


def assert_cut_well(body: str, full: str, limit: int = MAX_BODY) -> list[str]:
    """`body` is `full` cut under `limit`: whole lines of `full` in their order, closed, and
    ending with the note; returns its lines without the note and the closing blank line."""
    assert len(body) < limit < len(full)
    lines = body.splitlines()
    assert lines[-1].startswith("The plan is too long for a comment: ")
    assert lines[-1].endswith(RUN_FULL)
    assert lines[-2] == ""
    kept = lines[:-2]
    assert_subsequence(kept, full.splitlines())
    assert_balanced(lines)
    return kept


def assert_subsequence(lines: list[str], of: list[str]) -> None:
    source = iter(of)
    for line in lines:
        assert any(line == candidate for candidate in source), f"not from the plan: {line!r}"


def assert_balanced(lines: list[str]) -> None:
    assert sum(bool(FENCE.match(line)) for line in lines) % 2 == 0
    opened = sum(line.startswith("<details>") for line in lines)
    assert opened == sum(line == "</details>" for line in lines)


def top(added: int) -> list[str]:
    """How a long plan's comment begins, whatever is cut: the headline, the warning and the
    callout."""
    headline = f"{added} to add, 1 to change, 1 to archive, 1 to destroy"
    return [MARKER, f"### autumn-sync plan: {headline}", "", *WARNING, "", *CALLOUT, ""]


def note_counts(body: str) -> tuple[int, int, str]:
    match = re.search(r"comment: (\d+) of (\d+) changes are ([a-z ,]+)\. ", body)
    assert match is not None
    return int(match[1]), int(match[2]), match[3]


def rows(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("| `")]


# --- long plans -----------------------------------------------------------------------------


def test_a_long_plan_keeps_every_row_and_drops_details(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    plan = long_plan(sqlite_engine, tmp_path, 400)
    full, body = render_markdown(plan, UNLIMITED), render_markdown(plan)
    assert len(plan.changes) == 404  # 400 customers, pro, settings, a destroy, an archive
    kept = assert_cut_well(body, full)
    assert len(rows(kept)) == len(rows(full.splitlines())) == 404
    shown, total, how = note_counts(body)
    assert (total, how, shown) == (404, "shown in detail", 281)
    assert sum(line.startswith("<details>") for line in kept) == shown
    destroy = "<details><summary><code>- customer[gone@example.com]</code></summary>"
    assert destroy in kept  # a destroy's details have room first
    assert kept[: len(top(401))] == top(401)
    compare("details_dropped.md", body)


def test_a_very_long_plan_cuts_the_table_at_a_row(sqlite_engine: Engine, tmp_path: Path) -> None:
    plan = long_plan(sqlite_engine, tmp_path, 3000)
    full, body = render_markdown(plan, UNLIMITED), render_markdown(plan)
    kept = assert_cut_well(body, full)
    shown, total, how = note_counts(body)
    assert (total, how, shown) == (3004, "listed, none in detail", 1575)
    assert len(rows(kept)) == shown
    assert kept[-1] == rows(full.splitlines())[shown - 1]  # cut after a whole row
    assert "<details>" not in body
    assert kept[: len(top(3001))] == top(3001)
    compare("tables_cut.md", body)


@pytest.mark.parametrize("limit", [300, 700, 1500, 4000, 9000, 14000])
def test_any_limit_gives_a_well_cut_body(sqlite_engine: Engine, tmp_path: Path, limit: int) -> None:
    """From a limit the callout does not fit in (the quote is ended by a blank line) to
    one where details fit."""
    plan = long_plan(sqlite_engine, tmp_path, 60)
    full, body = render_markdown(plan, UNLIMITED), render_markdown(plan, limit)
    kept = assert_cut_well(body, full, limit)
    assert kept[:2] == [
        MARKER,
        "### autumn-sync plan: 61 to add, 1 to change, 1 to archive, 1 to destroy",
    ]
    if limit == 300:
        assert kept[-1].startswith("> ")  # a quote cut short, ended by the blank line
        assert not any(line.startswith("#### ") for line in kept)


# --- sections, escaping, warnings -----------------------------------------------------------


def sections(body: str) -> dict[str, list[str]]:
    """The addresses of each section's table, by the section's heading."""
    found: dict[str, list[str]] = {}
    heading = ""
    for line in body.splitlines():
        if line.startswith("#### "):
            heading = line[5:]
            found[heading] = []
        elif line.startswith("| `"):
            found[heading].append(code_text(cells(line)[1]))
    return found


def cells(row: str) -> list[str]:
    """The cells of a table row as GitHub splits them: at every `|` not escaped as `\\|`,
    the `\\|` then read as `|`."""
    parts, current, index = [], "", 1
    while index < len(row) - 1:
        if row.startswith("\\|", index):
            current, index = current + "|", index + 2
        elif row[index] == "|":
            parts, current, index = [*parts, current.strip()], "", index + 1
        else:
            current, index = current + row[index], index + 1
    return [*parts, current.strip()]


def code_text(cell: str) -> str:
    """The text of a cell that is one code span."""
    ticks = len(cell) - len(cell.lstrip("`"))
    assert ticks and cell.endswith("`" * ticks) and "`" * ticks not in cell[ticks:-ticks]
    inner = cell[ticks:-ticks]
    return inner[1:-1] if inner.startswith(" ") and inner.endswith(" ") else inner


def test_stripe_changes_have_a_section_of_their_own(sqlite_url: str) -> None:
    engine = connect(sqlite_url)
    with Emulator() as emu:
        plan = make_plan(
            engine,
            load_desired(EXAMPLES / "billing.yaml"),
            Gateway(StripeConfig("sk_test_md", emu.url)),
        )
    engine.dispose()
    body = render_markdown(plan)
    found = sections(body)
    stripe = [c.address for c in plan.changes if c.kind.target is Target.STRIPE]
    database = [c.address for c in plan.changes if c.kind.target is Target.DATABASE]
    assert len(stripe) > 10 and len(database) > 10
    assert found == {
        f"Billing database: {len(database)} changes": database,
        f"Stripe: {len(stripe)} changes": stripe,
    }
    assert body.index("#### Billing database") < body.index("#### Stripe")
    assert "Stripe is not connected" not in body


def test_addresses_and_reasons_are_escaped(sqlite_engine: Engine, tmp_path: Path) -> None:
    customers = [
        "  - {id: 'team|red', plans: [pro]}",
        "  - {email: 'o`neil|x@example.com', plans: [pro]}",
        "  - {email: '<b>&co@example.com', plans: [pro]}",
    ]
    (tmp_path / "billing.yaml").write_text(
        AFTER_HEAD + "\n".join(customers) + "\n", encoding="utf-8"
    )
    plan = make_plan(sqlite_engine, load_desired(tmp_path / "billing.yaml"))
    body = render_markdown(plan)
    weird = ["customer.team|red", "customer[<b>&co@example.com]", "customer[o`neil|x@example.com]"]
    assert sections(body)["Billing database: 7 changes"][-3:] == weird
    assert [len(cells(row)) for row in rows(body.splitlines())] == [3] * 7
    assert "| `+` | `customer.team\\|red` | create |" in body
    assert "| `+` | ``customer[o`neil\\|x@example.com]`` | create |" in body
    assert (
        "<details><summary><code>+ customer[&lt;b&gt;&amp;co@example.com]</code></summary>" in body
    )
    plan = replace(plan, warnings=("a *bold* <claim> | and `code`",))
    assert "> a \\*bold\\* \\<claim\\> \\| and \\`code\\`" in render_markdown(plan).splitlines()


def test_details_with_backticks_get_a_longer_fence(sqlite_engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "billing.yaml").write_text(
        AFTER_HEAD + "  - {id: u1, name: 'a ``` b', plans: [pro]}\n", encoding="utf-8"
    )
    body = render_markdown(make_plan(sqlite_engine, load_desired(tmp_path / "billing.yaml")))
    block = body.split("<summary><code>+ customer.u1</code></summary>\n\n")[1].split(
        "\n\n</details>"
    )[0]
    assert block.splitlines() == [
        "````",
        'id:    "u1"',
        'name:  "a ``` b"',
        'plans: ["pro"]',
        "````",
    ]


def test_warnings_come_first(sqlite_engine: Engine, tmp_path: Path) -> None:
    plan = long_plan(sqlite_engine, tmp_path, 1)
    plan = replace(plan, warnings=(*plan.warnings, "this plan is partial\n(--target plan.pro)"))
    lines = render_markdown(plan).splitlines()
    assert lines[:10] == [
        MARKER,
        "### autumn-sync plan: 2 to add, 1 to change, 1 to archive, 1 to destroy",
        "",
        *WARNING,
        "",
        "> [!WARNING]",
        "> this plan is partial",
        "> (--target plan.pro)",
        "",
    ]
    assert lines[10 : 10 + len(CALLOUT)] == CALLOUT


def test_an_empty_plan_is_short(sqlite_engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "billing.yaml").write_text(BEFORE, encoding="utf-8")
    desired = load_desired(tmp_path / "billing.yaml")
    apply_plan(sqlite_engine, make_plan(sqlite_engine, desired))
    assert render_markdown(make_plan(sqlite_engine, desired)) == (
        f"{MARKER}\n### autumn-sync plan: no changes\n\n"
        "No changes. The billing database matches the configuration.\n"
    )
