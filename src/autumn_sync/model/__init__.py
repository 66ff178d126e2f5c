"""Domain records shared by the desired state (the file) and the current state (the database)."""

from autumn_sync.model.customers import Balance, Customer, CustomerPlan, Entity, Grant
from autumn_sync.model.records import (
    Duration,
    Feature,
    FeatureType,
    FixedPrice,
    FreeTrial,
    Plan,
    PlanContent,
    PlanItem,
    Reward,
    RewardType,
    Settings,
    Tier,
    TierMode,
    UsageModel,
    UsagePrice,
)
from autumn_sync.model.state import Record, State

__all__ = [
    "Balance",
    "Customer",
    "CustomerPlan",
    "Duration",
    "Entity",
    "Feature",
    "FeatureType",
    "FixedPrice",
    "FreeTrial",
    "Grant",
    "Plan",
    "PlanContent",
    "PlanItem",
    "Record",
    "Reward",
    "RewardType",
    "Settings",
    "State",
    "Tier",
    "TierMode",
    "UsageModel",
    "UsagePrice",
]
