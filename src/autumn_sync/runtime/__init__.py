"""The runtime API (`Billing`): `get_or_create` customers, `check` features and `track`
usage against the balances the billing database holds. No click here; the command line's
`customer get-or-create`, `check`, `track` and `show` call into this package."""

from __future__ import annotations

from autumn_sync.runtime.api import Billing, utc_now
from autumn_sync.runtime.entitlements import FeatureBalance
from autumn_sync.runtime.errors import (
    BillingError,
    InvalidRequest,
    InvalidWebhook,
    UnknownCustomer,
    UnknownEntity,
    UnknownFeature,
)
from autumn_sync.runtime.results import CheckResult, CustomerInfo, PlanInfo, TrackResult
from autumn_sync.runtime.webhooks import WebhookResult

__all__ = [
    "Billing",
    "BillingError",
    "CheckResult",
    "CustomerInfo",
    "FeatureBalance",
    "InvalidRequest",
    "InvalidWebhook",
    "PlanInfo",
    "TrackResult",
    "UnknownCustomer",
    "UnknownEntity",
    "UnknownFeature",
    "WebhookResult",
    "utc_now",
]
