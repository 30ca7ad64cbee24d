"""Orders: what a customer asked for, priced from the catalog, and its lifecycle.

Lifecycle: ``PENDING`` -> ``PROCESSING`` -> ``COMPLETED`` | ``FAILED`` (a pending
order may also fail directly, e.g. when the workflow cannot start).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any, Mapping

from chalicelib.domain.catalog import Product
from chalicelib.domain.errors import FieldError, InvalidTransitionError, NotFoundError
from chalicelib.domain.money import CURRENCY, to_cents, to_json_number
from chalicelib.domain.validation import Fields

MAX_ITEMS = 50
MAX_QUANTITY = 100
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CARD_TOKEN = re.compile(r"^tok_[A-Za-z0-9_]{1,100}$")


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class FailureReason(StrEnum):
    VALIDATION_FAILED = "VALIDATION_FAILED"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    WORKFLOW_FAILED = "WORKFLOW_FAILED"


ALLOWED_TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.PROCESSING, OrderStatus.FAILED}),
    OrderStatus.PROCESSING: frozenset({OrderStatus.COMPLETED, OrderStatus.FAILED}),
    OrderStatus.COMPLETED: frozenset(),
    OrderStatus.FAILED: frozenset(),
}


@dataclass(frozen=True)
class RequestedItem:
    product_id: str
    quantity: int


@dataclass(frozen=True)
class ShippingAddress:
    name: str
    line1: str
    city: str
    postal_code: str
    country: str

    def to_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class OrderRequest:
    """A validated ``POST /orders`` body. It carries no prices and no customer."""

    items: tuple[RequestedItem, ...]
    shipping_address: ShippingAddress
    payment_token: str

    def fingerprint(self) -> str:
        """A stable hash of the request, to tell an idempotent replay from a reused key."""
        canonical = json.dumps(
            {
                "items": [[i.product_id, i.quantity] for i in self.items],
                "shipping_address": self.shipping_address.to_dict(),
                "payment_token": self.payment_token,
            },
            sort_keys=True,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class OrderLine:
    product_id: str
    name: str
    quantity: int
    unit_price: Decimal

    @property
    def subtotal(self) -> Decimal:
        return self.unit_price * self.quantity

    def to_dict(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "name": self.name,
            "quantity": self.quantity,
            "unit_price": to_json_number(self.unit_price),
        }


@dataclass(frozen=True)
class Order:
    order_id: str
    customer_id: str
    items: tuple[OrderLine, ...]
    shipping_address: ShippingAddress
    payment_token: str
    total_amount: Decimal
    created_at: str
    updated_at: str
    status: OrderStatus = OrderStatus.PENDING
    currency: str = CURRENCY
    failure_reason: FailureReason | None = None
    correlation_id: str = ""
    notifications: tuple[str, ...] = field(default_factory=tuple)

    def transition(self, status: OrderStatus, now: str, failure_reason: FailureReason | None = None) -> Order:
        """Move along the lifecycle; moving to the status it already has is a no-op."""
        if status == self.status:
            return self
        if status not in ALLOWED_TRANSITIONS[self.status]:
            raise InvalidTransitionError(f"order {self.order_id} cannot go from {self.status.value} to {status.value}")
        if status == OrderStatus.FAILED and failure_reason is None:
            raise ValueError("a failed order needs a failure_reason")
        return replace(self, status=status, updated_at=now, failure_reason=failure_reason)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "order_id": self.order_id,
            "customer_id": self.customer_id,
            "status": self.status.value,
            "items": [line.to_dict() for line in self.items],
            "total_amount": to_json_number(self.total_amount),
            "currency": self.currency,
            "shipping_address": self.shipping_address.to_dict(),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "notifications": list(self.notifications),
        }
        if self.failure_reason is not None:
            body["failure_reason"] = self.failure_reason.value
        return body


def parse_order_request(data: Any) -> OrderRequest:
    """Validate a ``POST /orders`` body, listing every invalid field at once."""
    f = Fields(data)
    f.reject_unknown({"items", "shipping_address", "payment_method"})
    items: list[RequestedItem] = []
    raw_items = f.array("items", max_items=MAX_ITEMS)
    seen: set[str] = set()
    for index, raw in enumerate(raw_items or []):
        item = Fields(raw, prefix=f"items[{index}].", errors=f.errors)
        item.reject_unknown({"product_id", "quantity"})
        product_id = item.text("product_id", max_len=64)
        quantity = item.integer("quantity", minimum=1, maximum=MAX_QUANTITY)
        if product_id is not None and product_id in seen:
            item.fail("product_id", "appears more than once; put the total in one quantity")
        elif product_id is not None and quantity is not None:
            seen.add(product_id)
            items.append(RequestedItem(product_id, quantity))

    address = None
    addr = f.obj("shipping_address")
    if addr is not None:
        addr.reject_unknown({"name", "line1", "city", "postal_code", "country"})
        values = {
            "name": addr.text("name", max_len=100),
            "line1": addr.text("line1", max_len=200),
            "city": addr.text("city", max_len=100),
            "postal_code": addr.text("postal_code", max_len=20),
            "country": addr.text("country", max_len=2),
        }
        if values["country"] is not None:
            values["country"] = values["country"].upper()
            if not _COUNTRY.match(values["country"]):
                addr.fail("country", "must be an ISO 3166-1 alpha-2 code such as US")
                values["country"] = None
        if all(v is not None for v in values.values()):
            address = ShippingAddress(**values)  # type: ignore[arg-type]

    token = None
    payment = f.obj("payment_method")
    if payment is not None:
        payment.reject_unknown({"type", "token"})
        kind = payment.text("type", max_len=20)
        if kind is not None and kind != "card":
            payment.fail("type", 'must be "card"')
        token = payment.text("token", max_len=104)
        if token is not None and not _CARD_TOKEN.match(token):
            payment.fail("token", "must be a card token such as tok_success")
            token = None

    f.raise_if_any("The order is invalid")
    assert address is not None and token is not None
    return OrderRequest(tuple(items), address, token)


def price_items(
    items: tuple[RequestedItem, ...], catalog: Mapping[str, Product]
) -> tuple[tuple[OrderLine, ...], Decimal]:
    """Price each line from the catalog. The client never sets a price.

    Raises ``NotFoundError`` naming every product that does not exist.
    """
    missing = [
        FieldError(f"items[{i}].product_id", f"product {item.product_id} does not exist")
        for i, item in enumerate(items)
        if item.product_id not in catalog
    ]
    if missing:
        raise NotFoundError("Unknown product in order", missing)
    lines = tuple(
        OrderLine(item.product_id, catalog[item.product_id].name, item.quantity, catalog[item.product_id].price)
        for item in items
    )
    return lines, to_cents(sum((line.subtotal for line in lines), Decimal("0")))
