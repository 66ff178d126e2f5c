"""The runtime API's errors: each message is safe to show as it is (`Error: …`)."""

from __future__ import annotations

from collections.abc import Iterable

from autumn_sync.config.checks import did_you_mean


class BillingError(Exception):
    """A runtime request that cannot be answered; the message says why."""


class UnknownCustomer(BillingError):
    """No customer has this id."""

    def __init__(self, customer_id: str, known: Iterable[str] = ()):
        super().__init__(f"no customer with id {customer_id!r}{did_you_mean(customer_id, known)}")
        self.customer_id = customer_id


class UnknownFeature(BillingError):
    """The catalog has no feature with this id."""

    def __init__(self, feature_id: str, known: Iterable[str] = ()):
        hint = did_you_mean(feature_id, known)
        super().__init__(f"no feature {feature_id!r} in the catalog{hint}")
        self.feature_id = feature_id


class InvalidRequest(BillingError):
    """The arguments do not make sense (an empty id, a value that is not a number...)."""


class InvalidWebhook(BillingError):
    """A webhook delivery that is not a genuine Stripe event (a missing or wrong signature,
    a body that is no event): nothing was written."""


class UnknownEntity(BillingError):
    """The customer has no entity with this id."""

    def __init__(self, customer_id: str, entity_id: str, known: Iterable[str] = ()):
        hint = did_you_mean(entity_id, known)
        super().__init__(f"customer {customer_id!r} has no entity {entity_id!r}{hint}")
        self.entity_id = entity_id
