"""The order pipeline on the running local stage, through HTTP only: every path ends where it should.

Each test places real orders through the API and polls ``GET /orders/{id}`` until the
saga reaches a terminal status, then checks stock and notifications through the API.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import RunningStage
from tests.e2e.support import StageShop

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def shop(local_stage: RunningStage) -> StageShop:
    return StageShop(local_stage)


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
    shop: StageShop, token: str, status: str, reason: str | None
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


def test_given_too_little_stock_when_ordering_then_failed_out_of_stock_and_stock_untouched(shop: StageShop) -> None:
    product = shop.product(stock=1)
    order = shop.settle(shop.order(product, quantity=2))
    assert (order["status"], order["failure_reason"]) == ("FAILED", "OUT_OF_STOCK")
    assert shop.stock(product) == 1


def test_given_an_order_over_the_risk_limit_when_validated_then_failed_validation(shop: StageShop) -> None:
    product = shop.product(price=9999.0, stock=5)
    order = shop.settle(shop.order(product, quantity=2))
    assert (order["status"], order["failure_reason"]) == ("FAILED", "VALIDATION_FAILED")
    assert shop.stock(product) == 5


def test_given_stock_s_and_n_concurrent_orders_then_exactly_s_complete_and_stock_ends_at_zero(shop: StageShop) -> None:
    stock, buyers = 3, 7
    product = shop.product(stock=stock)
    with ThreadPoolExecutor(max_workers=buyers) as pool:
        order_ids = list(pool.map(lambda _: shop.order(product), range(buyers)))
    outcomes = [shop.settle(order_id, timeout=60) for order_id in order_ids]
    statuses = sorted((o["status"], o.get("failure_reason")) for o in outcomes)
    assert statuses.count(("COMPLETED", None)) == stock
    assert statuses.count(("FAILED", "OUT_OF_STOCK")) == buyers - stock
    assert shop.stock(product) == 0
