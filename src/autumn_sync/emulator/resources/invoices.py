"""Invoices: how they are made from lines, discounted, totalled and settled; retrieve and list.

Subscriptions make their own invoices (see `lifecycle`): lines for what each item costs over a
period, and pending invoice items (prorations) waiting for the next invoice. An invoice's
`subtotal` is the sum of its lines; the subscription's discounts then take their share:

- a discount applies to the lines it may discount: not prorations (Stripe marks them
  non-discountable), and, when its coupon has `applies_to.products`, only lines of those
  products; an `amount_off` coupon only on invoices in its currency;
- discounts apply one after the other, in the subscription's order, each on what the previous
  ones left of a line; `percent_off` takes that share of each line (rounded to a minor unit),
  `amount_off` takes at most what is left on the lines it applies to, shared between them in
  proportion to what is left on each (the last one takes the rounding remainder);
- a discount whose `end` has passed no longer applies.

`total` is the subtotal less the discounts; the customer's credit balance (a negative
`balance`) is used first and a negative total becomes credit. Stripe finalizes subscription
invoices itself; the emulator does it at once: nothing to pay → `paid`; `send_invoice` → `open`
(due after `days_until_due`); charging automatically with a payment method → `paid`, without
one → `open`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from autumn_sync.emulator.listing import PAGING, all_of, equal_filter, list_response
from autumn_sync.emulator.resources.amounts import minor_units
from autumn_sync.emulator.routing import Call, Route
from autumn_sync.emulator.store import JsonDict, State, as_dict, mapping
from autumn_sync.emulator.views import Expand, reference, register

DAY = 86400
STATUSES = ("draft", "open", "paid", "uncollectible", "void")
Period = tuple[int, int]


def product_name(state: State, price: JsonDict) -> str:
    """The name of the price's product (as line descriptions show it)."""
    product = state.find("product", str(price["product"]))
    return str(product["name"]) if product is not None else str(price["product"])


def day_text(moment: int) -> str:
    """A date as Stripe writes it in proration descriptions (`15 Jan 2026`)."""
    return datetime.fromtimestamp(moment, UTC).strftime("%d %b %Y")


def pending_item(
    state: State,
    sub: JsonDict,
    item_id: str,
    price: JsonDict,
    quantity: int | None,
    period: Period,
    amount: int,
    description: str,
) -> JsonDict:
    """A pending proration invoice item (stored by the caller), billed on the next invoice."""
    return {
        "id": state.new_id("invoiceitem"),
        "object": "invoiceitem",
        "amount": amount,
        "currency": price["currency"],
        "customer": sub["customer"],
        "customer_account": None,
        "date": state.now(),
        "description": description,
        "discountable": False,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "net_amount": amount,
        "parent": {
            "subscription_details": {"subscription": sub["id"], "subscription_item": item_id},
            "type": "subscription_details",
        },
        "period": {"end": period[1], "start": period[0]},
        "pricing": _pricing(price),
        "proration": True,
        "proration_details": {"discount_amounts": []},
        "quantity": quantity or 0,
        "quantity_decimal": str(quantity or 0),
        "tax_rates": [],
        "test_clock": None,
    }


def item_line(state: State, sub: JsonDict, pending: JsonDict) -> JsonDict:
    """The invoice line of a pending proration item."""
    details = as_dict(as_dict(pending["parent"]).get("subscription_details"))
    price_id = str(as_dict(as_dict(pending["pricing"]).get("price_details")).get("price"))
    price = state.require("price", price_id)
    period = as_dict(pending["period"])
    line = build_line(
        state,
        sub,
        str(details["subscription_item"]),
        price,
        pending["quantity"] if isinstance(pending["quantity"], int) else None,
        (int(str(period["start"])), int(str(period["end"]))),
        int(str(pending["amount"])),
        str(pending["description"]),
        proration=True,
        invoice_item=str(pending["id"]),
    )
    return line


def build_line(
    state: State,
    sub: JsonDict,
    item_id: str,
    price: JsonDict,
    quantity: int | None,
    period: Period,
    amount: int,
    description: str,
    *,
    proration: bool = False,
    invoice_item: str | None = None,
) -> JsonDict:
    """An invoice line billing a subscription item over `period` (a proration when said)."""
    return {
        "id": state.new_id("line_item"),
        "object": "line_item",
        "amount": amount,
        "currency": price["currency"],
        "description": description,
        "discount_amounts": [],
        "discountable": not proration,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": mapping(sub.get("metadata")),
        "parent": {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": invoice_item,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": sub["id"],
                "subscription_item": item_id,
            },
            "type": "subscription_item_details",
        },
        "period": {"end": period[1], "start": period[0]},
        "pretax_credit_amounts": [],
        "pricing": _pricing(price),
        "quantity": quantity,
        "quantity_decimal": str(quantity) if quantity is not None else None,
        "subscription": sub["id"],
        "subtotal": amount,
        "taxes": [],
    }


def _pricing(price: JsonDict) -> JsonDict:
    return {
        "price_details": {"price": price["id"], "product": price["product"]},
        "type": "price_details",
        "unit_amount_decimal": price["unit_amount_decimal"],
    }


def live_discounts(state: State, sub: JsonDict, moment: int) -> list[JsonDict]:
    """The subscription's discounts that still apply at `moment` (their `end` not passed)."""
    found = (state.find("discount", str(d)) for d in _ids(sub.get("discounts")))
    return [d for d in found if d is not None and (d["end"] is None or int(str(d["end"])) > moment)]


def build(
    state: State,
    sub: JsonDict,
    lines: list[JsonDict],
    reason: str,
    period: Period,
    discounts: list[JsonDict],
    invoice_id: str | None = None,
) -> JsonDict:
    """A draft invoice of `sub` with `lines`, discounted and totalled (not yet stored)."""
    customer = state.require("customer", str(sub["customer"]))
    invoice_id = invoice_id or state.new_id("invoice")
    currency = str(sub["currency"])
    totals = apply_discounts(state, lines, discounts, currency)
    for line in lines:
        line["invoice"] = invoice_id
    subtotal = sum(int(str(line["amount"])) for line in lines)
    total = subtotal - sum(int(str(t["amount"])) for t in totals)
    balance = int(str(customer.get("balance") or 0))
    return {
        **_blank(state, customer, sub, invoice_id),
        "amount_due": max(total + balance, 0),
        "billing_reason": reason,
        "currency": currency,
        "discounts": [t["discount"] for t in totals],
        "ending_balance": None,
        "lines": {
            "object": "list",
            "data": lines,
            "has_more": False,
            "total_count": len(lines),
            "url": f"/v1/invoices/{invoice_id}/lines",
        },
        "period_end": period[1],
        "period_start": period[0],
        "starting_balance": balance,
        "subtotal": subtotal,
        "subtotal_excluding_tax": subtotal,
        "total": total,
        "total_discount_amounts": totals,
        "total_excluding_tax": total,
    }


def _blank(state: State, customer: JsonDict, sub: JsonDict, invoice_id: str) -> JsonDict:
    """The fields of a subscription invoice that do not depend on its amounts."""
    now = state.now()
    return {
        "id": invoice_id,
        "object": "invoice",
        "account_country": None,
        "account_name": None,
        "account_tax_ids": None,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_paid_off_stripe": None,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": False,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "collection_method": sub["collection_method"],
        "confirmation_secret": None,
        "created": now,
        "custom_fields": None,
        "customer": customer["id"],
        "customer_account": None,
        "customer_address": customer.get("address"),
        "customer_email": customer.get("email"),
        "customer_name": customer.get("name"),
        "customer_phone": customer.get("phone"),
        "customer_shipping": customer.get("shipping"),
        "customer_tax_exempt": customer.get("tax_exempt"),
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "due_date": None,
        "effective_at": None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": {
            "quote_details": None,
            "subscription_details": {
                "metadata": mapping(sub.get("metadata")),
                "subscription": sub["id"],
                "subscription_proration_date": None,
            },
            "type": "subscription_details",
        },
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "statement_descriptor": None,
        "status": "draft",
        "status_details": None,
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "test_clock": None,
        "threshold_reason": None,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
    }


def apply_discounts(
    state: State, lines: list[JsonDict], discounts: list[JsonDict], currency: str
) -> list[JsonDict]:
    """Apply `discounts` in order to `lines` (filling each line's `discount_amounts`);
    returns the invoice's `total_discount_amounts`."""
    left = {str(line["id"]): int(str(line["amount"])) for line in lines}
    totals: list[JsonDict] = []
    for discount in discounts:
        coupon = state.find("coupon", str(as_dict(discount["source"]).get("coupon")))
        if coupon is None or (coupon["amount_off"] is not None and coupon["currency"] != currency):
            continue
        eligible = [line for line in lines if _eligible(state, coupon, line)]
        shares = _shares(coupon, eligible, left)
        for line in eligible:
            share = shares[str(line["id"])]
            left[str(line["id"])] -= share
            amounts = line["discount_amounts"]
            assert isinstance(amounts, list)
            amounts.append({"amount": share, "discount": discount["id"]})
        totals.append({"amount": sum(shares.values()), "discount": discount["id"]})
    return totals


def _eligible(state: State, coupon: JsonDict, line: JsonDict) -> bool:
    """Whether a coupon may discount a line: a discountable line of one of its products."""
    if not line["discountable"]:
        return False
    products = as_dict(coupon.get("applies_to")).get("products")
    if not isinstance(products, list):
        return True
    details = as_dict(as_dict(line["pricing"]).get("price_details"))
    return details.get("product") in products


def _shares(coupon: JsonDict, lines: list[JsonDict], left: dict[str, int]) -> dict[str, int]:
    """What the coupon takes off each line, from what is left on it."""
    if coupon["percent_off"] is not None:
        rate = Decimal(str(coupon["percent_off"])) / 100
        return {str(line["id"]): minor_units(left[str(line["id"])] * rate) for line in lines}
    room = sum(max(left[str(line["id"])], 0) for line in lines)
    budget = min(int(str(coupon["amount_off"])), room)
    shares: dict[str, int] = {}
    given = 0
    for index, line in enumerate(lines):
        key = str(line["id"])
        if index == len(lines) - 1:
            shares[key] = budget - given
        else:
            shares[key] = minor_units(Decimal(budget * max(left[key], 0)) / room) if room else 0
            given += shares[key]
    return shares


def payment_method(state: State, sub: JsonDict) -> str | None:
    """The payment method a subscription charges: its own default, else its customer's."""
    if sub.get("default_payment_method"):
        return str(sub["default_payment_method"])
    customer = state.require("customer", str(sub["customer"]))
    settings = as_dict(customer["invoice_settings"])
    method = settings.get("default_payment_method") or customer.get("default_source")
    return str(method) if method else None


def issue(state: State, invoice: JsonDict, sub: JsonDict) -> JsonDict:
    """Store and finalize an invoice: number it, settle the customer's balance, and pay it if
    it can be paid now; it becomes the subscription's `latest_invoice`."""
    now = state.now()
    customer = state.require("customer", str(invoice["customer"]))
    sequence = int(str(customer.get("next_invoice_sequence") or 1))
    customer["next_invoice_sequence"] = sequence + 1
    net = int(str(invoice["total"])) + int(str(invoice["starting_balance"]))
    customer["balance"] = min(net, 0)
    invoice.update(
        number=f"{customer['invoice_prefix']}-{sequence:04d}",
        ending_balance=min(net, 0),
        effective_at=now,
        status="open",
        amount_remaining=invoice["amount_due"],
    )
    transitions = as_dict(invoice["status_transitions"])
    transitions["finalized_at"] = now
    invoice["status_transitions"] = transitions
    _collect(state, invoice, sub)
    state.add(invoice)
    _mark_items_billed(state, invoice)
    _consume_once_discounts(state, invoice, sub)
    sub["latest_invoice"] = invoice["id"]
    return invoice


def _collect(state: State, invoice: JsonDict, sub: JsonDict) -> None:
    """Pay the invoice when nothing is due or a payment method is on file; an invoice sent
    to the customer waits `days_until_due` days."""
    due = int(str(invoice["amount_due"]))
    if invoice["collection_method"] == "send_invoice" and due > 0:
        days = sub.get("days_until_due")
        invoice["due_date"] = state.now() + DAY * int(str(days or 0))
        return
    if due > 0 and payment_method(state, sub) is None:
        return
    mark_paid(state, invoice)


def mark_paid(state: State, invoice: JsonDict) -> None:
    """Record the invoice as paid in full."""
    due = int(str(invoice["amount_due"]))
    transitions = as_dict(invoice["status_transitions"])
    transitions["paid_at"] = state.now()
    invoice.update(
        status="paid",
        amount_paid=due,
        amount_remaining=0,
        attempted=due > 0,
        attempt_count=1 if due > 0 else 0,
        status_transitions=transitions,
    )


def _mark_items_billed(state: State, invoice: JsonDict) -> None:
    lines = as_dict(invoice["lines"]).get("data")
    for line in lines if isinstance(lines, list) else []:
        details = as_dict(as_dict(line["parent"]).get("subscription_item_details"))
        item_id = details.get("invoice_item")
        pending = state.find("invoiceitem", str(item_id)) if item_id else None
        if pending is not None:
            pending["invoice"] = invoice["id"]


def _consume_once_discounts(state: State, invoice: JsonDict, sub: JsonDict) -> None:
    """A `once` coupon's discount ends after the first invoice it took something off."""
    used = {
        str(t["discount"]) for t in _dicts(invoice["total_discount_amounts"]) if t["amount"] != 0
    }
    kept = []
    for discount_id in _ids(sub.get("discounts")):
        discount = state.find("discount", discount_id)
        coupon_id = as_dict(discount["source"]).get("coupon") if discount else None
        coupon = state.find("coupon", str(coupon_id)) if coupon_id else None
        if discount_id in used and coupon is not None and coupon["duration"] == "once":
            continue
        kept.append(discount_id)
    sub["discounts"] = kept


def pending_items(state: State, sub: JsonDict) -> list[JsonDict]:
    """The subscription's proration items not yet billed, oldest first."""
    return [
        item
        for item in state.tables["invoiceitem"].rows.values()
        if item["invoice"] is None
        and as_dict(as_dict(item["parent"]).get("subscription_details")).get("subscription")
        == sub["id"]
    ]


def has_paid_before(state: State, customer_id: str) -> bool:
    """Whether the customer already paid an invoice charging something (Stripe's test for a
    promotion code restricted to first-time transactions)."""
    return any(
        invoice["customer"] == customer_id and int(str(invoice["amount_paid"])) > 0
        for invoice in state.tables["invoice"].rows.values()
    )


def _ids(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _dicts(value: object) -> list[JsonDict]:
    return [as_dict(v) for v in value] if isinstance(value, list) else []


def view(state: State, invoice: JsonDict, expand: Expand) -> JsonDict:
    """An invoice; `customer`, `discounts`, `parent.subscription_details.subscription` and
    `lines.data.pricing.price_details.price` expand."""
    expand.check(("customer", "discounts", "lines", "parent"))
    out = dict(invoice)
    out["customer"] = reference(state, "customer", invoice["customer"], expand, "customer")
    out["discounts"] = [
        reference(state, "discount", d, expand, "discounts") for d in _ids(invoice["discounts"])
    ]
    out["parent"] = _parent(state, as_dict(invoice["parent"]), expand.sub("parent"))
    out["lines"] = _lines(state, as_dict(invoice["lines"]), expand.sub("lines"))
    return out


def _parent(state: State, parent: JsonDict, expand: Expand) -> JsonDict:
    expand.check(("subscription_details",))
    details = as_dict(parent.get("subscription_details"))
    inner = expand.sub("subscription_details")
    inner.check(("subscription",))
    details["subscription"] = reference(
        state, "subscription", details.get("subscription"), inner, "subscription"
    )
    return {**parent, "subscription_details": details}


def _lines(state: State, lines: JsonDict, expand: Expand) -> JsonDict:
    expand.check(("data",))
    inner = expand.sub("data")
    inner.check(("pricing",))
    pricing = inner.sub("pricing")
    pricing.check(("price_details",))
    details = pricing.sub("price_details")
    details.check(("price",))
    data = []
    for line in _dicts(lines.get("data")):
        priced = as_dict(line["pricing"])
        price_details = as_dict(priced.get("price_details"))
        price_details["price"] = reference(
            state, "price", price_details.get("price"), details, "price"
        )
        data.append({**line, "pricing": {**priced, "price_details": price_details}})
    return {**lines, "data": data}


def retrieve(call: Call) -> JsonDict:
    """GET /v1/invoices/{id}."""
    invoice = call.state.require("invoice", call.arg("id"))
    call.params.check_known(())
    return view(call.state, invoice, call.expand)


def list_invoices(call: Call) -> JsonDict:
    """GET /v1/invoices by `customer`, `subscription`, `status`, `collection_method`."""
    p = call.params
    p.check_known((*PAGING, "collection_method", "customer", "status", "subscription"))
    p.string("status", choices=STATUSES)
    subscription = p.string("subscription")
    matches = all_of(
        equal_filter(p, "customer"),
        equal_filter(p, "status"),
        equal_filter(p, "collection_method"),
        lambda invoice: subscription is None or _subscription_of(invoice) == subscription,
    )
    return list_response(call.state, "invoice", p, "/v1/invoices", call.expand, matches)


def _subscription_of(invoice: JsonDict) -> object:
    return as_dict(as_dict(invoice["parent"]).get("subscription_details")).get("subscription")


register("invoice", view)

ROUTES = [
    Route("GET", "/v1/invoices", list_invoices),
    Route("GET", "/v1/invoices/{id}", retrieve),
]
