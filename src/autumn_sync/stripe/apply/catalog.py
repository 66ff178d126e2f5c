"""Stripe appliers of the catalog's objects (meters, products, prices, coupons, promotion
codes), registered in `APPLIERS` by (change, record) class; the customers' and subscriptions'
are in `customers`. Idempotency keys: see `writer`."""

from __future__ import annotations

import calendar
from typing import Any

from autumn_sync.model.stripe import (
    ARCHIVED_KEY,
    VERSION_KEY,
    StripeCoupon,
    StripeMeter,
    StripePrice,
    StripeProduct,
    StripePromotionCode,
)
from autumn_sync.plan.changes import Archive, Change, Create, Replace, Update
from autumn_sync.stripe.apply.writer import APPLIERS, StripeWriter, owner_metadata, reclaim

# --- meters --------------------------------------------------------------------------------


@APPLIERS.made(Create, StripeMeter)
def _create_meter(writer: StripeWriter, change: Create, meter: StripeMeter) -> None:
    params = {
        "display_name": meter.display_name,
        "event_name": meter.event_name,
        "default_aggregation": {"formula": "sum"},
        "customer_mapping": {"type": "by_id", "event_payload_key": "stripe_customer_id"},
        "value_settings": {"event_payload_key": "value"},
    }
    writer.write(change, "/v1/billing/meters", params, remember=meter.address)


@APPLIERS.changed(Update, StripeMeter)
def _update_meter(writer: StripeWriter, change: Update, old: StripeMeter, new: StripeMeter) -> None:
    mid = writer.ids[new.address]
    if old.display_name != new.display_name:
        writer.write(change, f"/v1/billing/meters/{mid}", {"display_name": new.display_name})
    if not old.active and new.active:
        writer.write(change, f"/v1/billing/meters/{mid}/reactivate", {})


@APPLIERS.gone(Archive, StripeMeter)
def _archive_meter(writer: StripeWriter, change: Archive, _meter: StripeMeter) -> None:
    writer.write(change, f"/v1/billing/meters/{writer.ids[change.address]}/deactivate", {})


# --- products ------------------------------------------------------------------------------


@APPLIERS.made(Create, StripeProduct)
def _create_product(writer: StripeWriter, change: Create, product: StripeProduct) -> None:
    params: dict[str, Any] = {"name": product.name, "metadata": owner_metadata(product.address)}
    if product.description:
        params["description"] = product.description
    writer.write(change, "/v1/products", params, remember=product.address, name=product.name)


@APPLIERS.changed(Update, StripeProduct)
def _update_product(
    writer: StripeWriter, change: Update, old: StripeProduct, new: StripeProduct
) -> None:
    params: dict[str, Any] = {}
    if old.name != new.name:
        params["name"] = new.name
    if old.description != new.description:
        params["description"] = new.description or ""
    if old.active != new.active:
        params["active"] = new.active
    if old.default_price != new.default_price:
        default = writer.ids.get(new.default_price, "") if new.default_price else ""
        params["default_price"] = default
        writer.defaults[new.address] = default or None
    params = reclaim(old, new.address, params)
    path = f"/v1/products/{writer.ids[new.address]}"
    writer.write(change, path, params, remember=new.address, name=new.name)


@APPLIERS.gone(Archive, StripeProduct)
def _archive_product(writer: StripeWriter, change: Archive, _product: StripeProduct) -> None:
    writer.write(change, f"/v1/products/{writer.ids[change.address]}", {"active": False})


# --- prices --------------------------------------------------------------------------------


def _price_params(writer: StripeWriter, price: StripePrice) -> dict[str, Any]:
    params: dict[str, Any] = {
        "product": writer.ids[price.product],
        "currency": price.currency,
        "metadata": owner_metadata(price.address, **{VERSION_KEY: str(price.version)}),
    }
    if price.lookup_key is not None:
        params.update(lookup_key=price.lookup_key, transfer_lookup_key=True)
    if price.tiers:
        params["billing_scheme"] = "tiered"
        params["tiers_mode"] = price.tiers_mode
        params["tiers"] = [
            {
                "up_to": "inf" if t.up_to is None else t.up_to,
                "unit_amount_decimal": format(t.unit_amount_decimal, "f"),
            }
            for t in price.tiers
        ]
    else:
        params["unit_amount_decimal"] = format(price.unit_amount_decimal or 0, "f")
    if price.recurring is not None:
        r = price.recurring
        recurring: dict[str, Any] = {
            "interval": r.interval,
            "interval_count": r.interval_count,
            "usage_type": r.usage_type,
        }
        if r.meter:
            recurring["meter"] = writer.ids[r.meter]
        params["recurring"] = recurring
    return params


@APPLIERS.made(Create, StripePrice)
def _create_price(writer: StripeWriter, change: Create, price: StripePrice) -> None:
    if change.address != price.address:  # an older version's price (`….base.v1`)
        obj = writer.write(change, "/v1/prices", _price_params(writer, price))
        writer.ids[change.address] = obj["id"]  # for the subscriptions billing it now
        return
    _make_price(writer, change, price)


def _make_price(writer: StripeWriter, change: Change, price: StripePrice) -> None:
    """Create the price (taking over its lookup key) and make it its product's default when
    the catalog says so: the new price exists before anything points at it."""
    obj = writer.write(change, "/v1/prices", _price_params(writer, price), remember=price.address)
    _make_default(writer, change, price, obj["id"])


def _make_default(writer: StripeWriter, change: Change, price: StripePrice, price_id: str) -> None:
    """Point the product's `default_price` at `price_id` when the catalog makes `price` the
    default and the product points elsewhere (the price is active by now)."""
    product = writer.desired.products.get(price.product)
    if product is None or product.default_price != price.address:
        return
    if writer.defaults.get(price.product) != price_id:
        path = f"/v1/products/{writer.ids[price.product]}"
        writer.write(change, path, {"default_price": price_id}, step="default_price")
        writer.defaults[price.product] = price_id


@APPLIERS.changed(Replace, StripePrice)
def _replace_price(
    writer: StripeWriter, change: Replace, old: StripePrice, new: StripePrice
) -> None:
    """Create the new price, move the lookup key and the default price, then archive the old
    one (unless customers on its plan version still pay it)."""
    _make_price(writer, change, new)
    if change.keep_old is None:
        _archive_price_object(writer, change, old)


@APPLIERS.changed(Update, StripePrice)
def _update_price(writer: StripeWriter, change: Update, old: StripePrice, new: StripePrice) -> None:
    params: dict[str, Any] = {}
    if old.active != new.active:
        params["active"] = new.active
    if new.lookup_key is not None and old.lookup_key != new.lookup_key:
        params.update(lookup_key=new.lookup_key, transfer_lookup_key=True)
    params = reclaim(old, new.address, params)
    writer.write(change, f"/v1/prices/{writer.ids[new.address]}", params)
    if new.active:  # an archived default price made active again is the default again
        _make_default(writer, change, new, writer.ids[new.address])


@APPLIERS.gone(Archive, StripePrice)
def _archive_price(writer: StripeWriter, change: Archive, price: StripePrice) -> None:
    _archive_price_object(writer, change, price)


def _archive_price_object(writer: StripeWriter, change: Change, price: StripePrice) -> None:
    """Archive one price object; a product's default price is unset first (Stripe refuses
    to archive a default price)."""
    if price.stripe_id is not None and writer.defaults.get(price.product) == price.stripe_id:
        path = f"/v1/products/{writer.ids[price.product]}"
        writer.write(change, path, {"default_price": ""}, step="unset_default")
        writer.defaults[price.product] = None
    writer.write(change, f"/v1/prices/{price.stripe_id}", {"active": False}, step="archive_old")


# --- coupons and promotion codes -----------------------------------------------------------


@APPLIERS.made(Create, StripeCoupon)
def _create_coupon(writer: StripeWriter, change: Create, coupon: StripeCoupon) -> None:
    _make_coupon(writer, change, coupon)


def _make_coupon(writer: StripeWriter, change: Change, coupon: StripeCoupon) -> None:
    params: dict[str, Any] = {
        "id": coupon.coupon_id,  # a replacement's is new (`launch20-v2`), set by the diff
        "duration": coupon.duration,
        "metadata": owner_metadata(coupon.address),
    }
    if coupon.name:
        params["name"] = coupon.name
    if coupon.percent_off is not None:
        params["percent_off"] = format(coupon.percent_off, "f")
    else:
        params.update(amount_off=coupon.amount_off, currency=coupon.currency)
    if coupon.duration_in_months:
        params["duration_in_months"] = coupon.duration_in_months
    if coupon.applies_to:
        params["applies_to"] = {"products": [writer.ids[p] for p in coupon.applies_to]}
    writer.write(change, "/v1/coupons", params, remember=coupon.address)


@APPLIERS.changed(Update, StripeCoupon)
def _update_coupon(
    writer: StripeWriter, change: Update, old: StripeCoupon, new: StripeCoupon
) -> None:
    params: dict[str, Any] = {}
    if old.name != new.name:
        params["name"] = new.name or ""
    if old.active != new.active:
        params["metadata"] = {ARCHIVED_KEY: "" if new.active else "true"}
    params = reclaim(old, new.address, params)
    writer.write(change, f"/v1/coupons/{writer.ids[new.address]}", params)


@APPLIERS.gone(Archive, StripeCoupon)
def _archive_coupon(writer: StripeWriter, change: Archive, _coupon: StripeCoupon) -> None:
    _mark_archived(writer, change)


def _mark_archived(writer: StripeWriter, change: Change) -> None:
    path = f"/v1/coupons/{writer.ids[change.address]}"
    writer.write(change, path, {"metadata": {ARCHIVED_KEY: "true"}})


@APPLIERS.changed(Replace, StripeCoupon)
def _replace_coupon(
    writer: StripeWriter, change: Replace, _old: StripeCoupon, new: StripeCoupon
) -> None:
    _mark_archived(writer, change)
    _make_coupon(writer, change, new)


@APPLIERS.made(Create, StripePromotionCode)
def _create_promo(writer: StripeWriter, change: Create, promo: StripePromotionCode) -> None:
    _make_promo(writer, change, promo)


def _make_promo(writer: StripeWriter, change: Change, promo: StripePromotionCode) -> None:
    params: dict[str, Any] = {
        "promotion": {"type": "coupon", "coupon": writer.ids[promo.coupon]},
        "code": promo.code,
        "metadata": owner_metadata(promo.address),
        **_promo_restrictions(promo),
    }
    writer.write(change, "/v1/promotion_codes", params, remember=promo.address)


def _promo_restrictions(promo: StripePromotionCode) -> dict[str, Any]:
    """The restrictions Stripe takes when it makes a code (only those set are sent):
    `expires_at` as a Unix timestamp, first-time transactions under `restrictions`."""
    params: dict[str, Any] = {}
    if promo.max_redemptions is not None:
        params["max_redemptions"] = promo.max_redemptions
    if promo.expires_at is not None:
        params["expires_at"] = calendar.timegm(promo.expires_at.utctimetuple())
    if promo.first_time_transaction:
        params["restrictions"] = {"first_time_transaction": True}
    return params


@APPLIERS.changed(Update, StripePromotionCode)
def _update_promo(
    writer: StripeWriter, change: Update, old: StripePromotionCode, new: StripePromotionCode
) -> None:
    _set_promo_active(writer, change, old, new)


@APPLIERS.changed(Archive, StripePromotionCode)
def _archive_promo(
    writer: StripeWriter, change: Archive, old: StripePromotionCode, new: StripePromotionCode
) -> None:
    _set_promo_active(writer, change, old, new)


def _set_promo_active(
    writer: StripeWriter, change: Change, old: StripePromotionCode, new: StripePromotionCode
) -> None:
    path = f"/v1/promotion_codes/{writer.ids[change.address]}"
    writer.write(change, path, reclaim(old, change.address, {"active": new.active}))


@APPLIERS.changed(Replace, StripePromotionCode)
def _replace_promo(
    writer: StripeWriter, change: Replace, old: StripePromotionCode, new: StripePromotionCode
) -> None:
    writer.write(
        change, f"/v1/promotion_codes/{old.stripe_id}", {"active": False}, step="deactivate_old"
    )
    _make_promo(writer, change, new)
