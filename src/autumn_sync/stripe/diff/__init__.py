"""The Stripe diff (pure): what Stripe holds against what the database maps to, as typed
changes: the catalog's objects (`catalog`) and the customers and subscriptions
(`customers`)."""

from autumn_sync.stripe.diff.catalog import diff_stripe
from autumn_sync.stripe.diff.customers import diff_billing

__all__ = ["diff_billing", "diff_stripe"]
