"""When the plans the file gives a customer begin and end in the database. Pure.

The file says which plans a customer is on; the database also says from when and until when
each gives access (`CustomerPlan.begins`, `ends`), and the diff works those out here:

- a plan with a future `start` begins then (`check` grants it, Stripe bills it, from then);
  the plan of its group it replaces stays until then;
- a **downgrade** (a plan of a group replaced by one that costs less a year, billed at the
  same interval or free) while the customer is in a paid period takes effect at that
  period's end: the plan left stays until
  then (`ends`), the new one begins then (`begins`); both rows stay in the database until the
  end, and the file naming the lower plan is then what the database holds (no change);
- naming the higher plan again before that date keeps it (the pending downgrade goes);
- a plan that ended (its `ends` passed) is dropped from the database by the next apply;
- a plan whose Stripe subscription someone else cancelled (the customer in the portal, the
  dashboard, dunning; `cancelled`, from Stripe's word) is marked `canceled`, ending when the
  subscription ends or ended: `check` grants it until then. The row stays, ended or not,
  while the file names the plan (the plan asks for consent to charge the customer again);
  once autumn-sync subscribes the customer again (or Stripe holds the subscription running
  again) the plan is active again, with no end;
- the default plan of the group that took over when that subscription ended (a webhook put
  the customer on it, `runtime.webhooks`) stays while the file names the cancelled plan: the
  customer keeps the default plan's access until it subscribes again or the file changes.

An upgrade, a switch between equals, a move to a plan billed at another interval (another
subscription: the old one ends now, its unused time credited) and a plan replaced during its
free trial take effect at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from decimal import Decimal

from autumn_sync.model.customers import ACTIVE, CANCELED, Customer, CustomerPlan
from autumn_sync.model.records import Plan
from autumn_sync.runtime.intervals import midnight, next_boundary, recurs

# Stripe subscription id → the day it ends (or ended) when someone else than autumn-sync
# cancelled it, None while it runs: what the database learns from Stripe (see `_kept`)
Cancellations = Mapping[str, date | None]


def scheduled(
    old: Customer | None,
    new: Customer,
    catalog: Mapping[str, Plan],
    today: date,
    cancelled: Cancellations | None = None,
) -> Customer:
    """`new` (the file's customer) with the dates its plans begin and end in the database,
    and the plans marked cancelled as Stripe says (`cancelled`; None: Stripe not read)."""
    before = {e.id: e.plans for e in old.entities} if old is not None else {}
    own = old.plans if old is not None else ()
    return replace(
        new,
        plans=plan_dates(own, new.plans, catalog, today, cancelled),
        entities=tuple(
            replace(e, plans=plan_dates(before.get(e.id, ()), e.plans, catalog, today, cancelled))
            for e in new.entities
        ),
    )


def plan_dates(
    before: tuple[CustomerPlan, ...],
    after: tuple[CustomerPlan, ...],
    catalog: Mapping[str, Plan],
    today: date,
    cancelled: Cancellations | None = None,
) -> tuple[CustomerPlan, ...]:
    """The plans `after` (the file's) with their dates, given those the database holds
    (`before`), and the plans already ending that the file no longer names (left by a
    downgrade, cancelled in Stripe), kept until they end: the customer paid for that time."""
    held = {p.plan: p for p in before if _held(p, today)}
    wanted = {p.plan for p in after}
    result: list[CustomerPlan] = []
    for plan in after:
        if plan.plan in held:
            result.append(_kept(held[plan.plan], plan, today, cancelled or {}))
            continue
        left = _replaced(plan, held, wanted, catalog)
        end = _handover(left, plan, catalog, today) if left is not None else None
        if left is not None and end is not None:
            result += [replace(plan, begins=end), _leaving(replace(left, ends=end))]
        else:
            result.append(replace(plan, begins=_future(plan.start, today)))
    kept = {p.plan for p in result}
    result += [
        _leaving(p)
        for pid, p in held.items()
        if pid not in kept and p.ends is not None and p.ends > today
    ]
    result += _taken_over(held, result, catalog, today)
    return tuple(sorted(result, key=lambda p: p.plan))


def _taken_over(
    held: Mapping[str, CustomerPlan],
    result: list[CustomerPlan],
    catalog: Mapping[str, Plan],
    today: date,
) -> list[CustomerPlan]:
    """The default plans the database holds that the file does not name, kept while a plan
    of their group the file names was cancelled in Stripe and has ended: the default plan
    took over when the subscription ended."""
    kept = {p.plan for p in result}
    ended = {
        catalog[p.plan].group
        for p in result
        if p.status == CANCELED and p.ends is not None and p.ends <= today and p.plan in catalog
    }
    return [
        p
        for pid, p in held.items()
        if pid not in kept
        and p.ends is None
        and pid in catalog
        and catalog[pid].default
        and catalog[pid].group is not None
        and catalog[pid].group in ended
    ]


def _leaving(plan: CustomerPlan) -> CustomerPlan:
    """A plan the file no longer names that stays until it ends; one cancelled in Stripe is
    no longer waiting for a resubscription: it simply ends (`active` until then)."""
    return replace(plan, status=ACTIVE) if plan.status == CANCELED else plan


def _held(plan: CustomerPlan, today: date) -> bool:
    """Whether the database still holds `plan`: not ended, or cancelled in Stripe (kept,
    ended, while the file names it)."""
    return plan.ends is None or plan.ends > today or plan.status == CANCELED


def _future(start: date | None, today: date) -> date | None:
    return start if start is not None and start > today else None


def _kept(
    held: CustomerPlan, plan: CustomerPlan, today: date, cancelled: Cancellations
) -> CustomerPlan:
    """A plan the customer stays on: its dates as the database has them (one being left
    is kept: the downgrade goes); one that has not begun begins at the start the file gives
    it now (a plan begun stays begun); a plan whose subscription was cancelled in Stripe is
    `canceled` from the day it ends (Stripe's word when read, else as the database has it),
    and active again, with no end, once Stripe holds the subscription running."""
    waiting = held.begins is not None and held.begins > today
    begins = _future(plan.start, today) if waiting and plan.start != held.start else held.begins
    sid = held.stripe_subscription_id
    if sid is not None and sid in cancelled:
        ends = cancelled[sid]
        if ends is not None:
            return replace(plan, begins=begins, ends=ends, status=CANCELED)
        if held.status == CANCELED:
            return replace(plan, begins=begins, ends=None, status=ACTIVE)
    if held.status == CANCELED:
        return replace(plan, begins=begins, ends=held.ends, status=CANCELED)
    return replace(plan, begins=begins, ends=None)


def _replaced(
    plan: CustomerPlan,
    held: Mapping[str, CustomerPlan],
    wanted: set[str],
    catalog: Mapping[str, Plan],
) -> CustomerPlan | None:
    """The plan the customer holds now that `plan` replaces: one of its group (neither an
    add-on) the file no longer names."""
    new = catalog.get(plan.plan)
    if new is None or new.group is None or new.add_on:
        return None
    for pid in sorted(held):
        old = catalog.get(pid)
        if pid in wanted or old is None or old.group != new.group or old.add_on:
            continue
        return held[pid]
    return None


def _handover(
    left: CustomerPlan, plan: CustomerPlan, catalog: Mapping[str, Plan], today: date
) -> date | None:
    """When `plan` takes over from `left`: when `left` ends if it already ends ahead
    (cancelled in Stripe), at its start when that is ahead (the customer keeps `left` until
    then), at the end of the paid period for a downgrade; None: now."""
    if left.ends is not None and left.ends > today:
        return left.ends
    start = _future(plan.start, today)
    if start is not None:
        return start
    return _downgrade_end(left, plan, catalog, today)


def _downgrade_end(
    left: CustomerPlan, plan: CustomerPlan, catalog: Mapping[str, Plan], today: date
) -> date | None:
    """The end of the paid period of `left` when `plan` is a downgrade from it, bought and
    begun (not in its free trial, not waiting for its start); None: the change is now."""
    if yearly(plan, catalog) >= yearly(left, catalog) or left.ends is not None:
        return None
    if _interval(plan, catalog) not in (None, _interval(left, catalog)):
        return None  # billed at another interval: another subscription, ended now and credited
    if left.begins is not None and left.begins > today:
        return None
    if left.trial_ends_at is not None and left.trial_ends_at > today:
        return None
    interval = _interval(left, catalog)
    anchor = left.trial_ends_at or left.begins or left.start or left.attached
    if anchor is None or not recurs(interval):
        return None
    assert interval is not None
    return next_boundary(midnight(anchor), interval, midnight(today)).date()


def _interval(plan: CustomerPlan, catalog: Mapping[str, Plan]) -> str | None:
    found = catalog.get(plan.plan)
    price = plan.price or (found.content.price if found is not None else None)
    return price.interval if price is not None else None


_PERIODS_PER_YEAR = {"week": 52, "month": 12, "quarter": 4, "semi_annual": 2, "year": 1}


def yearly(plan: CustomerPlan, catalog: Mapping[str, Plan]) -> Decimal:
    """What the plan costs a year (its licences at the customer's own price if it has one,
    else the plan's): what tells an upgrade from a downgrade."""
    found = catalog.get(plan.plan)
    price = plan.price or (found.content.price if found is not None else None)
    if price is None:
        return Decimal(0)
    return price.amount * _PERIODS_PER_YEAR.get(price.interval, 1) * plan.quantity
