"""`ChangePlan`: the ordered changes, what they were planned against, and a checksum."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from autumn_sync.model.attributes import attributes
from autumn_sync.model.customers import Balance, Customer, Lookup, declared
from autumn_sync.model.records import Plan
from autumn_sync.model.state import Record, State
from autumn_sync.model.stripe import StripeSnapshot, StripeSubscription
from autumn_sync.plan.changes import Archive, Change, Create, Delete, Replace, Update


@dataclass(frozen=True)
class Summary:
    add: int
    change: int
    archive: int
    destroy: int

    @property
    def total(self) -> int:
        return self.add + self.change + self.archive + self.destroy


def resubscribes(change: Change) -> bool:
    """Whether `change` subscribes again a customer whose subscription someone else than
    autumn-sync cancelled (the customer in the portal, the dashboard, dunning): it charges
    someone who left, which `apply` does only with `--allow-resubscribe`."""
    before, after = change.before, change.after
    if not isinstance(before, StripeSubscription) or not before.cancelled_outside:
        return False
    if isinstance(change, Create):
        return True
    resumed = isinstance(after, StripeSubscription) and after.active and not before.active
    return isinstance(change, Update) and resumed


@dataclass(frozen=True, slots=True)
class Note:
    """Something the plan does not change yet, and why (a subscription waiting for its
    customer's checkout): shown with the plan, never applied, not a change."""

    address: str
    text: str


@dataclass(frozen=True)
class ChangePlan:
    """What `apply` will do, in order, and the fingerprint of the state it was made against."""

    changes: tuple[Change, ...]
    state_fingerprint: str
    warnings: tuple[str, ...] = ()
    unchanged: tuple[Record, ...] = ()  # desired records that need nothing
    stripe: StripeSnapshot | None = None  # None when Stripe is not connected
    lookup: Lookup = field(
        default_factory=Lookup
    )  # the file's customer ids and emails (re-read before apply)
    notes: tuple[Note, ...] = ()  # what waits (not changes)
    app_customers: int = 0  # customers the application made, not in the file: left alone

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def destroys(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.destructive)

    @property
    def resubscribes(self) -> tuple[Change, ...]:
        """The changes that subscribe again a customer who cancelled (see `resubscribes`)."""
        return tuple(c for c in self.changes if resubscribes(c))

    def summary(self) -> Summary:
        def count(kind: type[Change]) -> int:
            return sum(isinstance(c, kind) for c in self.changes)

        # A replace makes a new object and archives the old one (unless customers keep it).
        replaces = [c for c in self.changes if isinstance(c, Replace)]
        archived_by_replace = sum(c.keep_old is None for c in replaces)
        return Summary(
            count(Create) + len(replaces),
            count(Update),
            count(Archive) + archived_by_replace,
            count(Delete),
        )

    def checksum(self) -> str:
        """Fingerprint of the changes together with the state they were planned against."""
        data = [_change_data(c) for c in self.changes]
        observed: dict[str, Any] = {"changes": data, "state": self.state_fingerprint}
        if self.stripe is not None:
            observed["stripe"] = self.stripe.fingerprint
        return digest(observed)


def _change_data(change: Change) -> dict[str, Any]:
    return {
        "address": change.address,
        "action": change.action,
        "before": attributes(change.before) if change.before is not None else None,
        "after": attributes(change.after) if change.after is not None else None,
    }


def fingerprint(state: State) -> str:
    """A digest of everything in `state`, including what only the database knows (versions,
    which of them customers are on, archived flags): a change to the catalog in the database
    changes it; customers signing up on versions already in use do not."""
    data = []
    for record in state.records():
        if isinstance(record, Customer | Balance):
            data.append({"address": record.address, "record": _customer_print(record)})
            continue
        entry: dict[str, Any] = {"address": record.address, **attributes(record)}
        if isinstance(record, Plan):
            entry.update(
                archived=record.archived,
                version=record.version,
                # Which versions have customers, not how many: an app signing customers up
                # between plan and apply changes no decision of the plan.
                in_use=sorted(v for v, count in record.versions_in_use if count),
            )
        data.append(entry)
    return digest(data)


def _customer_print(record: Customer | Balance) -> str:
    """What a customer declares, whether the file manages it, the plan versions it is on and
    the plans it had a trial of (not its status: the application moves that); a balance as
    it is. `repr` of the frozen records: thousands of customers are printed in a fraction of
    what `attributes` takes."""
    if isinstance(record, Balance):
        return repr(record)
    versions = sorted((e or "", p.plan, p.version or 0) for e, p in record.all_plans())
    return repr((declared(record), record.managed, versions, record.trialed))


def digest(data: Any) -> str:
    """A stable sha256 of JSON-able `data`."""
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
