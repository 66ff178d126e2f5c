"""A `State` is one snapshot of the catalog: the desired one (from the file) or the current one
(from the database). Same types on both sides, one dict per kind, keyed by id."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from autumn_sync.model.records import Feature, Plan, Record, Reward, Settings


@dataclass(frozen=True)
class State:
    settings: Settings | None = None
    features: dict[str, Feature] = field(default_factory=dict)
    plans: dict[str, Plan] = field(default_factory=dict)
    rewards: dict[str, Reward] = field(default_factory=dict)
    # Current state only: feature id → (plan id, version, customers) for every plan version
    # that customers are on and that uses the feature.
    feature_users: dict[str, tuple[tuple[str, int, int], ...]] = field(default_factory=dict)

    def records(self) -> Iterator[Record]:
        """Every record, settings first, then features, plans and rewards by id."""
        if self.settings is not None:
            yield self.settings
        for kind in (self.features, self.plans, self.rewards):
            for key in sorted(kind):
                yield kind[key]

    def by_address(self) -> dict[str, Record]:
        return {record.address: record for record in self.records()}

    @property
    def active_plans(self) -> dict[str, Plan]:
        return {pid: plan for pid, plan in self.plans.items() if not plan.archived}
