"""How the customers the file manages map to Stripe. Pure: no I/O.

- a customer → a Stripe customer `stripe_customer.user_123` (`stripe_customer[a@b.com]` while
  it is known by email), made when billing needs it (a paid plan), at once with
  `stripe: {create: true}` or `settings.stripe.create_customers: always`, and linked (not
  made) with `stripe: {customer: cus_…}`; once made it stays wanted;
- the paid plans of a customer (or of one of its entities) → one subscription per billing
  interval, `stripe_subscription.user_123.month` (`…year[team-a]` for an entity), holding
  the base plan and its add-ons: its items are the recurring prices of that interval of the
  plan versions the customer is on after apply: a base price with the plan's quantity, a
  prepaid price with `quantity × per` units, a metered price without quantity, the licensed
  price of a continuous feature billed pay-per-use (seats in use) the usage: the quantity
  Stripe's item has (`usage report` sets it), 0 on a new item (`follows_usage`). A plan
  change within a group swaps items on it. A custom version (a negotiated price, custom
  included usage) bills the customer's own prices wherever its terms differ from the
  plan's: `stripe_price.pro.base[user_123]`, on the plan's products, without a lookup key;
- the customer's rewards → the coupons of those that apply to a plan it bills;
- the collection method and days until due come from the customer's billing, the trial end
  from the customer's plans (as the database records it, or as attaching will set it), the
  proration of a plan change from `settings.billing.upgrades`.

One-off prices are not subscription items (Stripe bills them on invoices) and are left out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Set
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_CEILING, Decimal
from typing import Any

from autumn_sync.model.address import Address, Kind, keyed, named
from autumn_sync.model.customers import CANCELED, Customer, CustomerPlan
from autumn_sync.model.records import (
    ALWAYS,
    NO_PRORATION,
    PRORATE_NEXT_INVOICE,
    PRORATE_NOW,
    FreeTrial,
    Plan,
    PlanContent,
    PlanItem,
    UsageModel,
)
from autumn_sync.model.state import State
from autumn_sync.model.stripe import (
    Phase,
    Recurring,
    StripeCustomer,
    StripePrice,
    StripeState,
    StripeSubscription,
    SubscriptionItem,
    subscription_scope,
)
from autumn_sync.stripe.map.catalog import (
    BASE,
    INTERVALS,
    continuous_features,
    follows_usage,
    plan_prices,
)

VersionKey = tuple[str, int]


@dataclass(frozen=True)
class BillingInputs:
    """What mapping customers needs: the database as it will be after apply (`projected`:
    each customer's plans at the version it will be on, with the trial and Stripe ids the
    database records), the keys the customers the file renamed had (new key → old), the
    content of the versions the file's customers are on, and today (a trial over is not
    sent)."""

    projected: State
    renamed: Mapping[str, str]
    contents: Mapping[VersionKey, PlanContent]
    today: date

    @property
    def versions_after(self) -> dict[str, int]:
        """Each offered plan's version after apply."""
        return offered_versions(self.projected)


def offered_versions(projected: State) -> dict[str, int]:
    """Each offered (not archived) plan's version in the database after apply."""
    return {pid: p.version or 1 for pid, p in projected.plans.items() if not p.archived}


@dataclass(frozen=True)
class PlannedItem:
    price: str  # address
    plan: str  # the plan it bills
    plan_version: int  # the customer's plan version
    custom: bool  # the customer's own price
    quantity: int | None
    # the quantity is the usage of a continuous feature, which `usage report` sets: the
    # subscription keeps the quantity Stripe has (see `with_items`)
    follows_usage: bool = False


@dataclass(frozen=True)
class _Part:
    """What one plan of a customer puts on the subscription of one interval; `main`: the
    plan's base price (or, without one, its first interval) is billed there, so the plan's
    row records that subscription."""

    wanted: CustomerPlan
    items: list[PlannedItem]
    main: bool
    trial: FreeTrial | None = None


def _trial_terms(parts: list[_Part]) -> dict[str, Any]:
    """A trial needs no card when none of the subscription's trials asks for one; it then
    ends as the trials say (`bill` if any says so)."""
    trials = [part.trial for part in parts if part.trial is not None]
    if not trials or any(t.card_required for t in trials):
        return {}
    on_end = "bill" if any(t.on_end == "bill" for t in trials) else "cancel"
    return {"card_required": False, "on_end": on_end}


def _main_interval(by_interval: Mapping[str, list[PlannedItem]]) -> str | None:
    for interval, items in by_interval.items():
        if any(_part(item.price) == BASE for item in items):
            return interval
    return min(by_interval, default=None)


@dataclass(frozen=True)
class PlannedCustomer:
    """A wanted Stripe customer, and what finds the object it already is: the Stripe customer
    the file links, the id the database recorded, the address it had under an older key."""

    record: StripeCustomer
    needed: bool = False  # billing needs it (or the file says to create it)
    link: str | None = None
    recorded: str | None = None
    old_address: str | None = None


@dataclass(frozen=True)
class PlannedSubscription:
    record: StripeSubscription  # items (and those of `then`) are set by `with_items`
    items: tuple[PlannedItem, ...]
    recorded: str | None = None
    old_address: str | None = None
    then_items: tuple[PlannedItem, ...] = ()


@dataclass(frozen=True)
class BillingPlan:
    customers: tuple[PlannedCustomer, ...] = ()
    subscriptions: tuple[PlannedSubscription, ...] = ()
    prices: dict[str, StripePrice] = field(default_factory=dict)  # customers' own prices


def customer_address(key: str) -> str:
    return keyed(Kind.STRIPE_CUSTOMER, key)


def subscription_address(key: str, interval: str, entity: str | None) -> str:
    """`stripe_subscription.user_1.month`, `stripe_subscription.user_1.year[team-a]`."""
    return keyed(Kind.STRIPE_SUBSCRIPTION, key, interval, entity or None)


_INTERVAL_NAMES = {terms: name for name, terms in INTERVALS.items()}
_PRORATION = {
    PRORATE_NOW: "always_invoice",
    PRORATE_NEXT_INVOICE: "create_prorations",
    NO_PRORATION: "none",
}


def interval_name(recurring: Recurring) -> str:
    """The file's name of a price's billing interval: `month`, `quarter`, `year`, …"""
    return _INTERVAL_NAMES[(recurring.interval, recurring.interval_count)]


def plan_billing(inputs: BillingInputs) -> BillingPlan:
    """The Stripe customers (every customer of the file, and whether billing needs it),
    subscriptions and customers' own prices once the plan is applied."""
    mapper = _Mapper(inputs)
    customers: list[PlannedCustomer] = []
    subscriptions: list[PlannedSubscription] = []
    for key in sorted(inputs.projected.customers):
        customer = inputs.projected.customers[key]
        old_key = inputs.renamed.get(key)
        planned = list(mapper.subscriptions(customer, old_key))
        subscriptions += planned
        needed = bool(planned) or _created_anyway(inputs.projected, customer)
        customers.append(_planned_customer(customer, old_key, needed))
    return BillingPlan(tuple(customers), tuple(subscriptions), mapper.own_prices)


def _created_anyway(desired: State, customer: Customer) -> bool:
    always = desired.settings is not None and desired.settings.create_customers == ALWAYS
    return always or customer.stripe_create or customer.stripe_customer is not None


def _planned_customer(customer: Customer, old_key: str | None, needed: bool) -> PlannedCustomer:
    address = customer_address(customer.key)
    record = StripeCustomer(
        address=address, email=customer.email, name=customer.name, owner=address
    )
    return PlannedCustomer(
        record=record,
        needed=needed,
        link=customer.stripe_customer,
        recorded=customer.stripe_id,
        old_address=customer_address(old_key) if old_key is not None else None,
    )


class _Mapper:
    """Maps customers' plans, caching each plan version's prices."""

    def __init__(self, inputs: BillingInputs) -> None:
        self.inputs = inputs
        self.versions_after = inputs.versions_after
        settings = inputs.projected.settings
        self.currency = settings.currency if settings else "usd"
        self.upgrades = (settings.upgrades if settings else None) or PRORATE_NOW
        plans = inputs.projected.plans
        self.groups = {pid: p.group for pid, p in plans.items() if p.group is not None}
        self.own_prices: dict[str, StripePrice] = {}
        self.continuous = continuous_features(inputs.projected)
        self._standard: dict[VersionKey, dict[str, StripePrice]] = {}

    def subscriptions(
        self, customer: Customer, old_key: str | None
    ) -> Iterator[PlannedSubscription]:
        """One subscription per entity (or the customer itself) and billing interval, holding
        the items of every paid plan billed at that interval (a base plan and its add-ons)."""
        groups: dict[tuple[str, str], list[_Part]] = {}
        today = self.inputs.today
        for entity, plan in customer.all_plans():
            wanted = _as_named(plan)
            held = self._held(wanted)
            if held is None or (wanted.ends is not None and wanted.ends <= today):
                continue
            by_interval = self._items_by_interval(customer, entity, wanted, held)
            main = _main_interval(by_interval)
            for interval, items in by_interval.items():
                part = _Part(wanted, items, interval == main, held[2].free_trial)
                groups.setdefault((entity or "", interval), []).append(part)
        for (entity, interval), parts in sorted(groups.items()):
            planned = self._subscription(customer, entity or None, interval, parts)
            if old_key is not None:
                old_address = subscription_address(old_key, interval, entity or None)
                planned = replace(planned, old_address=old_address)
            yield planned

    def _held(self, wanted: CustomerPlan) -> tuple[Plan, int, PlanContent] | None:
        """The plan the customer is on, the version and that version's content."""
        plan = self.inputs.projected.plans.get(wanted.plan)
        if plan is None:
            return None
        version = wanted.version or self.versions_after.get(wanted.plan, 1)
        return plan, version, self._content(plan, version)

    def _items_by_interval(
        self,
        customer: Customer,
        entity: str | None,
        wanted: CustomerPlan,
        held: tuple[Plan, int, PlanContent],
    ) -> dict[str, list[PlannedItem]]:
        plan, version, content = held
        found: dict[str, list[PlannedItem]] = {}
        for interval, item in self._items(customer, entity, plan, content, wanted, version):
            found.setdefault(interval, []).append(item)
        return found

    def _subscription(
        self, customer: Customer, entity: str | None, interval: str, parts: list[_Part]
    ) -> PlannedSubscription:
        """The subscription billing `parts` at one interval: those held today as its items,
        and, when one begins or ends ahead, what it bills from the first such date (`then`)."""
        address = subscription_address(customer.key, interval, entity)
        everything = parts
        today = self.inputs.today
        ahead = sorted(
            day
            for part in parts
            for day in (part.wanted.begins, part.wanted.ends)
            if day is not None and day > today
        )
        then_parts = [p for p in parts if p.wanted.held_on(ahead[0])] if ahead else []
        parts = [part for part in parts if part.wanted.held_on(today)]
        plans = tuple(sorted(part.wanted.plan for part in parts))
        then = None  # nothing held from the date ahead: the subscription ends then
        if then_parts:
            trials = [p.wanted.trial_ends_at for p in then_parts if p.wanted.trial_ends_at]
            trial_end = max(trials, default=None)
            then = Phase(
                ahead[0],
                tuple(sorted(part.wanted.plan for part in then_parts)),
                trial_end=trial_end if trial_end is not None and trial_end > ahead[0] else None,
            )
        all_plans = tuple(sorted({part.wanted.plan for part in everything}))
        record = StripeSubscription(
            address=address,
            customer=customer_address(customer.key),
            plans=plans,
            entity=entity,
            collection_method=customer.collection,
            days_until_due=customer.days_until_due,
            coupons=self._coupons(customer, all_plans),
            trial_end=self._trial_end(part.wanted for part in parts),
            owner=address,
            proration=_PRORATION[self.upgrades],
            scope=subscription_scope(all_plans, self.groups),
            records=tuple(sorted({part.wanted.plan for part in everything if part.main})),
            then=then,
            active=not ahead or bool(then_parts),
            **_trial_terms(parts),
        )
        items = tuple(item for part in parts for item in part.items)
        then_items = tuple(item for part in then_parts for item in part.items)
        main = (part.wanted.stripe_subscription_id for part in everything if part.main)
        recorded = next((i for i in main if i), None)
        return PlannedSubscription(record, items, recorded, then_items=then_items)

    def _content(self, plan: Plan, version: int) -> PlanContent:
        if version == self.versions_after.get(plan.id, 1):
            return plan.content
        return self.inputs.contents.get((plan.id, version), plan.content)

    def _standard_prices(
        self, plan: Plan, content: PlanContent, version: int
    ) -> dict[str, StripePrice]:
        key = (plan.id, version)
        if key not in self._standard:
            self._standard[key] = plan_prices(
                replace(plan, content=content), self.currency, version, self.continuous
            )
        return self._standard[key]

    def _items(
        self,
        customer: Customer,
        entity: str | None,
        plan: Plan,
        content: PlanContent,
        wanted: CustomerPlan,
        version: int,
    ) -> Iterator[tuple[str, PlannedItem]]:
        """The recurring prices the plan bills the customer, each with its interval."""
        standard = self._standard_prices(plan, content, version)
        prices = standard
        held = content
        if wanted.custom:
            held = custom_content(content, wanted)
            prices = plan_prices(
                replace(plan, content=held), self.currency, version, self.continuous
            )
        whose = customer.label + (f"/{entity}" if entity else "")
        units = _units(held, wanted)
        used = {i.feature for i in held.items if follows_usage(i, self.continuous)}
        for address, price in sorted(prices.items()):
            if price.recurring is None:
                continue  # one-off: billed on an invoice, not by the subscription
            own = address not in standard or standard[address].terms() != price.terms()
            if own:
                address = str(replace(Address.parse(address), index=whose))
                self.own_prices[address] = replace(price, address=address, lookup_key=None)
            usage = _part(address) in used and price.recurring.usage_type == "licensed"
            quantity = 0 if usage else _quantity(price, wanted.quantity, units)
            item = PlannedItem(address, plan.id, version, own, quantity, follows_usage=usage)
            yield interval_name(price.recurring), item

    def _coupons(self, customer: Customer, plans: tuple[str, ...]) -> tuple[str, ...]:
        """The coupons of the customer's rewards for any plan the subscription bills (a
        coupon names the products it discounts)."""
        rewards = self.inputs.projected.rewards
        return tuple(
            named(Kind.STRIPE_COUPON, rid)
            for rid in customer.rewards
            if rid in rewards and (not rewards[rid].plans or set(plans) & set(rewards[rid].plans))
        )

    def _trial_end(self, plans: Iterable[CustomerPlan]) -> date | None:
        """The trial's end as the database records it, or as attaching the plan sets it
        (none for a plan the customer had a trial of; the apply takes the database's, which
        also knows fingerprints that had a trial of the plan); the latest of the
        subscription's plans (a trial covers the whole subscription); none once it is
        over."""
        ends = [w.trial_ends_at for w in plans if w.trial_ends_at is not None]
        end = max(ends, default=None)
        return end if end is not None and end > self.inputs.today else None


def custom_content(content: PlanContent, wanted: CustomerPlan) -> PlanContent:
    """A plan version's content with a customer's custom price and included usage."""
    custom = {item.feature: item for item in wanted.items}
    items = tuple(_custom_item(item, custom.get(item.feature)) for item in content.items)
    return replace(content, price=wanted.price or content.price, items=items)


def _custom_item(item: PlanItem, custom: PlanItem | None) -> PlanItem:
    if custom is None:
        return item
    if custom.included is None:
        return replace(item, reset=custom.reset or item.reset)
    return replace(
        item, included=custom.included, unlimited=False, reset=custom.reset or item.reset
    )


def _units(content: PlanContent, wanted: CustomerPlan) -> dict[str, int]:
    """The prepaid units of each prepaid feature the customer holds (as `check` grants
    them): those it bought (`quantities`), else the plan's included units, else one pack of
    the price's units per licence of the plan (Extra credits: 1,000 credits). The price's
    first tier makes the included units free: Stripe bills only those beyond."""
    found = {}
    for item in content.items:
        if item.price is None or item.price.billing is not UsageModel.PREPAID:
            continue
        bought = wanted.units(item.feature)
        if bought is not None:
            found[item.feature] = bought
        elif item.included is not None:
            found[item.feature] = _whole_units(item.included)
        else:
            found[item.feature] = wanted.quantity * item.price.per
    return found


def _whole_units(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def _quantity(price: StripePrice, quantity: int, units: Mapping[str, int]) -> int | None:
    """The base price bills the plan's quantity (its licences); a prepaid usage price the
    feature's units; a metered one its usage."""
    assert price.recurring is not None
    if price.recurring.usage_type == "metered":
        return None
    feature = _part(price.address)
    return quantity if feature == BASE else units.get(feature, quantity)


def _part(price_address: str) -> str:
    """What a price of a plan is for: `base`, or the feature of a usage price."""
    return Address.parse(price_address).part or BASE


def _as_named(plan: CustomerPlan) -> CustomerPlan:
    """The plan as the file names it: one whose subscription was cancelled in Stripe ends
    only in the database (`check` stops granting it then); the file still names it, so the
    subscription it maps to stays wanted (subscribing the customer again, which the plan
    lists as charging them and apply does only with consent)."""
    return replace(plan, ends=None) if plan.status == CANCELED else plan


def with_items(
    planned: tuple[PlannedSubscription, ...],
    existing: StripeState,
    wanted: Mapping[str, StripePrice],
    renewed: Mapping[str, int],
    versions_after: Mapping[str, int],
    made: Set[tuple[str, int]] = frozenset(),
) -> tuple[PlannedSubscription, ...]:
    """The planned subscriptions with their items, each with the version of the price it
    bills: the customer's own price at its plan version; on the plan's version after apply,
    the price its address has once the plan is applied (a new one when made or replaced
    now); on an older version, its own price when this plan makes one (`made`), else the
    newest price of its address made for that version or before. An item whose quantity
    follows the usage (`follows_usage`) keeps the quantity the subscription's item has in
    Stripe (`usage report` sets it), else its planned one (0)."""
    older = _versions_by_address(existing)

    def version(item: PlannedItem, plan: str) -> int:
        if item.custom:
            return item.plan_version
        if item.plan_version == versions_after.get(plan, 1):
            current = existing.prices.get(item.price)
            new = wanted.get(item.price)
            if new is not None and (item.price in renewed or current is None):
                return new.version
            return current.version if current is not None else item.plan_version
        if (item.price, item.plan_version) in made:
            return item.plan_version
        earlier = [v for v in older.get(item.price, ()) if v <= item.plan_version]
        return max(earlier, default=item.plan_version)

    def billed(
        items: tuple[PlannedItem, ...], held: Mapping[str, int]
    ) -> tuple[tuple[str, SubscriptionItem], ...]:
        return tuple(
            sorted((i.price, SubscriptionItem(version(i, i.plan), _held(i, held))) for i in items)
        )

    def dated(sub: PlannedSubscription, held: Mapping[str, int]) -> Phase | None:
        then = sub.record.then
        return None if then is None else replace(then, items=billed(sub.then_items, held))

    done = []
    for sub in planned:
        held = _held_quantities(existing, sub.record.address)
        record = replace(sub.record, items=billed(sub.items, held), then=dated(sub, held))
        done.append(replace(sub, record=record))
    return tuple(done)


def _held_quantities(existing: StripeState, address: str) -> dict[str, int]:
    """The quantities of the items the subscription at `address` has in Stripe, by price
    address."""
    current = existing.subscriptions.get(address)
    if current is None:
        return {}
    return {price: item.quantity for price, item in current.items if isinstance(item.quantity, int)}


def _held(item: PlannedItem, held: Mapping[str, int]) -> int | None:
    """The item's quantity: Stripe's when it follows the usage, else the planned one."""
    if item.follows_usage:
        return held.get(item.price, item.quantity)
    return item.quantity


def _versions_by_address(existing: StripeState) -> dict[str, list[int]]:
    found: dict[str, list[int]] = defaultdict(list)
    for price in (*existing.prices.values(), *existing.superseded):
        found[price.address].append(price.version)
    return found
