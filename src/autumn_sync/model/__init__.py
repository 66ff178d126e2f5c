"""Domain records shared by the desired state (the file) and the current state (the database)."""

from autumn_sync.model.records import (
    Billing,
    Duration,
    Feature,
    FeatureType,
    FixedPrice,
    FreeTrial,
    Plan,
    PlanContent,
    PlanItem,
    Record,
    Reward,
    RewardType,
    Settings,
    Tier,
    TierMode,
    UsagePrice,
)
from autumn_sync.model.state import State

__all__ = [
    "Billing",
    "Duration",
    "Feature",
    "FeatureType",
    "FixedPrice",
    "FreeTrial",
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
    "UsagePrice",
]
