"""The Stripe diff of customers and subscriptions. Pure: no I/O.

- A Stripe customer is created, updated (email, name, ownership metadata, the id the
  database records) or, once its customer left the file, marked in its metadata: never
  deleted. A name or email the file leaves out is left as Stripe has it.
- A subscription is created for a paid plan, updated (items, quantities, collection,
  coupons, resumed when it was set to cancel) and, once the plan is no longer the
  customer's, cancelled at period end. A customer who pays by card
  (`charge_automatically`) without a payment method in Stripe gets no subscription yet:
  it is *waiting for checkout*, not a change and not a failure; the plan says so, and the
  subscription is made by the first plan once the customer has a payment method.
- A subscription that ended (cancelled in Stripe) is made again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from autumn_sync.model.customers import SEND_INVOICE
from autumn_sync.model.stripe import (
    NOT_STARTED,
    OWNER_KEY,
    StripeCustomer,
    StripeState,
    StripeSubscription,
    subscription_scope,
)
from autumn_sync.plan.changes import Archive, Change, Create, FieldChange, Update
from autumn_sync.plan.fields import field_changes

LEFT = "its customer left the file: marked in its metadata, never deleted in Stripe"
CANCELS = "no longer the customer's plan: cancels at the end of the period"
RESUBSCRIBES = (
    " (by the customer or in the dashboard): subscribing again charges them"
    " (apply needs --allow-resubscribe)"
)

REPLACED = "{} bills its plans now: cancelled now, the unused time credited"
PATHS = {
    "owner": f"metadata.{OWNER_KEY}",
    "recorded": "database.stripe_id",
}


@dataclass(frozen=True)
class Waiting:
    """A subscription not made yet: its customer pays by card and has no payment method in
    Stripe. `ended` is the subscription at its address that ended, if any."""

    address: str
    customer: str  # address of the Stripe customer
    ended: StripeSubscription | None = None

    def note(self) -> str:
        text = f"waiting for checkout: {self.customer} has no payment method in Stripe yet"
        if self.ended is not None:
            text += f" ({self.ended.stripe_id} was cancelled in Stripe)"
        return text


def diff_billing(
    existing: StripeState,
    customers: Mapping[str, StripeCustomer],
    subscriptions: Mapping[str, StripeSubscription],
    renewed: Mapping[str, int],
    groups: Mapping[str, str] | None = None,
) -> tuple[list[Change], list[Waiting]]:
    """The changes of Stripe customers and subscriptions, and the subscriptions waiting for
    checkout. `renewed` holds the price addresses that get a new price in this plan, with
    the version it is made for; `groups` each grouped plan's group."""
    waiting: list[Waiting] = []
    changes = [
        *_customers(existing, customers),
        *_subscriptions(existing, subscriptions, renewed, waiting, groups or {}),
    ]
    return changes, waiting


def _renamed(fields: tuple[FieldChange, ...]) -> tuple[FieldChange, ...]:
    """Field paths as Stripe and the database name them."""
    return tuple(replace(f, path=PATHS.get(f.path, f.path)) for f in fields)


def _customers(existing: StripeState, wanted: Mapping[str, StripeCustomer]) -> Iterator[Change]:
    for address in sorted(set(existing.customers) | set(wanted)):
        old, new = existing.customers.get(address), wanted.get(address)
        if old is None and new is not None:
            yield Create(address, None, new)
        elif new is None and old is not None:
            if old.active:
                yield Archive(address, old, replace(old, active=False), reason=LEFT)
        elif old is not None and new is not None:
            same = replace(
                new,
                email=new.email if new.email is not None else old.email,
                name=new.name if new.name is not None else old.name,
                has_payment_method=old.has_payment_method,
                recorded=old.stripe_id,
                stripe_id=old.stripe_id,
            )
            if same != old:  # the common case, equal, costs no field comparison
                yield Update(address, old, same, _renamed(field_changes(old, same)))


def _subscriptions(
    existing: StripeState,
    wanted: Mapping[str, StripeSubscription],
    renewed: Mapping[str, int],
    waiting: list[Waiting],
    groups: Mapping[str, str],
) -> Iterator[Change]:
    for address in sorted(set(existing.subscriptions) | set(wanted)):
        old, new = existing.subscriptions.get(address), wanted.get(address)
        live = old if old is not None and not old.ended else None
        if new is not None and live is None:
            if _can_bill(existing, new):
                reason = None
                if old is not None:
                    reason = f"{old.stripe_id} was cancelled in Stripe"
                    reason += RESUBSCRIBES if old.cancelled_outside else ""
                yield Create(address, old, new, reason=reason)
            else:
                waiting.append(Waiting(address, new.customer, old))
        elif new is None and live is not None:
            taker = _taken_over_by(live, wanted, groups)
            if taker is not None:
                ending = replace(live, scope=subscription_scope(live.plans, groups))
                ended = replace(ending, active=False, status="canceled")
                yield Archive(address, ending, ended, reason=REPLACED.format(taker))
            elif live.active:
                yield Archive(address, live, replace(live, active=False), reason=CANCELS)
        elif new is not None and live is not None:
            yield from _subscription_update(live, new, renewed)


def _taken_over_by(
    old: StripeSubscription, wanted: Mapping[str, StripeSubscription], groups: Mapping[str, str]
) -> str | None:
    """The wanted subscription of the same customer (or entity) that bills one of `old`'s
    plans, or another plan of one of their groups (a plan change to another interval, or
    plans an earlier layout billed apart): `old` must end now, its unused time credited,
    or both would bill the rest of the period."""
    mine = set(subscription_scope(old.plans, groups))
    for address, sub in sorted(wanted.items()):
        if (sub.customer, sub.entity) != (old.customer, old.entity):
            continue
        if mine & set(subscription_scope(sub.plans, groups)):
            return address
    return None


def _can_bill(existing: StripeState, subscription: StripeSubscription) -> bool:
    """Invoices need no payment method, nor does a trial that asks for no card; charging
    automatically does."""
    if subscription.collection_method == SEND_INVOICE:
        return True
    if subscription.trial_end is not None and not subscription.card_required:
        return True
    customer = existing.customers.get(subscription.customer)
    return customer is not None and customer.has_payment_method


def _subscription_update(
    old: StripeSubscription,
    new: StripeSubscription,
    renewed: Mapping[str, int],
) -> Iterator[Change]:
    same = replace(
        new,
        trial_end=old.trial_end,  # set when made; a trial is not changed afterwards
        status=old.status,
        # the database records it on the rows of the plans it bills the base price of (a
        # schedule not begun has no subscription to record yet)
        recorded=old.stripe_id if new.records and old.status != NOT_STARTED else None,
        stripe_id=old.stripe_id,
    )
    fields = _renamed(field_changes(old, same)) if same != old else ()
    fields += tuple(_moves(old, same, renewed))
    if fields:
        reason = "resumed: it was set to cancel at period end" if not old.active else None
        if not old.active and old.cancelled_outside:
            reason = f"resumed: {old.stripe_id} was set to cancel in Stripe{RESUBSCRIBES}"
        if old.plans != new.plans:
            reason = _plan_change(old, new) + (f"; {reason}" if reason else "")
        if old.then != new.then:
            reason = "; ".join(filter(None, [reason, _scheduled(new)]))
        yield Update(old.address, old, same, fields, reason=reason)


def _scheduled(new: StripeSubscription) -> str:
    """What its schedule does from the date ahead, in words."""
    if new.then is None:
        return "its schedule lets go: it bills as it does now"
    plans = ", ".join(new.then.plans) or "none"
    if not new.items:
        return f"starts {new.then.start} on {plans} through a subscription schedule"
    return f"bills {plans} from {new.then.start} through a subscription schedule"


PRORATION_WORDS = {
    "always_invoice": "the difference for the rest of the period invoiced now",
    "create_prorations": "the difference for the rest of the period on the next invoice",
    "none": "the new prices from the next period, no proration",
}


def _plan_change(old: StripeSubscription, new: StripeSubscription) -> str:
    """`plans pro → team: the difference for the rest of the period invoiced now`."""
    before = ", ".join(old.plans) or "none"
    after = ", ".join(new.plans) or "none"
    return f"plans {before} → {after}: {PRORATION_WORDS[new.proration]}"


def _moves(
    old: StripeSubscription, new: StripeSubscription, renewed: Mapping[str, int]
) -> Iterator[FieldChange]:
    """Items whose price is replaced by a new price of the version they bill (a customer's
    own price whose terms change) move to it."""
    before = dict(old.items)
    for address, item in new.items:
        held = before.get(address)
        made = renewed.get(address)
        if made == item.version and held is not None and held.version == item.version:
            yield FieldChange(f"items[{address}].price", "the price replaced", "its new price")
