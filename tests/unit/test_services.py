"""Services over in-memory adapters: the behaviour the routes rely on."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from chalicelib.adapters.dispatch import RecordingDispatcher
from chalicelib.adapters.identity import InMemoryIdentityProvider
from chalicelib.adapters.memory import InMemoryOrderRepository, InMemoryProductRepository, InMemoryUserRepository
from chalicelib.adapters.signing_keys import generate_signing_keys
from chalicelib.domain.catalog import Product
from chalicelib.domain.errors import ConflictError, DependencyUnavailableError, ForbiddenError
from chalicelib.domain.orders import OrderRequest, OrderStatus, parse_order_request
from chalicelib.domain.users import Principal, Registration, UserProfile
from chalicelib.services.catalog import CatalogService
from chalicelib.services.orders import OrderService
from chalicelib.services.tokens import TokenService
from chalicelib.services.users import UserService

pytestmark = pytest.mark.unit

BUYER = Principal("u1", "u1@example.com", ("user",))
ADMIN = Principal("a1", "a1@example.com", ("user", "admin"))
ADDRESS = {"name": "A", "line1": "1 Road", "city": "Town", "postal_code": "123", "country": "US"}


def order_request(quantity: int = 1) -> OrderRequest:
    return parse_order_request(
        {
            "items": [{"product_id": "p1", "quantity": quantity}],
            "shipping_address": ADDRESS,
            "payment_method": {"type": "card", "token": "tok_success"},
        }
    )


Shop = tuple[OrderService, InMemoryOrderRepository, RecordingDispatcher]


@pytest.fixture
def shop() -> Shop:
    products = InMemoryProductRepository()
    products.add(Product("p1", "Mug", "kitchen", Decimal("4.99"), 100))
    orders = InMemoryOrderRepository()
    dispatcher = RecordingDispatcher()
    return OrderService(products, orders, dispatcher), orders, dispatcher


def test_given_a_placed_order_then_the_customer_is_the_caller_and_it_is_dispatched_once(shop: Shop) -> None:
    service, _, dispatcher = shop
    placed = service.place(BUYER, order_request(3), correlation_id="req-1")
    assert placed.order.customer_id == "u1" and placed.order.total_amount == Decimal("14.97")
    assert placed.order.status == OrderStatus.PENDING and placed.order.correlation_id == "req-1"
    assert [o.order_id for o in dispatcher.orders] == [placed.order.order_id]


def test_given_the_queue_is_down_when_placing_then_503_and_a_replay_dispatches_the_stored_order(shop: Shop) -> None:
    service, orders, dispatcher = shop
    dispatcher.fail_next = 1
    with pytest.raises(DependencyUnavailableError):
        service.place(BUYER, order_request(), idempotency_key="k1")
    assert dispatcher.orders == []

    replay = service.place(BUYER, order_request(), idempotency_key="k1")
    assert replay.replayed is True
    assert [o.order_id for o in dispatcher.orders] == [replay.order.order_id]
    assert len(orders.list_for_customer("u1", 10, None).items) == 1  # nothing was lost, nothing doubled


def test_given_ten_concurrent_requests_with_one_key_then_exactly_one_order(shop: Shop) -> None:
    service, orders, _ = shop
    results: list[str] = []
    barrier = threading.Barrier(10)

    def place() -> None:
        barrier.wait()
        results.append(service.place(BUYER, order_request(), idempotency_key="same").order.order_id)

    threads = [threading.Thread(target=place) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(results) == 10 and len(set(results)) == 1
    assert len(orders.list_for_customer("u1", 100, None).items) == 1


def test_given_the_same_key_for_two_customers_then_two_orders(shop: Shop) -> None:
    service, _, _ = shop
    other = Principal("u2", "u2@example.com", ("user",))
    first = service.place(BUYER, order_request(), idempotency_key="k").order
    second = service.place(other, order_request(), idempotency_key="k").order
    assert first.order_id != second.order_id
    with pytest.raises(ConflictError):
        service.place(BUYER, order_request(2), idempotency_key="k")


class FailingUsers(InMemoryUserRepository):
    def add(self, user: UserProfile) -> None:
        raise RuntimeError("table unavailable")


def test_given_the_profile_cannot_be_stored_when_registering_then_the_credentials_are_removed_again() -> None:
    identity = InMemoryIdentityProvider()
    tokens = TokenService(generate_signing_keys(), "iss", "aud", 60)
    with pytest.raises(RuntimeError):
        UserService(identity, FailingUsers(), tokens).register(
            Registration("x@example.com", "Sup3r-secret", "X", False)
        )
    # The email is free again, so a retry can succeed.
    healthy = UserService(identity, InMemoryUserRepository(), tokens)
    assert healthy.register(Registration("x@example.com", "Sup3r-secret", "X", False)).email == "x@example.com"


def test_given_a_non_admin_when_changing_the_catalog_then_forbidden_before_validation() -> None:
    catalog = CatalogService(InMemoryProductRepository())
    with pytest.raises(ForbiddenError):
        catalog.create(BUYER, {"garbage": True})
    created = catalog.create(ADMIN, {"name": "Mug", "category": "kitchen", "price": Decimal("3.10"), "stock": 1})
    assert created.product_id.startswith("prod_") and created.price == Decimal("3.10")
