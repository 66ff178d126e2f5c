"""Reading what Stripe holds through list endpoints: the catalog's objects autumn-sync owns
(`catalog`) and the customers and subscriptions (`customers`)."""

from autumn_sync.stripe.read.catalog import read_stripe

__all__ = ["read_stripe"]
