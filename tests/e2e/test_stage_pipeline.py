"""The order pipeline on the running local stage, through HTTP only: every path ends where it should.

Each test places real orders through the API and polls ``GET /orders/{id}`` until the
saga reaches a terminal status, then checks stock and notifications through the API.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningStage

pytestmark = pytest.mark.e2e

TERMINAL = {"COMPLETED", "FAILED"}
ADDRESS = {"name": "Ada", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


class Shop:
    def __init__(self, stage: RunningStage) -> None:
        self.http = httpx.Client(base_url=stage.api_url, timeout=15)
        self.admin = self._login(stage.admin_email, stage.admin_password)
        email = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
        created = self.http.post("/users", json={"email": email, "password": "Sup3r-secret", "name": "Buyer"})
        assert created.status_code == 201, created.text
        self.buyer = self._login(email, "Sup3r-secret")

    def _login(self, email: str, password: str) -> dict[str, str]:
        answer = self.http.post("/auth/login", json={"email": email, "password": password})
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def product(self, price: float = 10.0, stock: int = 10) -> str:
        body = {"name": f"E2E {uuid.uuid4().hex[:6]}", "category": "e2e", "price": price, "stock": stock}
        answer = self.http.post("/products", json=body, headers=self.admin)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["product_id"])

    def stock(self, product_id: str) -> int:
        return int(self.http.get(f"/products/{product_id}").json()["stock"])

    def order(self, product_id: str, quantity: int = 1, token: str = "tok_success") -> str:
        body = {
            "items": [{"product_id": product_id, "quantity": quantity}],
            "shipping_address": ADDRESS,
            "payment_method": {"type": "card", "token": token},
        }
        answer = self.http.post("/orders", json=body, headers=self.buyer)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["order_id"])

    def settle(self, order_id: str, timeout: float = 45.0) -> dict[str, Any]:
        """Poll until the order is COMPLETED or FAILED (bounded)."""
        deadline = time.monotonic() + timeout
        order: dict[str, Any] = {}
        while time.monotonic() < deadline:
            order = self.http.get(f"/orders/{order_id}", headers=self.buyer).json()
            if order.get("status") in TERMINAL:
                return order
            time.sleep(0.3)
        raise AssertionError(f"order {order_id} still {order.get('status')} after {timeout} s")


@pytest.fixture(scope="module")
def shop(local_stage: RunningStage) -> Shop:
    return Shop(local_stage)


@pytest.mark.parametrize(
    ("token", "status", "reason"),
    [
        ("tok_success", "COMPLETED", None),
        ("tok_pending", "COMPLETED", None),  # one re-check round, outside the workflow
        ("tok_pending_3", "COMPLETED", None),  # three rounds
        ("tok_pending_99", "FAILED", "PAYMENT_FAILED"),  # never settles: the rounds run out, the hold is released
        ("tok_gateway_timeout", "COMPLETED", None),
        ("tok_declined", "FAILED", "PAYMENT_FAILED"),
    ],
)
def test_given_a_card_token_when_ordering_then_the_saga_ends_where_it_should(
    shop: Shop, token: str, status: str, reason: str | None
) -> None:
    product = shop.product(stock=5)
    order = shop.settle(shop.order(product, quantity=2, token=token))
    assert order["status"] == status and order.get("failure_reason") == reason
    # Stock is consistent: taken for a completed order, returned for a failed one.
    assert shop.stock(product) == (3 if status == "COMPLETED" else 5)
    if status == "COMPLETED":
        deadline = time.monotonic() + 15
        while "order_confirmation" not in order["notifications"] and time.monotonic() < deadline:
            time.sleep(0.3)
            order = shop.http.get(f"/orders/{order['order_id']}", headers=shop.buyer).json()
        assert "order_confirmation" in order["notifications"]


def test_given_too_little_stock_when_ordering_then_failed_out_of_stock_and_stock_untouched(shop: Shop) -> None:
    product = shop.product(stock=1)
    order = shop.settle(shop.order(product, quantity=2))
    assert (order["status"], order["failure_reason"]) == ("FAILED", "OUT_OF_STOCK")
    assert shop.stock(product) == 1


def test_given_an_order_over_the_risk_limit_when_validated_then_failed_validation(shop: Shop) -> None:
    product = shop.product(price=9999.0, stock=5)
    order = shop.settle(shop.order(product, quantity=2))
    assert (order["status"], order["failure_reason"]) == ("FAILED", "VALIDATION_FAILED")
    assert shop.stock(product) == 5


def test_given_stock_s_and_n_concurrent_orders_then_exactly_s_complete_and_stock_ends_at_zero(shop: Shop) -> None:
    stock, buyers = 3, 7
    product = shop.product(stock=stock)
    with ThreadPoolExecutor(max_workers=buyers) as pool:
        order_ids = list(pool.map(lambda _: shop.order(product), range(buyers)))
    outcomes = [shop.settle(order_id, timeout=60) for order_id in order_ids]
    statuses = sorted((o["status"], o.get("failure_reason")) for o in outcomes)
    assert statuses.count(("COMPLETED", None)) == stock
    assert statuses.count(("FAILED", "OUT_OF_STOCK")) == buyers - stock
    assert shop.stock(product) == 0
