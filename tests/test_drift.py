"""`autumn-sync drift`: what changed outside the tool, in Stripe and between the file and the
database, against the Stripe emulator; exit codes 0 (clean, or only cosmetic differences), 2
(drift apply corrects or that needs a decision), 1 (error)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result

from autumn_sync.emulator import Emulator
from autumn_sync.model.stripe import OWNER_KEY
from tests.conftest import EXAMPLES, run_cli

EXAMPLE = str(EXAMPLES / "billing.yaml")


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


class Env:
    def __init__(self, emu: Emulator, db: str) -> None:
        self.emu, self.db = emu, db

    def run(self, *args: str) -> Result:
        stripe = ["--stripe-api-key", "sk_test_drift", "--stripe-api-base", self.emu.url]
        return run_cli(*stripe, *args, db=self.db)

    def owned(self, kind: str, address: str) -> dict[str, Any]:
        found = [o for o in self.emu.state.all(kind) if o["metadata"].get(OWNER_KEY) == address]
        assert len(found) == 1, found
        return found[0]


@pytest.fixture
def env(emu: Emulator, sqlite_url: str) -> Env:
    env = Env(emu, sqlite_url)
    assert env.run("apply", "-f", EXAMPLE, "--auto-approve").exit_code == 0
    return env


def test_clean_after_apply(env: Env) -> None:
    result = env.run("drift", "-f", EXAMPLE)
    assert result.exit_code == 0
    assert result.stdout == "No drift. The billing database, Stripe and the file agree.\n"


def test_archived_outside_is_reported_and_repaired(env: Env) -> None:
    price = env.owned("price", "stripe_price.pro.seats")
    env.emu.state.modify("price", price["id"], active=False)
    result = env.run("drift", "-f", EXAMPLE)
    assert result.exit_code == 2
    assert "  ! stripe_price.pro.seats: archived outside autumn-sync" in result.stdout
    plan = env.run("plan", "-f", EXAMPLE).stdout
    assert "  ~ stripe_price.pro.seats (update in place)\n      active: false → true" in plan
    assert env.run("apply", "-f", EXAMPLE, "--auto-approve").exit_code == 0
    assert env.run("drift", "-f", EXAMPLE).exit_code == 0


def test_ownership_removed_is_restored_not_duplicated(env: Env) -> None:
    product = env.owned("product", "stripe_product.free")
    env.emu.state.set_metadata("product", product["id"], OWNER_KEY, None)
    result = env.run("drift", "-f", EXAMPLE)
    assert result.exit_code == 2
    assert (
        f"  ! stripe_product.free: {product['id']} lost its autumn_sync_address metadata "
        "(plan restores it)"
    ) in result.stdout
    before = env.emu.state.count("product")
    assert env.run("apply", "-f", EXAMPLE, "--auto-approve").exit_code == 0
    assert env.emu.state.count("product") == before
    assert env.owned("product", "stripe_product.free")["id"] == product["id"]
    assert env.run("drift", "-f", EXAMPLE).exit_code == 0


def test_dashboard_rename_is_cosmetic_and_kept(env: Env, tmp_path: Path) -> None:
    product = env.owned("product", "stripe_product.pro")
    env.emu.state.modify("product", product["id"], name="Pro (promo)")
    result = env.run("drift", "-f", EXAMPLE)
    assert result.exit_code == 0
    assert result.stdout == (
        "Cosmetic differences in Stripe, which apply keeps (exit 0 unless --strict):\n\n"
        '  ~ stripe_product.pro: renamed in Stripe to "Pro (promo)" (cosmetic: kept; '
        'the catalog says "Pro")\n\n'
        "No drift to correct: 1 cosmetic difference in Stripe, kept.\n"
    )
    assert env.run("drift", "-f", EXAMPLE, "--strict").exit_code == 2
    document = json.loads(env.run("drift", "-f", EXAMPLE, "--format", "json").stdout)
    assert document["drift_found"] is False
    assert [item["cosmetic"] for item in document["stripe"]] == [True]
    assert env.run("plan", "-f", EXAMPLE, "--detailed-exitcode").exit_code == 0
    assert env.owned("product", "stripe_product.pro")["name"] == "Pro (promo)"
    renamed = _edited(tmp_path, lambda doc: doc["plans"]["pro"].update(name="Pro 2026"))
    assert env.run("apply", "-f", renamed, "--auto-approve").exit_code == 0
    assert env.owned("product", "stripe_product.pro")["name"] == "Pro 2026"
    assert env.run("drift", "-f", renamed).exit_code == 0


def test_a_rename_beside_drift_apply_corrects_still_exits_2(env: Env) -> None:
    product = env.owned("product", "stripe_product.pro")
    env.emu.state.modify("product", product["id"], name="Pro (promo)")
    price = env.owned("price", "stripe_price.pro.seats")
    env.emu.state.modify("price", price["id"], active=False)
    result = env.run("drift", "-f", EXAMPLE)
    assert result.exit_code == 2
    assert result.stdout.startswith(
        "Stripe differs from the billing database:\n\n"
        "  ! stripe_price.pro.seats: archived outside autumn-sync\n\n"
        "Cosmetic differences in Stripe, which apply keeps (exit 0 unless --strict):\n\n"
        "  ~ stripe_product.pro: renamed in Stripe"
    )
    assert (
        "Drift found: 1 in Stripe, 0 pending from the file "
        "(and 1 cosmetic difference in Stripe, kept)." in result.stdout
    )
    markdown = env.run("drift", "-f", EXAMPLE, "--format", "markdown").stdout
    assert "| ⚠️ | `stripe_price.pro.seats` | archived outside autumn-sync |" in markdown
    assert '- `stripe_product.pro`: renamed in Stripe to "Pro (promo)"' in markdown
    assert env.run("apply", "-f", EXAMPLE, "--auto-approve").exit_code == 0
    assert env.run("drift", "-f", EXAMPLE).exit_code == 0


def test_terms_changed_outside(env: Env) -> None:
    price = env.owned("price", "stripe_price.pro.base")
    env.emu.state.modify("price", price["id"], unit_amount=2500, unit_amount_decimal="2500")
    result = env.run("drift", "-f", EXAMPLE)
    assert result.exit_code == 2
    assert (
        "  ! stripe_price.pro.base: terms no longer match: unit_amount_decimal: 2500 → 2000"
        in result.stdout
    )


def test_missing_object(env: Env) -> None:
    promo = env.owned("promotion_code", "stripe_promotion_code.welcome5.WELCOME5")
    env.emu.state.remove("promotion_code", promo["id"])
    result = env.run("drift", "-f", EXAMPLE)
    assert result.exit_code == 2
    assert (
        f"  ! stripe_promotion_code.welcome5.WELCOME5: {promo['id']} is gone from Stripe"
        in result.stdout
    )


def test_unmanaged_objects_are_listed_apart_and_never_touched(env: Env) -> None:
    legacy = env.emu.call("POST", "/v1/products", {"name": "Legacy add-on"})
    result = env.run("drift", "-f", EXAMPLE)
    assert result.exit_code == 0
    assert f"  products: {legacy['id']} Legacy add-on" in result.stdout
    assert env.run("apply", "-f", EXAMPLE, "--auto-approve").exit_code == 0
    assert env.emu.state.get("product", legacy["id"])["active"] is True


def test_file_ahead_of_the_database(env: Env, tmp_path: Path) -> None:
    changed = _edited(tmp_path, lambda doc: doc["features"]["sso"].update(name="SAML SSO"))
    result = env.run("drift", "-f", changed)
    assert result.exit_code == 2
    assert "  ~ feature.sso (update in place)" in result.stdout
    assert "Drift found: 0 in Stripe, 1 pending from the file." in result.stdout


def test_json_and_markdown(env: Env) -> None:
    price = env.owned("price", "stripe_price.pro.seats")
    env.emu.state.modify("price", price["id"], active=False)
    document = json.loads(env.run("drift", "-f", EXAMPLE, "--format", "json").stdout)
    assert document["drift_found"] is True
    assert document["stripe"] == [
        {
            "address": "stripe_price.pro.seats",
            "kind": "archived",
            "message": "archived outside autumn-sync",
            "cosmetic": False,
        }
    ]
    markdown = env.run("drift", "-f", EXAMPLE, "--format", "markdown").stdout
    assert markdown.startswith("### autumn-sync drift\n")
    assert "| ⚠️ | `stripe_price.pro.seats` | archived outside autumn-sync |" in markdown


def test_without_stripe_compares_file_and_database(sqlite_url: str) -> None:
    assert run_cli("apply", "-f", EXAMPLE, "--auto-approve", db=sqlite_url).exit_code == 0
    result = run_cli("drift", "-f", EXAMPLE, db=sqlite_url)
    assert result.exit_code == 0
    assert result.stdout == (
        "No drift between the file and the billing database (Stripe not connected).\n"
    )
    assert "Stripe is not connected" in result.stderr


def test_bad_file_is_an_error(env: Env, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nfeatures: [\n")
    result = env.run("drift", "-f", str(bad))
    assert result.exit_code == 1
    assert "Traceback" not in result.output


def _edited(tmp_path: Path, edit: Any) -> str:
    document = yaml.safe_load(Path(EXAMPLE).read_text())
    edit(document)
    path = tmp_path / "billing.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return str(path)
