"""What the database maps to in Stripe (pure): the catalog's products, prices, meters,
coupons and promotion codes (`catalog`), and the customers' Stripe customers and
subscriptions (`customers`)."""

from autumn_sync.stripe.map.catalog import desired_stripe, plan_prices
from autumn_sync.stripe.map.customers import plan_billing

__all__ = ["desired_stripe", "plan_billing", "plan_prices"]
