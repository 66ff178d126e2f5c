"""The bad-input corpus: each file in tests/bad/ is a small billing file with one mistake (a few
have more), and starts with the problems it must produce, one `# expect: LINE:COLUMN: message`
line each. The loader must report exactly those, the command line must print them as
`FILE:LINE:COLUMN: message` and exit 1, and nothing may be written to the database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from autumn_sync.config import ConfigError, load_file, load_text
from tests.conftest import EXAMPLES, run_cli

BAD = Path(__file__).parent / "bad"
CORPUS = sorted(BAD.glob("*.yaml"))
EXPECT = re.compile(r"# expect: (\d+):(\d+): (.+)")

Expected = tuple[int, int, str]


def expected(path: Path) -> list[Expected]:
    """The `# expect:` lines at the top of `path`, as (line, column, message)."""
    found = []
    text = path.read_bytes().decode("utf-8", errors="replace")  # one file is Latin-1
    for line in text.splitlines():
        match = EXPECT.fullmatch(line)
        if match is None:
            break
        found.append((int(match[1]), int(match[2]), match[3]))
    return found


def reported(path: Path) -> list[Expected]:
    with pytest.raises(ConfigError) as info:
        load_file(path)
    assert all(problem.file == str(path) for problem in info.value.problems)
    return [(p.line, p.column, p.message) for p in info.value.problems]


def printed(path: Path, stderr: str) -> list[str]:
    """The problem lines the command printed for `path`."""
    return [line for line in stderr.splitlines() if line.startswith(f"{path}:")]


def as_lines(path: Path) -> list[str]:
    return [f"{path}:{line}:{column}: {message}" for line, column, message in expected(path)]


def test_the_corpus_is_complete_and_well_formed() -> None:
    assert len(CORPUS) >= 35
    numbers = [int(path.name.split("-")[0]) for path in CORPUS]
    assert len(set(numbers)) == len(numbers), "two corpus files share a number"
    for path in CORPUS:
        assert re.fullmatch(r"\d{2,3}-[a-z0-9-]+\.yaml", path.name), path.name
        wanted = expected(path)
        assert wanted, f"{path.name} does not start with an '# expect:' line"
        assert wanted == sorted(wanted), f"{path.name}: list the expectations by location"
        assert all(message[0].islower() for _, _, message in wanted), path.name


@pytest.mark.parametrize("path", CORPUS, ids=lambda path: path.stem)
def test_the_loader_reports_exactly_the_expected_problems(path: Path) -> None:
    assert reported(path) == expected(path)


@pytest.mark.parametrize("path", CORPUS, ids=lambda path: path.stem)
def test_validate_prints_them_and_fails(path: Path) -> None:
    result = run_cli("validate", "-f", str(path))
    assert result.exit_code == 1
    assert printed(path, result.stderr) == as_lines(path)
    count = len(expected(path))
    assert f"{count} problem{'s' if count != 1 else ''} found." in result.stderr
    assert "is valid" not in result.stdout
    assert "Traceback" not in result.output


@pytest.mark.parametrize("path", CORPUS, ids=lambda path: path.stem)
def test_plan_prints_them_and_writes_nothing(path: Path, tmp_path: Path) -> None:
    database = tmp_path / "x.db"
    result = run_cli("plan", "-f", str(path), db=f"sqlite:///{database}")
    assert result.exit_code == 1
    assert printed(path, result.stderr) == as_lines(path)
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert not database.exists()


def test_mistakes_in_several_sections_are_reported_at_once_in_file_order() -> None:
    """The checks run section by section (features, plans, rewards), but the file lists
    rewards first and features last: the problems still come sorted by location."""
    path = BAD / "59-several-mistakes.yaml"
    problems = reported(path)
    assert len(problems) == 5
    assert problems == sorted(problems)
    text = path.read_text(encoding="utf-8").splitlines()
    sections = [_section_of(text, line) for line, _, _ in problems]
    assert {"rewards", "plans", "features"} <= set(sections)
    result = run_cli("validate", "-f", str(path))
    assert printed(path, result.stderr) == as_lines(path)
    assert "5 problems found." in result.stderr


def _section_of(text: list[str], line: int) -> str:
    """The top-level key whose block holds `line` (1-based); '' above the first one."""
    above = [row.split(":")[0] for row in text[:line] if re.match(r"[a-z]+:", row)]
    return above[-1] if above else ""


# Counterparts of corpus files that must pass: the checks are not over-eager.
FEATURES = """
features:
  messages: {name: Messages, type: metered, consumable: true}
  seats: {name: Seats, type: metered, consumable: false}
"""
FINE = {
    "kwd three decimals": "settings: {currency: kwd}\n"
    "plans:\n  pro: {name: Pro, price: {amount: 1.005, interval: month}}\n",
    "jpy whole amount": "settings: {currency: jpy}\n"
    "plans:\n  pro: {name: Pro, price: {amount: 1000, interval: month}}\n",
    "usd trailing zeros": "plans:\n  pro: {name: Pro, price: {amount: 20.500, interval: month}}\n",
    "quoted numeric id": "plans:\n  '2024': {name: Plan of 2024}\n",
    "tiers ending at inf": FEATURES
    + "plans:\n  pro:\n    name: Pro\n    items:\n      - feature: seats\n"
    "        price: {billing: prepaid, interval: month, tier_mode: volume,\n"
    "                tiers: [{up_to: 10, amount: 10}, {up_to: inf, amount: 8}]}\n",
    "consumable with a price interval": FEATURES
    + "plans:\n  pro:\n    name: Pro\n    items:\n      - feature: messages\n"
    "        price: {billing: prepaid, amount: 10, per: 1000, interval: month}\n",
    "explicit allowances": FEATURES + "plans:\n  pro:\n    name: Pro\n    items:\n"
    "      - {feature: messages, unlimited: true}\n      - {feature: seats, included: 0}\n"
    "  team:\n    name: Team\n    items:\n"
    "      - {feature: messages, reset: month, price: {billing: pay_per_use, amount: 1}}\n",
    "pay-per-use reset equal to its interval, first tier above included": FEATURES
    + "plans:\n  pro:\n    name: Pro\n    items:\n"
    "      - feature: messages\n        included: 100\n        reset: month\n"
    "        price: {billing: pay_per_use, interval: month,\n"
    "                tiers: [{up_to: 101, amount: 1}, {up_to: inf, amount: 0.5}]}\n",
    "credit costs on a consumable feature": FEATURES
    + "  credits: {name: Credits, type: credit_system, credit_costs: {messages: 1}}\n",
    "hourly and one-off resets": FEATURES + "plans:\n  pro:\n    name: Pro\n    items:\n"
    "      - {feature: messages, included: 100, reset: hour}\n"
    "      - {feature: seats, included: 3, reset: one_off}\n",
    "resets every N intervals, rollovers, caps": FEATURES
    + "  credits: {name: Credits, type: credit_system, credit_costs: {messages: 1}}\n"
    "plans:\n  pro:\n    name: Pro\n    items:\n"
    "      - {feature: messages, included: 100, reset: hour, interval_count: 6,\n"
    "         rollover: {max: 50, expires_after: {months: 1}}}\n"
    "      - {feature: credits, included: 10, reset: month, rollover: {max_percentage: 100}}\n"
    "      - {feature: seats, included: 3, interval_count: 1, max_purchase: 10,\n"
    "         price: {billing: pay_per_use, amount: 10, interval: month}}\n"
    "  team:\n    name: Team\n    items:\n"
    "      - {feature: messages, included: 5, reset: one_off}\n"
    "      - {feature: credits, included: 10, reset: week, rollover: {expires_after: never},\n"
    "         price: {billing: pay_per_use, amount: 1, interval: week}, max_purchase: 0.5}\n",
    "one default per group": "plans:\n  free: {name: Free, group: a, default: true}\n"
    "  team: {name: Team, group: b, default: true}\n  solo: {name: Solo, default: true}\n",
    "duration in months": "rewards:\n"
    "  r: {type: percentage_discount, percent_off: 100, duration: {months: 3}}\n",
    "promo codes differ": "rewards:\n"
    "  a: {type: fixed_discount, amount_off: 5, promo_codes: [SPRING]}\n"
    "  b: {type: fixed_discount, amount_off: 5, promo_codes: [SUMMER]}\n",
    "promo codes with restrictions": "rewards:\n"
    "  a: {type: fixed_discount, amount_off: 5, promo_codes: [SPRING, {code: VIP50,\n"
    "      max_redemptions: 1, expires_at: 2099-01-01, first_time_transaction: true},\n"
    "      {code: LATE, expires_at: '2099-06-30T12:00:00+02:00'}, {code: PLAIN}]}\n",
}


@pytest.mark.parametrize("body", FINE.values(), ids=FINE.keys())
def test_the_valid_counterparts_pass(body: str) -> None:
    load_text("version: 1\n" + body)


def test_the_example_still_passes() -> None:
    result = run_cli("validate", "-f", str(EXAMPLES / "billing.yaml"))
    assert result.exit_code == 0, result.output
