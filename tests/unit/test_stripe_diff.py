"""The pure Stripe diffs: the catalog's objects (`stripe.diff.catalog.diff_stripe`) and the
customers' (`stripe.diff.customers.diff_billing`), against hand-built Stripe states."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

import pytest

from autumn_sync.model.customers import SEND_INVOICE
from autumn_sync.model.stripe import (
    Recurring,
    StripeCoupon,
    StripeCustomer,
    StripeMeter,
    StripePrice,
    StripeProduct,
    StripePromotionCode,
    StripeRecord,
    StripeState,
    StripeSubscription,
    SubscriptionItem,
)
from autumn_sync.plan.changes import Archive, Change, Create, FieldChange, Replace, Update
from autumn_sync.stripe.diff.catalog import (
    OWN_PRICE_UNUSED,
    RESTRICTIONS_FIXED,
    DiffInputs,
    diff_stripe,
)
from autumn_sync.stripe.diff.customers import CANCELS, LEFT, Waiting, diff_billing

PRO = "stripe_product.pro"
BASE = "stripe_price.pro.base"
MESSAGES = "stripe_price.pro.messages"
METER = "stripe_meter.pro.messages"
COUPON = "stripe_coupon.launch20"
CODE = "stripe_promotion_code.launch20.LAUNCH20"


# --- builders ------------------------------------------------------------------------------


def product(address: str = PRO, name: str = "Pro", **fields: object) -> StripeProduct:
    default = BASE if address == PRO else None
    fields.setdefault("default_price", default)
    return StripeProduct(address, name, **fields)  # type: ignore[arg-type]


def price(
    address: str = BASE, cents: int = 2000, version: int = 1, **fields: object
) -> StripePrice:
    part = address.split(".")[2].split("[")[0]
    return StripePrice(
        address=address,
        product=PRO if part == "base" else f"{PRO}.{part}",
        currency="usd",
        lookup_key=f"autumn_sync.pro.{part}" if "[" not in address else None,
        version=version,
        unit_amount_decimal=Decimal(cents),
        recurring=Recurring("month", 1),
        **fields,  # type: ignore[arg-type]
    )


def metered_price(version: int = 1, **fields: object) -> StripePrice:
    return replace(
        price(MESSAGES, 5, version, **fields),
        recurring=Recurring("month", 1, "metered", METER),
    )


def meter(**fields: object) -> StripeMeter:
    return StripeMeter(METER, "Pro – Messages", "autumn_sync.pro.messages", **fields)  # type: ignore[arg-type]


def coupon(percent: int = 20, **fields: object) -> StripeCoupon:
    fields.setdefault("name", "Launch")
    return StripeCoupon(
        COUPON,
        "launch20",
        "repeating",
        percent_off=Decimal(percent),
        duration_in_months=3,
        **{"applies_to": (PRO,), **fields},  # type: ignore[arg-type]
    )


def code(
    address: str = CODE, coupon_address: str = COUPON, **fields: object
) -> StripePromotionCode:
    return StripePromotionCode(address, address.rsplit(".", 1)[1], coupon_address, **fields)  # type: ignore[arg-type]


def stripe(*records: StripeRecord, superseded: tuple[StripePrice, ...] = ()) -> StripeState:
    state = StripeState(superseded=superseded)
    kinds = {
        StripeProduct: state.products,
        StripePrice: state.prices,
        StripeMeter: state.meters,
        StripeCoupon: state.coupons,
        StripePromotionCode: state.promotion_codes,
        StripeCustomer: state.customers,
        StripeSubscription: state.subscriptions,
    }
    for record in records:
        kinds[type(record)][record.address] = record  # type: ignore[index]
    return state


def stored(*records: StripeRecord) -> tuple[StripeRecord, ...]:
    """The records as Stripe holds them: each with a Stripe id."""
    return tuple(replace(r, stripe_id=f"id_{r.address}") for r in records)


def summary(changes: list[Change]) -> list[tuple[str, str]]:
    return sorted((type(c).__name__, c.address) for c in changes)


def one(changes: list[Change]) -> Change:
    assert len(changes) == 1, summary(changes)
    return changes[0]


def in_use(versions: dict[str, frozenset[int]], after: dict[str, int]) -> DiffInputs:
    return DiffInputs(versions_in_use=versions, versions_after=after)


CATALOG = (product(), price(), product(f"{PRO}.messages", "Pro – Messages"), metered_price())
REWARD = (coupon(), code())


# --- diff_stripe: creating and converging ------------------------------------------------------


def test_an_empty_stripe_gets_every_object_created() -> None:
    changes = diff_stripe(StripeState(), stripe(*CATALOG, meter(), *REWARD), DiffInputs())

    assert summary(changes) == [
        ("Create", COUPON),
        ("Create", METER),
        ("Create", BASE),
        ("Create", MESSAGES),
        ("Create", PRO),
        ("Create", f"{PRO}.messages"),
        ("Create", CODE),
    ]
    created = {c.address: c.after for c in changes}
    # A new product gets its default price when the price is made, not before.
    assert created[PRO] == product(default_price=None)
    assert all(isinstance(c, Create) and c.before is None for c in changes)


def test_the_same_objects_as_stripe_holds_give_no_change() -> None:
    desired = stripe(*CATALOG, meter(), *REWARD)
    existing = stripe(*stored(*CATALOG, meter(), *REWARD))

    assert diff_stripe(existing, desired, DiffInputs()) == []


def test_a_new_version_of_a_price_with_the_same_terms_is_no_change() -> None:
    existing = stripe(*stored(product(), price(version=1)))

    assert diff_stripe(existing, stripe(product(), price(version=4)), DiffInputs()) == []


# --- prices ----------------------------------------------------------------------------------


def test_a_changed_amount_replaces_the_price_and_archives_the_old_one() -> None:
    old = price(version=1, stripe_id="price_1")
    existing = stripe(*stored(product()), old)

    change = one(
        diff_stripe(existing, stripe(product(), price(cents=2500, version=2)), DiffInputs())
    )

    assert isinstance(change, Replace)
    assert change.address == BASE
    assert change.before == old
    assert change.after == price(cents=2500, version=2)  # no stripe id: a new price
    assert change.fields == (FieldChange("unit_amount_decimal", Decimal(2000), Decimal(2500)),)
    assert change.keep_old is None
    assert change.reason == (
        "price terms cannot change in Stripe; a new price takes over, the old one is archived"
    )


@pytest.mark.parametrize(
    ("versions", "after", "kept"),
    [
        ({1}, 2, "the customers on version 1"),
        ({1, 2}, 3, "the customers on versions 1 and 2"),
        ({1, 2, 3}, 4, "the customers on versions 1, 2 and 3"),
        ({2}, 2, None),  # customers on the new version only: they move to the new price
        (set(), 2, None),
    ],
)
def test_a_replaced_price_stays_active_for_customers_on_older_versions(
    versions: set[int], after: int, kept: str | None
) -> None:
    existing = stripe(*stored(product()), price(version=1, stripe_id="price_1"))
    ctx = in_use({"pro": frozenset(versions)}, {"pro": after})

    change = one(diff_stripe(existing, stripe(product(), price(cents=2500, version=after)), ctx))

    assert isinstance(change, Replace)
    assert change.keep_old == kept
    if kept:
        assert change.reason is not None and change.reason.endswith(f"stays active for {kept}")


def test_a_price_no_longer_wanted_is_archived_and_the_product_loses_its_default() -> None:
    existing = stripe(*stored(product(), price()))

    changes = diff_stripe(existing, stripe(product(default_price=None)), DiffInputs())

    assert summary(changes) == [("Archive", BASE), ("Update", PRO)]
    archive = next(c for c in changes if isinstance(c, Archive))
    assert archive.after == replace(archive.before, active=False)  # type: ignore[type-var]
    assert archive.reason == "not in the catalog"
    update = next(c for c in changes if isinstance(c, Update))
    assert update.fields == (FieldChange("default_price", BASE, None),)


def test_an_archived_price_not_wanted_is_left_alone() -> None:
    existing = stripe(*stored(product(default_price=None), price(active=False)))
    older = stripe(*stored(product(), price(version=2)), superseded=(price(active=False),))

    assert diff_stripe(existing, stripe(product(default_price=None)), DiffInputs()) == []
    assert diff_stripe(older, stripe(product(), price(version=2)), DiffInputs()) == []


def test_an_archived_price_wanted_again_with_the_same_terms_is_reactivated() -> None:
    existing = stripe(*stored(product(), price(active=False)))

    change = one(diff_stripe(existing, stripe(product(), price()), DiffInputs()))

    assert isinstance(change, Update)
    assert change.fields == (FieldChange("active", False, True),)


def test_a_customers_own_price_that_nothing_bills_is_archived() -> None:
    own = f"{BASE}[user_1]"
    existing = stripe(*stored(product(), price(), price(own, 1500)))

    change = one(diff_stripe(existing, stripe(product(), price()), DiffInputs()))

    assert isinstance(change, Archive)
    assert (change.address, change.reason) == (own, OWN_PRICE_UNUSED)


@pytest.mark.parametrize(
    ("versions", "after", "archived"),
    [
        (set(), 2, True),
        ({1}, 2, False),  # billed by version 1's customers
        ({2}, 2, True),
    ],
)
def test_an_older_active_price_is_archived_at_its_instance_unless_billed(
    versions: set[int], after: int, archived: bool
) -> None:
    older = price(version=1, stripe_id="price_old")
    existing = replace(
        stripe(*stored(product()), price(cents=2500, version=2, stripe_id="price_new")),
        superseded=(older,),
    )
    ctx = in_use({"pro": frozenset(versions)}, {"pro": after})

    changes = diff_stripe(existing, stripe(product(), price(cents=2500, version=2)), ctx)

    if not archived:
        assert changes == []
        return
    change = one(changes)
    assert isinstance(change, Archive)
    assert change.address == "stripe_price.pro.base#price_old"
    assert (change.before, change.after) == (older, replace(older, active=False))
    assert change.reason == "an older price"


# --- products ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "written", "fields"),
    [
        ("Pro", "Pro", None),  # renamed in the dashboard only: left alone
        ("Pro Plus", "Pro", (FieldChange("name", "Pro (legacy)", "Pro Plus"),)),
        ("Pro", None, (FieldChange("name", "Pro (legacy)", "Pro"),)),  # nothing written known
    ],
)
def test_a_product_renamed_in_the_dashboard_is_renamed_only_when_the_file_changes(
    wanted: str, written: str | None, fields: tuple[FieldChange, ...] | None
) -> None:
    existing = stripe(*stored(product(name="Pro (legacy)"), price()))
    ctx = DiffInputs(written_names={PRO: written} if written else {})

    changes = diff_stripe(existing, stripe(product(name=wanted), price()), ctx)

    if fields is None:
        assert changes == []
    else:
        assert [(type(c), c.address, c.fields) for c in changes] == [(Update, PRO, fields)]


@pytest.mark.parametrize("address", [PRO, BASE, COUPON, CODE])
def test_an_object_that_lost_its_ownership_metadata_gets_it_written_back(address: str) -> None:
    held = stored(product(), price(), coupon(), code())
    existing = stripe(*(replace(r, owned=r.address != address) for r in held))  # type: ignore[call-arg]

    change = one(diff_stripe(existing, stripe(product(), price(), coupon(), code()), DiffInputs()))

    assert isinstance(change, Update)
    assert change.address == address
    assert change.fields == (FieldChange("metadata.autumn_sync_address", None, address),)
    assert change.after is not None and change.after.stripe_id == f"id_{address}"  # type: ignore[union-attr]


def test_a_product_of_a_replaced_price_keeps_its_default_until_the_price_moves_it() -> None:
    existing = stripe(*stored(product(name="Old"), price()))

    changes = diff_stripe(existing, stripe(product(), price(cents=900)), DiffInputs())

    assert summary(changes) == [("Replace", BASE), ("Update", PRO)]
    update = next(c for c in changes if isinstance(c, Update))
    assert update.fields == (FieldChange("name", "Old", "Pro"),)  # not the default price


# --- meters and what customers still use --------------------------------------------------------


def test_a_meter_no_longer_wanted_is_archived() -> None:
    existing = stripe(*stored(product(), price(), meter()))

    change = one(diff_stripe(existing, stripe(product(), price()), DiffInputs()))

    assert isinstance(change, Archive)
    assert change.address == METER
    assert change.after == replace(existing.meters[METER], active=False)


def test_a_usage_price_removed_while_customers_pay_it_keeps_price_product_and_meter() -> None:
    existing = stripe(*stored(*CATALOG, meter()))
    ctx = in_use({"pro": frozenset({1})}, {"pro": 2})

    assert diff_stripe(existing, stripe(product(), price(version=2)), ctx) == []


def test_a_usage_price_removed_without_customers_is_archived_with_its_product_and_meter() -> None:
    existing = stripe(*stored(*CATALOG, meter()))
    ctx = in_use({"pro": frozenset({2})}, {"pro": 2})

    changes = diff_stripe(existing, stripe(product(), price(version=2)), ctx)

    assert summary(changes) == [
        ("Archive", METER),
        ("Archive", MESSAGES),
        ("Archive", f"{PRO}.messages"),
    ]


def test_an_archived_plan_archives_its_prices_but_keeps_the_meter_customers_report_to() -> None:
    existing = stripe(*stored(*CATALOG, meter()))
    ctx = in_use({"pro": frozenset({1})}, {})  # the plan is no longer offered

    changes = diff_stripe(existing, StripeState(), ctx)

    assert summary(changes) == [
        ("Archive", BASE),
        ("Archive", MESSAGES),
        ("Archive", PRO),
        ("Archive", f"{PRO}.messages"),
    ]


# --- older versions' prices ----------------------------------------------------------------


def older(version: int, cents: int) -> tuple[str, StripePrice]:
    return f"{BASE}.v{version}", replace(price(cents=cents, version=version), lookup_key=None)


@pytest.mark.parametrize(
    ("held", "wanted", "made"),
    [
        ((), (older(1, 2000),), [f"{BASE}.v1"]),  # Stripe connected after version 2
        ((price(cents=2000, version=1),), (older(1, 2000),), []),  # made when it was current
        # version 1's price bills version 2 too, but version 2 changed its terms: a price of
        # its own
        ((price(cents=2000, version=1),), (older(1, 2000), older(2, 2200)), [f"{BASE}.v2"]),
    ],
    ids=["missing", "held", "terms-changed"],
)
def test_an_older_version_with_customers_gets_a_price_when_stripe_has_none_with_its_terms(
    held: tuple[StripePrice, ...], wanted: tuple[tuple[str, StripePrice], ...], made: list[str]
) -> None:
    existing = stripe(*stored(*held)) if held else StripeState()
    existing = replace(existing, superseded=tuple(existing.prices.values()), prices={})
    desired = replace(StripeState(), versions=dict(wanted))

    changes = diff_stripe(existing, desired, DiffInputs())

    created = [c for c in changes if isinstance(c, Create)]
    assert [c.address for c in created] == made
    for change in created:  # at the plan's price address, with its version, without a key
        assert change.after == dict(wanted)[change.address]


# --- coupons and promotion codes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("generations", "made"), [({}, "launch20-v2"), ({COUPON: 2}, "launch20-v3")]
)
def test_a_coupon_whose_terms_change_is_replaced_and_its_codes_move(
    generations: dict[str, int], made: str
) -> None:
    existing = replace(stripe(*stored(*REWARD)), generations=generations)

    changes = diff_stripe(existing, stripe(coupon(percent=25), code()), DiffInputs())

    assert summary(changes) == [("Replace", COUPON), ("Replace", CODE)]
    replaced = {c.address: c for c in changes}
    assert replaced[COUPON].after == replace(coupon(percent=25), coupon_id=made)
    assert replaced[COUPON].fields == (
        FieldChange("coupon_id", "launch20", made),
        FieldChange("percent_off", Decimal(20), Decimal(25)),
    )
    assert replaced[CODE].reason == "its coupon is replaced: the code moves to the new coupon"


USAGE = f"{PRO}.messages"


@pytest.mark.parametrize("sold", [False, True], ids=["archived", "still-sold"])
def test_a_coupon_naming_a_product_no_longer_wanted_is_kept_once_it_is_not_sold(
    sold: bool,
) -> None:
    """A usage price removed from a plan takes its product out of the coupon's wanted
    products: the coupon already covers every wanted product, so it stays (no new coupon,
    its codes untouched) once the extra product is archived; a product still sold that the
    reward no longer names is no longer discounted: that takes a new coupon."""
    existing = stripe(*stored(coupon(applies_to=(PRO, USAGE)), code()))
    products = (product(), product(USAGE, "Pro – Messages", active=sold))

    changes = diff_stripe(existing, stripe(*products, coupon(), code()), DiffInputs())

    coupon_changes = [c for c in changes if c.address in (COUPON, CODE)]
    expected = [("Replace", COUPON), ("Replace", CODE)] if sold else []
    assert summary(coupon_changes) == expected


def test_a_coupon_for_a_plan_that_gains_a_usage_product_is_replaced_to_cover_it() -> None:
    existing = stripe(*stored(coupon(), code()))

    changes = diff_stripe(existing, stripe(coupon(applies_to=(PRO, USAGE)), code()), DiffInputs())

    assert summary(changes) == [("Replace", COUPON), ("Replace", CODE)]
    assert changes[0].fields[-1] == FieldChange("applies_to", (PRO,), (PRO, USAGE))


def test_a_coupons_name_is_updated_in_place() -> None:
    existing = stripe(*stored(*REWARD))

    change = one(diff_stripe(existing, stripe(coupon(name="Spring"), code()), DiffInputs()))

    assert isinstance(change, Update)
    assert change.fields == (FieldChange("name", "Launch", "Spring"),)


def test_a_reward_removed_archives_its_coupon_and_its_codes() -> None:
    existing = stripe(*stored(*REWARD))

    changes = diff_stripe(existing, StripeState(), DiffInputs())

    assert summary(changes) == [("Archive", COUPON), ("Archive", CODE)]
    coupon_change = next(c for c in changes if c.address == COUPON)
    assert coupon_change.reason == "its promotion codes stop working"
    assert coupon_change.after == replace(existing.coupons[COUPON], active=False)


def test_a_promotion_code_moving_to_another_coupon_is_replaced() -> None:
    other = "stripe_coupon.other"
    existing = stripe(
        *stored(coupon(), replace(coupon(), address=other, coupon_id="other"), code())
    )
    desired = stripe(
        coupon(), replace(coupon(), address=other, coupon_id="other"), code(coupon_address=other)
    )

    change = one(diff_stripe(existing, desired, DiffInputs()))

    assert isinstance(change, Replace)
    assert change.address == CODE
    assert change.fields == (FieldChange("coupon", COUPON, other),)


@pytest.mark.parametrize("active", [True, False], ids=["active", "deactivated"])
def test_a_promotion_code_whose_restrictions_change_is_replaced(active: bool) -> None:
    """Stripe fixes a code's restrictions when it makes it: a new code of the same text
    replaces it, whether the old one is active or was deactivated (removed from the file,
    now back with other restrictions)."""
    existing = stripe(*stored(coupon(), code(max_redemptions=50, active=active)))
    wanted = code(max_redemptions=100, expires_at=datetime(2035, 1, 1))

    change = one(diff_stripe(existing, stripe(coupon(), wanted), DiffInputs()))

    assert isinstance(change, Replace)
    assert (change.address, change.after) == (CODE, wanted)
    assert change.fields == (
        FieldChange("max_redemptions", 50, 100),
        FieldChange("expires_at", None, datetime(2035, 1, 1)),
    )
    assert change.reason == RESTRICTIONS_FIXED


def test_a_code_with_the_same_restrictions_is_left_alone_or_reactivated() -> None:
    terms = {"first_time_transaction": True, "expires_at": datetime(2035, 1, 1, 12)}
    assert (
        diff_stripe(
            stripe(*stored(coupon(), code(**terms))), stripe(coupon(), code(**terms)), DiffInputs()
        )
        == []
    )

    deactivated = stripe(*stored(coupon(), code(active=False, **terms)))
    change = one(diff_stripe(deactivated, stripe(coupon(), code(**terms)), DiffInputs()))

    assert isinstance(change, Update)
    assert change.fields == (FieldChange("active", False, True),)


def test_a_code_whose_coupon_is_replaced_says_how_its_restrictions_change() -> None:
    existing = stripe(*stored(coupon(), code(max_redemptions=5)))

    changes = diff_stripe(existing, stripe(coupon(percent=25), code()), DiffInputs())

    replaced = {c.address: c for c in changes}
    assert replaced[CODE].fields == (FieldChange("max_redemptions", 5, None),)


# --- diff_billing: customers ------------------------------------------------------------------

CUSTOMER = "stripe_customer.user_1"
SUB = "stripe_subscription.user_1.month"
TODAY = date(2026, 3, 1)


def wanted_customer(**fields: object) -> StripeCustomer:
    fields.setdefault("email", "jane@example.com")
    fields.setdefault("name", "Jane")
    return StripeCustomer(CUSTOMER, owner=CUSTOMER, **fields)  # type: ignore[arg-type]


def stripe_customer(payment: bool = True, **fields: object) -> StripeCustomer:
    """A Stripe customer as read and assigned: its id recorded by the database."""
    fields.setdefault("recorded", "cus_1")
    return replace(wanted_customer(), stripe_id="cus_1", has_payment_method=payment, **fields)


def wanted_sub(**fields: object) -> StripeSubscription:
    fields.setdefault("items", ((BASE, SubscriptionItem(1, 1)),))
    fields.setdefault("records", ("pro",))
    return StripeSubscription(SUB, CUSTOMER, ("pro",), owner=SUB, **fields)  # type: ignore[arg-type]


def stripe_sub(**fields: object) -> StripeSubscription:
    fields.setdefault("recorded", "sub_1")
    fields.setdefault("status", "active")
    return replace(wanted_sub(), stripe_id="sub_1", **fields)


def billing(
    existing: StripeState,
    customers: tuple[StripeCustomer, ...] = (),
    subscriptions: tuple[StripeSubscription, ...] = (),
    renewed: dict[str, int] | None = None,
) -> tuple[list[Change], list[Waiting]]:
    return diff_billing(
        existing,
        {c.address: c for c in customers},
        {s.address: s for s in subscriptions},
        renewed or {},
    )


def test_a_new_customer_is_created() -> None:
    changes, waiting = billing(StripeState(), (wanted_customer(),))

    assert changes == [Create(CUSTOMER, None, wanted_customer())]
    assert waiting == []


def test_a_customer_as_stripe_holds_it_gives_no_change() -> None:
    # What the file leaves out (a name) stays as Stripe has it.
    wanted = wanted_customer(name=None)

    assert billing(stripe(stripe_customer()), (wanted,)) == ([], [])


@pytest.mark.parametrize(
    ("held", "wanted", "fields"),
    [
        (
            stripe_customer(name="Jane D."),
            wanted_customer(),
            (FieldChange("name", "Jane D.", "Jane"),),
        ),
        (
            stripe_customer(owner="stripe_customer[jane@example.com]"),
            wanted_customer(),
            (
                FieldChange(
                    "metadata.autumn_sync_address", "stripe_customer[jane@example.com]", CUSTOMER
                ),
            ),
        ),
        (
            stripe_customer(recorded=None),
            wanted_customer(),
            (FieldChange("database.stripe_id", None, "cus_1"),),
        ),
        (
            stripe_customer(active=False),
            wanted_customer(),
            (FieldChange("active", False, True),),
        ),
    ],
)
def test_a_customer_that_differs_is_updated(
    held: StripeCustomer, wanted: StripeCustomer, fields: tuple[FieldChange, ...]
) -> None:
    changes, _ = billing(stripe(held), (wanted,))

    change = one(changes)
    assert isinstance(change, Update)
    assert change.fields == fields
    assert change.after is not None and change.after.stripe_id == "cus_1"  # type: ignore[union-attr]


def test_a_customer_that_left_the_file_is_marked_never_deleted() -> None:
    held = stripe_customer()

    changes, _ = billing(stripe(held))

    assert changes == [Archive(CUSTOMER, held, replace(held, active=False), reason=LEFT)]
    assert billing(stripe(replace(held, active=False))) == ([], [])


# --- diff_billing: subscriptions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "created"),
    [
        (stripe(stripe_customer(payment=False)), []),
        (StripeState(), [("Create", CUSTOMER)]),  # the customer is made; the card comes later
    ],
)
def test_a_card_customer_without_a_payment_method_waits_for_checkout(
    existing: StripeState, created: list[tuple[str, str]]
) -> None:
    changes, waiting = billing(existing, (wanted_customer(),), (wanted_sub(),))

    assert summary(changes) == created
    assert waiting == [Waiting(SUB, CUSTOMER)]
    assert waiting[0].note() == (
        f"waiting for checkout: {CUSTOMER} has no payment method in Stripe yet"
    )


def test_a_card_customer_with_a_payment_method_gets_its_subscription() -> None:
    changes, waiting = billing(stripe(stripe_customer()), (wanted_customer(),), (wanted_sub(),))

    assert changes == [Create(SUB, None, wanted_sub())]
    assert waiting == []


def test_an_invoiced_subscription_needs_no_payment_method() -> None:
    sub = wanted_sub(collection_method=SEND_INVOICE, days_until_due=30)

    changes, waiting = billing(StripeState(), (wanted_customer(),), (sub,))

    assert summary(changes) == [("Create", CUSTOMER), ("Create", SUB)]
    assert waiting == []


def test_a_subscription_no_longer_wanted_cancels_at_period_end() -> None:
    held = stripe_sub()

    changes, _ = billing(stripe(stripe_customer(), held), (wanted_customer(),))

    assert changes == [Archive(SUB, held, replace(held, active=False), reason=CANCELS)]


@pytest.mark.parametrize("held", [stripe_sub(active=False), stripe_sub(status="canceled")])
def test_a_subscription_already_cancelling_or_ended_needs_nothing(
    held: StripeSubscription,
) -> None:
    assert billing(stripe(stripe_customer(), held), (wanted_customer(),)) == ([], [])


def test_an_ended_subscription_still_wanted_is_made_again() -> None:
    ended = stripe_sub(status="canceled")

    changes, _ = billing(stripe(stripe_customer(), ended), (wanted_customer(),), (wanted_sub(),))

    change = one(changes)
    assert isinstance(change, Create)
    assert (change.before, change.after) == (ended, wanted_sub())
    assert change.reason == "sub_1 was cancelled in Stripe"


def test_an_ended_subscription_of_a_customer_without_payment_method_waits() -> None:
    ended = stripe_sub(status="incomplete_expired")
    existing = stripe(stripe_customer(payment=False), ended)

    changes, waiting = billing(existing, (wanted_customer(),), (wanted_sub(),))

    assert changes == []
    assert waiting == [Waiting(SUB, CUSTOMER, ended)]
    assert waiting[0].note().endswith("(sub_1 was cancelled in Stripe)")


def test_a_live_subscription_as_wanted_gives_no_change_whatever_its_trial_and_status() -> None:
    held = stripe_sub(trial_end=date(2026, 3, 10), status="trialing")
    wanted = wanted_sub(trial_end=date(2026, 4, 1))

    assert billing(stripe(stripe_customer(), held), (wanted_customer(),), (wanted,)) == ([], [])


@pytest.mark.parametrize(
    ("wanted", "fields"),
    [
        (
            wanted_sub(coupons=(COUPON,)),
            (FieldChange("coupons[0]", None, COUPON),),
        ),
        (
            wanted_sub(items=((BASE, SubscriptionItem(2, 3)),)),
            (
                FieldChange(f"items[{BASE}].version", 1, 2),
                FieldChange(f"items[{BASE}].quantity", 1, 3),
            ),
        ),
        (
            wanted_sub(collection_method=SEND_INVOICE, days_until_due=14),
            (
                FieldChange("collection_method", "charge_automatically", SEND_INVOICE),
                FieldChange("days_until_due", None, 14),
            ),
        ),
    ],
)
def test_a_live_subscription_that_differs_is_updated(
    wanted: StripeSubscription, fields: tuple[FieldChange, ...]
) -> None:
    changes, _ = billing(stripe(stripe_customer(), stripe_sub()), (wanted_customer(),), (wanted,))

    change = one(changes)
    assert isinstance(change, Update)
    assert change.fields == fields
    assert change.reason is None
    assert change.after is not None and change.after.stripe_id == "sub_1"  # type: ignore[union-attr]


def test_a_subscription_set_to_cancel_is_resumed_when_wanted_again() -> None:
    held = stripe_sub(active=False)

    changes, _ = billing(stripe(stripe_customer(), held), (wanted_customer(),), (wanted_sub(),))

    change = one(changes)
    assert isinstance(change, Update)
    assert change.fields == (FieldChange("active", False, True),)
    assert change.reason == "resumed: it was set to cancel at period end"


@pytest.mark.parametrize(
    ("renewed", "fields"),
    [
        ({BASE: 1}, (FieldChange(f"items[{BASE}].price", "the price replaced", "its new price"),)),
        ({BASE: 2}, None),  # a new price for another version: this item does not bill it
    ],
)
def test_an_item_whose_price_is_replaced_for_its_version_moves_to_the_new_price(
    renewed: dict[str, int], fields: tuple[FieldChange, ...] | None
) -> None:
    existing = stripe(stripe_customer(), stripe_sub())

    changes, _ = billing(existing, (wanted_customer(),), (wanted_sub(),), renewed=renewed)

    assert [c.fields for c in changes] == ([fields] if fields else [])
