"""The field diff: DeepDiff and the leaf-by-leaf comparison (used for the records there is one
of per customer) find the same changes on any data shaped like records' attributes, and the
changes come in the project's notation and the record's own order."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from autumn_sync.model.records import (
    FixedPrice,
    Plan,
    PlanContent,
    PlanItem,
    Tier,
    UsageModel,
    UsagePrice,
)
from autumn_sync.plan.changes import FieldChange
from autumn_sync.plan.fields import compare_deep, compare_leaves, field_changes

# Keys that matter to the notation: maps keyed by id, sets shown whole, plain fields.
KEYS = ("items", "grants", "plans", "promo_codes", "price", "amount", "name", "tiers", "up_to")
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(["month", "year", "inf", "Pro", ""]),
    st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False),
    st.integers(min_value=0, max_value=5),
)
data: Any = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from((*KEYS, "messages", "seats", "sso")), inner, max_size=4),
    ),
    max_leaves=12,
)
records = st.dictionaries(st.sampled_from(KEYS), data, max_size=5)


@settings(max_examples=150, deadline=None)
@given(records, records)
@example({"tiers": [None, True]}, {"tiers": [True]})  # lists compare by position
@example({"tiers": [1, 2, 3]}, {"tiers": [1, 3]})
def test_deepdiff_and_the_leaf_comparison_agree(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert compare_deep(old, new) == compare_leaves(old, new)


@settings(max_examples=100, deadline=None)
@given(records)
def test_equal_data_has_no_change(data_: dict[str, Any]) -> None:
    assert compare_deep(data_, data_) == {} == compare_leaves(data_, data_)


def plan(**content: Any) -> Plan:
    return Plan(id="pro", name="Pro", content=PlanContent(**content))


def test_changes_in_the_notation_and_order_of_the_record() -> None:
    before = plan(
        price=FixedPrice(Decimal(20), "month"),
        items=(
            PlanItem("messages", Decimal(100), reset="month"),
            PlanItem("seats", Decimal(3), price=UsagePrice(UsageModel.PREPAID, amount=Decimal(10))),
            PlanItem("sso"),
        ),
    )
    after = plan(
        price=FixedPrice(Decimal("25.00"), "month"),
        items=(
            PlanItem("messages", Decimal("100.0"), reset="week"),
            PlanItem(
                "seats",
                Decimal(3),
                price=UsagePrice(
                    UsageModel.PREPAID,
                    tiers=(Tier(Decimal(10), Decimal(10)), Tier(None, Decimal(8))),
                ),
            ),
        ),
    )
    assert field_changes(before, after) == (
        FieldChange("price.amount", Decimal(20), Decimal("25.00")),
        FieldChange("items[messages].reset", "month", "week"),
        FieldChange("items[seats].price.amount", Decimal(10), None),
        FieldChange("items[seats].price.tiers[0].up_to", None, Decimal(10)),
        FieldChange("items[seats].price.tiers[0].amount", None, Decimal(10)),
        FieldChange("items[seats].price.tiers[1].up_to", None, "inf"),
        FieldChange("items[seats].price.tiers[1].amount", None, Decimal(8)),
        FieldChange("items[sso]", True, None),
    )
