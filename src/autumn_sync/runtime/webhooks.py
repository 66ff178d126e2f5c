"""Stripe's word on payment, from verified webhooks, into the database.

autumn-sync makes a customer's subscription itself (`apply`), once the customer has a
payment method; until then the plan's subscription is *waiting for checkout* (the plan says
so) and the customer's plans are in the database as attached (`active`, or `trialing`). The
webhooks record what Stripe then says about each subscription on the plan rows that record
it (`customer_plans.stripe_subscription_id`):

- `checkout.session.completed` (with a subscription) and `invoice.paid` *activate*: a plan
  waiting for a payment (`incomplete`, `past_due`, `unpaid`, `paused`) becomes `active`
  (`trialing` while its trial runs); an active plan stays as it is;
- `invoice.payment_failed`: an active or trialing plan becomes `past_due`;
- `customer.subscription.updated`: the subscription's status (`active`, `trialing`,
  `past_due`, `unpaid`, `incomplete`, `paused`); `canceled`: as deleted;
- `customer.subscription.deleted`: `canceled`, ending the day the subscription ended; the
  default plan of each group the customer is left without a plan of takes over.

`check` grants `active`, `trialing` and (unless `settings.billing.past_due: deny`)
`past_due` plans, and a `canceled` one until its end; `incomplete`, `unpaid` and `paused` give
nothing. A `checkout.session.completed` without a subscription (a payment method saved in
setup mode) changes nothing here: the next `apply` makes the subscription.

Each event is processed once: its id is stored with the outcome (`stripe_events`) in the
transaction that writes the statuses, so a replay, or Stripe retrying an event it thinks
was lost, changes nothing. Stripe does not deliver in order: an event made (`created`)
before one already processed for the same subscription changes no status, and a plan ended
by a deletion is never moved back by an event (a deleted subscription never runs again;
`apply` subscribes the customer again, with a new subscription, when the file says so).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Row, func, insert, select, true, update
from sqlalchemy.exc import IntegrityError

from autumn_sync.database import schema as t
from autumn_sync.runtime.customers import attach_default
from autumn_sync.runtime.errors import InvalidRequest
from autumn_sync.runtime.queries import ACTIVE, CANCELED, TRIALING

log = logging.getLogger(__name__)

PAST_DUE = "past_due"
UNPAID = "unpaid"
INCOMPLETE = "incomplete"
PAUSED = "paused"
WAITING = (INCOMPLETE, PAST_DUE, UNPAID, PAUSED)  # statuses a payment activates
# a subscription's status in Stripe → its plans' status (the ended ones: as deleted)
STATUSES = {s: s for s in (ACTIVE, TRIALING, PAST_DUE, UNPAID, INCOMPLETE, PAUSED)}
ENDED = ("canceled", "incomplete_expired")

# outcomes, as stored and returned
APPLIED = "applied"  # statuses written (possibly none changed: already as Stripe says)
DUPLICATE = "duplicate"  # the event was processed before: nothing done
STALE = "stale"  # older than an event already processed for its subscription: no change
IGNORED = "ignored"  # a type not handled, or about no subscription the database records


@dataclass(frozen=True)
class WebhookResult:
    """What one delivered event did: its id, type and `outcome` (`applied`, `duplicate`,
    `stale`, `ignored`), and how many plan rows it changed."""

    event_id: str
    type: str
    outcome: str
    plans_changed: int = 0


@dataclass(frozen=True)
class Event:
    """The parts of a Stripe event the handlers use."""

    id: str
    type: str
    created: datetime  # UTC, naive
    obj: Mapping[str, Any]
    subscription: str | None
    now: datetime

    @property
    def today(self) -> date:
        return self.now.date()


Handler = Callable[[Connection, Event], int]


def handle_event(engine: Engine, payload: Mapping[str, Any], now: datetime) -> WebhookResult:
    """Process one verified Stripe event (a dict) once; see the module's docstring."""
    event = parse_event(payload, now)
    try:
        with engine.begin() as conn:
            if _seen(conn, event.id):
                return WebhookResult(event.id, event.type, DUPLICATE)
            outcome, changed = _process(conn, event)
            conn.execute(insert(t.stripe_events).values(**_row(event, outcome)))
    except IntegrityError:  # the same event, processed meanwhile by another delivery
        return WebhookResult(event.id, event.type, DUPLICATE)
    log.info("stripe event %s (%s): %s, %d plans changed", event.id, event.type, outcome, changed)
    return WebhookResult(event.id, event.type, outcome, changed)


def parse_event(payload: Mapping[str, Any], now: datetime) -> Event:
    """The event's id, type, time and object (`InvalidRequest` when one is missing)."""
    try:
        obj = payload["data"]["object"]
        created = datetime.fromtimestamp(int(payload["created"]), UTC).replace(tzinfo=None)
        kind = str(payload["type"])
        return Event(str(payload["id"]), kind, created, obj, _subscription(kind, obj), now)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidRequest(f"not a Stripe event: {exc!r} missing or malformed") from None


def _subscription(kind: str, obj: Mapping[str, Any]) -> str | None:
    """The subscription an event is about: the object itself, or the one it names."""
    if kind.startswith("customer.subscription."):
        return _id(obj.get("id"))
    found = obj.get("subscription")
    if found is None and kind.startswith("invoice."):
        parent = obj.get("parent") or {}
        found = (parent.get("subscription_details") or {}).get("subscription")
    return _id(found)


def _id(value: Any) -> str | None:
    """An id, or the id of an expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return str(value) if value else None


def _seen(conn: Connection, event_id: str) -> bool:
    e = t.stripe_events
    return conn.execute(select(e.c.event_id).where(e.c.event_id == event_id)).first() is not None


def _row(event: Event, outcome: str) -> dict[str, Any]:
    return {
        "event_id": event.id,
        "type": event.type,
        "subscription_id": event.subscription,
        "created": event.created,
        "received_at": event.now,
        "outcome": outcome,
    }


def _process(conn: Connection, event: Event) -> tuple[str, int]:
    handler = HANDLERS.get(event.type)
    if handler is None or event.subscription is None:
        return IGNORED, 0
    if handler is not _deleted and _stale(conn, event):
        return STALE, 0
    return APPLIED, handler(conn, event)


def _stale(conn: Connection, event: Event) -> bool:
    """Whether an event made later was already processed for the subscription."""
    e = t.stripe_events
    query = select(func.max(e.c.created)).where(e.c.subscription_id == event.subscription)
    latest = conn.execute(query).scalar()
    return latest is not None and latest > event.created


def _set_status(
    conn: Connection,
    event: Event,
    status: str,
    among: tuple[str, ...],
    where: ColumnElement[bool] | None = None,
) -> int:
    """Give the subscription's plans of a status in `among` (and `where`) the status
    `status`; how many changed."""
    cp = t.customer_plans
    rows = (cp.c.stripe_subscription_id == event.subscription) & cp.c.status.in_(among)
    rows = rows & (cp.c.status != status)
    if where is not None:
        rows = rows & where
    return conn.execute(update(cp).where(rows).values(status=status)).rowcount or 0


def _activated(conn: Connection, event: Event) -> int:
    """A payment: the plans waiting for one become active (trialing while the trial runs)."""
    cp = t.customer_plans
    trial = cp.c.trial_ends_at.is_not(None) & (cp.c.trial_ends_at > event.today)
    changed = _set_status(conn, event, TRIALING, WAITING, trial)
    return changed + _set_status(conn, event, ACTIVE, WAITING, ~trial)


def _payment_failed(conn: Connection, event: Event) -> int:
    """A failed payment: the active (or trialing) plans are past due."""
    return _set_status(conn, event, PAST_DUE, (ACTIVE, TRIALING))


def _updated(conn: Connection, event: Event) -> int:
    """The subscription's new status on its plans (never on those a deletion ended)."""
    status = str(event.obj.get("status"))
    if status in ENDED:
        return _deleted(conn, event)
    found = STATUSES.get(status)
    if found is None:
        return 0
    return _set_status(conn, event, found, tuple(s for s in STATUSES if s != found))


def _deleted(conn: Connection, event: Event) -> int:
    """The subscription ended: its plans are `canceled` from the day it ended, and the
    default plan of each group a customer is left without takes over."""
    cp = t.customer_plans
    ended = _ended_on(event)
    mine = cp.c.stripe_subscription_id == event.subscription
    ending = mine & ((cp.c.status != CANCELED) | cp.c.ends_at.is_(None) | (cp.c.ends_at > ended))
    rows = conn.execute(
        select(cp.c.customer_internal_id, cp.c.entity_id, cp.c.plan_id).where(ending)
    )
    left = [row for row in rows if row.entity_id == ""]
    changed = conn.execute(update(cp).where(ending).values(status=CANCELED, ends_at=ended))
    for iid in sorted({row.customer_internal_id for row in left}):
        plans = {row.plan_id for row in left if row.customer_internal_id == iid}
        _take_over(conn, iid, plans, event.now)
    return changed.rowcount or 0


def _ended_on(event: Event) -> date:
    """The day the subscription ended (its `ended_at`, else its cancellation, else the
    event's time)."""
    for key in ("ended_at", "canceled_at"):
        value = event.obj.get(key)
        if value:
            return datetime.fromtimestamp(int(value), UTC).date()
    return event.created.date()


def _take_over(conn: Connection, iid: int, ended: set[str], now: datetime) -> None:
    """Attach the default plan of each group of the `ended` plans in which the customer has
    no other plan that runs, as `get_or_create` attaches default plans."""
    p = t.plans
    groups = select(p.c.group_id).where(p.c.id.in_(ended), p.c.group_id.is_not(None), ~p.c.add_on)
    for (group,) in conn.execute(groups.distinct().order_by(p.c.group_id)):
        if not _has_running_plan(conn, iid, group, ended, now.date()):
            default = _default_of(conn, group)
            if default is not None:
                attach_default(conn, iid, default, _fingerprint(conn, iid), now)


def _has_running_plan(conn: Connection, iid: int, group: str, ended: set[str], today: date) -> bool:
    cp, p = t.customer_plans, t.plans
    query = (
        select(cp.c.plan_id)
        .join(p, p.c.id == cp.c.plan_id)
        .where(
            (cp.c.customer_internal_id == iid)
            & (cp.c.entity_id == "")
            & (p.c.group_id == group)
            & ~p.c.add_on
            & cp.c.plan_id.not_in(ended)
            & (cp.c.ends_at.is_(None) | (cp.c.ends_at > today))
        )
    )
    return conn.execute(query.limit(1)).first() is not None


def _default_of(conn: Connection, group: str) -> Row[Any] | None:
    p, v = t.plans, t.plan_versions
    query = (
        select(p.c.id, p.c.current_version, v.c.trial_days, v.c.trial_unique_fingerprint)
        .join(v, (v.c.plan_id == p.c.id) & (v.c.version == p.c.current_version))
        .where(p.c.is_default == true(), ~p.c.archived, ~p.c.add_on, p.c.group_id == group)
        .order_by(p.c.id)
    )
    found: Row[Any] | None = conn.execute(query.limit(1)).first()  # type: ignore[assignment]
    return found


def _fingerprint(conn: Connection, iid: int) -> str | None:
    c = t.customers
    return conn.execute(select(c.c.fingerprint).where(c.c.internal_id == iid)).scalar()


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _activated,
    "invoice.paid": _activated,
    "invoice.payment_failed": _payment_failed,
    "customer.subscription.updated": _updated,
    "customer.subscription.deleted": _deleted,
}
EVENT_TYPES = tuple(sorted(HANDLERS))  # the events to enable on the webhook endpoint
