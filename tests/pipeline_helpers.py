"""Shared by the pipeline's unit and integration tests: a shop with products and placed orders."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from chalicelib.bootstrap import Container
from chalicelib.domain.orders import Order, parse_order_request
from chalicelib.domain.users import Principal

BUYER = Principal("u_buyer", "buyer@example.com", ("user",))
ADMIN = Principal("u_admin", "admin@example.com", ("user", "admin"))
ADDRESS = {"name": "Ada", "line1": "1 Road", "city": "London", "postal_code": "N1", "country": "GB"}


def add_product(container: Container, stock: int, price: str = "12.50", name: str = "Mug") -> str:
    data = {"name": name, "category": "kitchen", "price": Decimal(price), "stock": stock}
    return container.catalog.create(ADMIN, data).product_id


def order_body(container: Container, token: str = "tok_success") -> dict[str, Any]:
    """A valid ``POST /orders`` body for one unit of a new product with stock 5."""
    product = add_product(container, stock=5)
    return {
        "items": [{"product_id": product, "quantity": 1}],
        "shipping_address": ADDRESS,
        "payment_method": {"type": "card", "token": token},
    }


def place(container: Container, *lines: tuple[str, int], token: str = "tok_success") -> Order:
    body = {
        "items": [{"product_id": pid, "quantity": qty} for pid, qty in lines],
        "shipping_address": ADDRESS,
        "payment_method": {"type": "card", "token": token},
    }
    return container.orders.place(BUYER, parse_order_request(body)).order


def stock(container: Container, product_id: str) -> int:
    found = container.inventory.stock(product_id)
    assert found is not None
    return found
