"""How the customers the file manages map to Stripe. Pure: no I/O.

- a customer → a Stripe customer `stripe_customer.user_123` (`stripe_customer[a@b.com]` while
  it is known by email), made when billing needs it (a paid plan), at once with
  `stripe: {create: true}` or `settings.stripe.create_customers: always`, and linked (not
  made) with `stripe: {customer: cus_…}`; once made it stays wanted;
- each paid plan of a customer or of one of its entities → a subscription
  `stripe_subscription.user_123.pro` (`…pro[team-a]` for an entity) whose items are the
  recurring prices of the plan version the customer is on after apply: the base price with
  the plan's quantity, a prepaid price with `quantity × per` units, a metered price without
  quantity. A custom version (a negotiated price, custom included usage) bills the
  customer's own prices wherever its terms differ from the plan's:
  `stripe_price.pro.base[user_123]`, on the plan's products, without a lookup key;
- the customer's rewards → the coupons of those that apply to the plan;
- the collection method and days until due come from the customer's billing, the trial end
  from the customer's plan (as the database records it, or as attaching will set it).

One-off prices are not subscription items (Stripe bills them on invoices) and are left out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from autumn_sync.database.diff.customers import match_customers
from autumn_sync.model.address import Address, Kind, keyed, named
from autumn_sync.model.customers import Customer, CustomerPlan
from autumn_sync.model.records import ALWAYS, Billing, Plan, PlanContent, PlanItem
from autumn_sync.model.state import State
from autumn_sync.model.stripe import (
    StripeCustomer,
    StripePrice,
    StripeState,
    StripeSubscription,
    SubscriptionItem,
)
from autumn_sync.stripe.map.catalog import BASE, plan_prices

VersionKey = tuple[str, int]


@dataclass(frozen=True)
class BillingInputs:
    """What mapping customers needs: the database's state and the file's, each plan's version
    after apply, the plans whose customers move to a new version (plan → (from, to)), the
    content of the versions the file's customers are on, and today (for trial ends)."""

    current: State
    desired: State
    versions_after: Mapping[str, int]
    moving: Mapping[str, tuple[int, int]]
    contents: Mapping[VersionKey, PlanContent]
    today: date


@dataclass(frozen=True)
class PlannedItem:
    price: str  # address
    plan_version: int  # the customer's plan version
    custom: bool  # the customer's own price
    quantity: int | None


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
    record: StripeSubscription  # items are set by `subscription_items`
    items: tuple[PlannedItem, ...]
    recorded: str | None = None
    old_address: str | None = None


@dataclass(frozen=True)
class BillingPlan:
    customers: tuple[PlannedCustomer, ...] = ()
    subscriptions: tuple[PlannedSubscription, ...] = ()
    prices: dict[str, StripePrice] = field(default_factory=dict)  # customers' own prices


def customer_address(key: str) -> str:
    return keyed(Kind.STRIPE_CUSTOMER, key)


def subscription_address(key: str, plan: str, entity: str | None) -> str:
    return keyed(Kind.STRIPE_SUBSCRIPTION, key, plan, entity or None)


def plan_billing(inputs: BillingInputs) -> BillingPlan:
    """The Stripe customers (every customer of the file, and whether billing needs it),
    subscriptions and customers' own prices once the plan is applied."""
    matches = match_customers(inputs.current, inputs.desired)
    mapper = _Mapper(inputs)
    customers: list[PlannedCustomer] = []
    subscriptions: list[PlannedSubscription] = []
    for key in sorted(inputs.desired.customers):
        customer = inputs.desired.customers[key]
        old = matches.get(key)
        planned = list(mapper.subscriptions(customer, old))
        subscriptions += planned
        needed = bool(planned) or _created_anyway(inputs.desired, customer)
        customers.append(_planned_customer(customer, old, needed))
    return BillingPlan(tuple(customers), tuple(subscriptions), mapper.own_prices)


def _created_anyway(desired: State, customer: Customer) -> bool:
    always = desired.settings is not None and desired.settings.create_customers == ALWAYS
    return always or customer.stripe_create or customer.stripe_customer is not None


def _planned_customer(customer: Customer, old: Customer | None, needed: bool) -> PlannedCustomer:
    address = customer_address(customer.key)
    record = StripeCustomer(
        address=address, email=customer.email, name=customer.name, owner=address
    )
    old_address = customer_address(old.key) if old is not None and old.key != customer.key else None
    return PlannedCustomer(
        record=record,
        needed=needed,
        link=customer.stripe_customer,
        recorded=old.stripe_id if old is not None else None,
        old_address=old_address,
    )


class _Mapper:
    """Maps customers' plans, caching each plan version's prices."""

    def __init__(self, inputs: BillingInputs) -> None:
        self.inputs = inputs
        settings = inputs.desired.settings
        self.currency = settings.currency if settings else "usd"
        self.own_prices: dict[str, StripePrice] = {}
        self._standard: dict[VersionKey, dict[str, StripePrice]] = {}

    def subscriptions(
        self, customer: Customer, old: Customer | None
    ) -> Iterator[PlannedSubscription]:
        before = _old_plans(old)
        for entity, plan in customer.all_plans():
            old_plan = before.get((entity or "", plan.plan))
            planned = self._subscription(customer, entity, plan, old_plan)
            if planned is not None:
                if old is not None and old.key != customer.key:
                    old_address = subscription_address(old.key, plan.plan, entity)
                    planned = replace(planned, old_address=old_address)
                yield planned

    def _subscription(
        self, customer: Customer, entity: str | None, wanted: CustomerPlan, old: CustomerPlan | None
    ) -> PlannedSubscription | None:
        plan = self.inputs.desired.plans.get(wanted.plan)
        if plan is None:
            return None
        version = self._version_after(wanted.plan, old)
        content = self._content(plan, version)
        items = self._items(customer, entity, plan, content, wanted, version)
        if not items:
            return None  # a free plan (or one billed with one-off prices only)
        record = StripeSubscription(
            address=subscription_address(customer.key, wanted.plan, entity),
            customer=customer_address(customer.key),
            plan=wanted.plan,
            entity=entity,
            collection_method=customer.collection,
            days_until_due=customer.days_until_due,
            coupons=self._coupons(customer, wanted.plan),
            trial_end=self._trial_end(wanted, old, content),
            owner=subscription_address(customer.key, wanted.plan, entity),
        )
        recorded = old.stripe_subscription_id if old is not None else None
        return PlannedSubscription(record, tuple(items), recorded)

    def _version_after(self, plan_id: str, old: CustomerPlan | None) -> int:
        """The version the customer is on once the plan is applied: a new plan is attached at
        the plan's version after apply; a plan kept stays on its version unless the plan moves
        its customers to the new one."""
        after = self.inputs.versions_after.get(plan_id, 1)
        if old is None or old.version is None:
            return after
        move = self.inputs.moving.get(plan_id)
        if move is not None and old.version == move[0]:
            return move[1]
        return old.version

    def _content(self, plan: Plan, version: int) -> PlanContent:
        if version == self.inputs.versions_after.get(plan.id, 1):
            return plan.content
        return self.inputs.contents.get((plan.id, version), plan.content)

    def _standard_prices(
        self, plan: Plan, content: PlanContent, version: int
    ) -> dict[str, StripePrice]:
        key = (plan.id, version)
        if key not in self._standard:
            self._standard[key] = plan_prices(
                replace(plan, content=content), self.currency, version
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
    ) -> list[PlannedItem]:
        standard = self._standard_prices(plan, content, version)
        prices = standard
        if wanted.custom:
            custom = replace(plan, content=custom_content(content, wanted))
            prices = plan_prices(custom, self.currency, version)
        whose = customer.label + (f"/{entity}" if entity else "")
        per = {item.feature: item.price.per for item in content.items if item.price is not None}
        included = _prepaid_included(content)
        items = []
        for address, price in sorted(prices.items()):
            if price.recurring is None:
                continue  # one-off: billed on an invoice, not by the subscription
            if _part(address) in included:
                continue  # the plan includes these units; more are bought at run time
            own = address not in standard or standard[address].terms() != price.terms()
            if own:
                address = str(replace(Address.parse(address), index=whose))
                self.own_prices[address] = replace(price, address=address, lookup_key="")
            items.append(PlannedItem(address, version, own, _quantity(price, wanted.quantity, per)))
        return items

    def _coupons(self, customer: Customer, plan_id: str) -> tuple[str, ...]:
        rewards = self.inputs.desired.rewards
        return tuple(
            named(Kind.STRIPE_COUPON, rid)
            for rid in customer.rewards
            if rid in rewards and (not rewards[rid].plans or plan_id in rewards[rid].plans)
        )

    def _trial_end(
        self, wanted: CustomerPlan, old: CustomerPlan | None, content: PlanContent
    ) -> date | None:
        """The trial's end as the database records it, or as attaching the plan sets it (the
        apply takes the database's, which also knows fingerprints that had a trial); none
        once it is over."""
        today = self.inputs.today
        if old is not None:
            end = old.trial_ends_at
        else:
            days = wanted.trial_days
            if days is None and content.free_trial is not None:
                days = content.free_trial.days
            end = (wanted.start or today) + timedelta(days=days) if days else None
        return end if end is not None and end > today else None


def _old_plans(old: Customer | None) -> dict[tuple[str, str], CustomerPlan]:
    if old is None:
        return {}
    return {(entity or "", plan.plan): plan for entity, plan in old.all_plans()}


def custom_content(content: PlanContent, wanted: CustomerPlan) -> PlanContent:
    """A plan version's content with a customer's custom price and included usage."""
    custom = {item.feature: item for item in wanted.items}
    items = tuple(_custom_item(item, custom.get(item.feature)) for item in content.items)
    return replace(content, price=wanted.price or content.price, items=items)


def _custom_item(item: PlanItem, custom: PlanItem | None) -> PlanItem:
    if custom is None:
        return item
    included = custom.included if custom.included is not None else item.included
    return replace(item, included=included, reset=custom.reset or item.reset)


def _prepaid_included(content: PlanContent) -> frozenset[str]:
    """Prepaid features the plan includes units of (seats: 3 included, $10 each beyond): the
    subscription does not bill them until the customer buys more than the plan includes."""
    return frozenset(
        item.feature
        for item in content.items
        if item.price is not None and item.price.billing is Billing.PREPAID and item.included
    )


def _quantity(price: StripePrice, quantity: int, per: Mapping[str, int]) -> int | None:
    """The base price bills the plan's quantity; a prepaid usage price `quantity × per`
    units (one pack of the price's units per plan); a metered one its usage."""
    assert price.recurring is not None
    if price.recurring.usage_type == "metered":
        return None
    feature = _part(price.address)
    return quantity if feature == BASE else quantity * per.get(feature, 1)


def _part(price_address: str) -> str:
    """What a price of a plan is for: `base`, or the feature of a usage price."""
    return Address.parse(price_address).part or BASE


def with_items(
    planned: tuple[PlannedSubscription, ...],
    existing: StripeState,
    wanted: Mapping[str, StripePrice],
    renewed: Mapping[str, int],
    versions_after: Mapping[str, int],
) -> tuple[PlannedSubscription, ...]:
    """The planned subscriptions with their items, each with the version of the price it
    bills: the customer's own price at its plan version; on the plan's version after apply,
    the price its address has once the plan is applied (a new one when made or replaced
    now); on an older version, the newest price of its address made for that version or
    before."""
    older = _versions_by_address(existing)

    def version(item: PlannedItem, plan: str) -> int:
        if item.custom:
            return item.plan_version
        if item.plan_version == versions_after.get(plan, 1):
            current = existing.prices.get(item.price)
            made = wanted.get(item.price)
            if made is not None and (item.price in renewed or current is None):
                return made.version
            return current.version if current is not None else item.plan_version
        earlier = [v for v in older.get(item.price, ()) if v <= item.plan_version]
        return max(earlier, default=item.plan_version)

    return tuple(
        replace(
            sub,
            record=replace(
                sub.record,
                items=tuple(
                    sorted(
                        (i.price, SubscriptionItem(version(i, sub.record.plan), i.quantity))
                        for i in sub.items
                    )
                ),
            ),
        )
        for sub in planned
    )


def _versions_by_address(existing: StripeState) -> dict[str, list[int]]:
    found: dict[str, list[int]] = defaultdict(list)
    for price in (*existing.prices.values(), *existing.superseded):
        found[price.address].append(price.version)
    return found
