"""A `State` is one snapshot of the catalog and the customers the file manages: the desired
one (from the file) or the current one (from the database). Same types on both sides, one
dict per kind."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from autumn_sync.model.customers import Balance, Customer
from autumn_sync.model.records import CatalogRecord, Feature, Plan, Reward, Settings

Record = CatalogRecord | Customer | Balance


@dataclass(frozen=True)
class State:
    settings: Settings | None = None
    features: dict[str, Feature] = field(default_factory=dict)
    plans: dict[str, Plan] = field(default_factory=dict)
    rewards: dict[str, Reward] = field(default_factory=dict)
    customers: dict[str, Customer] = field(default_factory=dict)  # by key (`.user_1`)
    balances: dict[str, Balance] = field(default_factory=dict)  # by address
    # Current state only: feature id → (plan id, version, customers) for every plan version
    # that customers are on and that uses the feature.
    feature_users: dict[str, tuple[tuple[str, int, int], ...]] = field(default_factory=dict)
    # Current state only: customers the application created that the file does not manage.
    app_customers: int = 0

    def records(self) -> Iterator[Record]:
        """Every record: settings first, then features, plans, rewards, customers and
        balances, each kind by id."""
        if self.settings is not None:
            yield self.settings
        kinds: tuple[dict[str, Feature] | dict[str, Plan] | dict[str, Reward], ...] = (
            self.features,
            self.plans,
            self.rewards,
        )
        for kind in kinds:
            for key in sorted(kind):
                yield kind[key]
        for ckey in sorted(self.customers):
            yield self.customers[ckey]
        for address in sorted(self.balances):
            yield self.balances[address]

    def by_address(self) -> dict[str, Record]:
        return {record.address: record for record in self.records()}

    @property
    def active_plans(self) -> dict[str, Plan]:
        return {pid: plan for pid, plan in self.plans.items() if not plan.archived}
