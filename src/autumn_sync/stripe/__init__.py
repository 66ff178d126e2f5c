"""The catalog mirrored into Stripe: mapping (pure), reading, diffing and applying.

Only `autumn_sync.stripe.gateway` imports the `stripe` package.
"""
