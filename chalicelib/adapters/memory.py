"""In-memory repositories: the fakes behind unit tests, the in-memory app mode and the benchmark.

They keep the DynamoDB adapters' observable behaviour (same errors, same page-token
format and validation, same ordering guarantees), which
``tests/integration/test_repository_contracts.py`` checks against both. Each
repository guards its state with one lock, because the app and the benchmark call
them from several threads. No boto3 here, so the in-memory mode runs without AWS.

The page-token codec lives here rather than in the DynamoDB module so that both
adapters share it without this module importing boto3.
"""

from __future__ import annotations

import copy
import threading
import time
from bisect import bisect_left, bisect_right, insort
from typing import Sequence

from chalicelib.adapters.paging import (
    ALL_PRODUCTS_KEY,
    CATEGORY_PRODUCTS_KEY,
    CUSTOMER_ORDERS_KEY,
    Clock,
    check_limit,
    decode_page_token,
    encode_page_token,
    is_expired,
)
from chalicelib.domain.catalog import Product, ProductChanges
from chalicelib.domain.errors import ConflictError, NotFoundError
from chalicelib.domain.orders import Order
from chalicelib.domain.ports import IdempotencyKeyTakenError, IdempotencyRecord, Page
from chalicelib.domain.users import UserProfile


class InMemoryUserRepository:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, UserProfile] = {}
        self._ids_by_email: dict[str, str] = {}

    def add(self, user: UserProfile) -> None:
        with self._lock:
            if user.user_id in self._users:
                raise ConflictError(f"User {user.user_id} already exists")
            if user.email in self._ids_by_email:
                raise ConflictError("An account with this email already exists")
            self._store(user)

    def save(self, user: UserProfile) -> None:
        with self._lock:
            old = self._users.get(user.user_id)
            if old is not None and self._ids_by_email.get(old.email) == old.user_id:
                del self._ids_by_email[old.email]
            self._store(user)

    def get(self, user_id: str) -> UserProfile | None:
        with self._lock:
            return _copy_user(self._users.get(user_id))

    def get_by_email(self, email: str) -> UserProfile | None:
        with self._lock:
            user_id = self._ids_by_email.get(email)
            return _copy_user(self._users.get(user_id)) if user_id is not None else None

    def _store(self, user: UserProfile) -> None:
        self._users[user.user_id] = copy.deepcopy(user)
        self._ids_by_email[user.email] = user.user_id


def _copy_user(user: UserProfile | None) -> UserProfile | None:
    # ``preferences`` is a mutable dict: callers must not edit the stored profile through it.
    return copy.deepcopy(user)


class InMemoryProductRepository:
    """Products listed in ``product_id`` order, from sorted id lists kept up to date on write."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._products: dict[str, Product] = {}
        self._ids: list[str] = []
        self._ids_by_category: dict[str, list[str]] = {}

    def add(self, product: Product) -> None:
        with self._lock:
            if product.product_id in self._products:
                raise ConflictError(f"Product {product.product_id} already exists")
            self._products[product.product_id] = product
            insort(self._ids, product.product_id)
            insort(self._ids_by_category.setdefault(product.category, []), product.product_id)

    def update(self, product_id: str, changes: ProductChanges, now: str) -> Product:
        with self._lock:
            old = self._products.get(product_id)
            if old is None:
                raise NotFoundError(f"Product {product_id} not found")
            product = changes.apply(old, now)
            if old.category != product.category:
                self._ids_by_category[old.category].remove(product.product_id)
                insort(self._ids_by_category.setdefault(product.category, []), product.product_id)
            self._products[product.product_id] = product
            return product

    def get(self, product_id: str) -> Product | None:
        with self._lock:
            return self._products.get(product_id)

    def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        with self._lock:
            return {pid: self._products[pid] for pid in product_ids if pid in self._products}

    def list(self, category: str | None, limit: int, next_token: str | None) -> Page[Product]:
        check_limit(limit)
        fields = ALL_PRODUCTS_KEY if category is None else CATEGORY_PRODUCTS_KEY
        expected = {} if category is None else {"category": category}
        after = decode_page_token(next_token, fields, expected)["product_id"] if next_token is not None else None
        with self._lock:
            ids = self._ids if category is None else self._ids_by_category.get(category, [])
            begin = bisect_right(ids, after) if after is not None else 0
            chosen = [self._products[pid] for pid in ids[begin : begin + limit + 1]]
        items = chosen[:limit]
        token = None
        if len(chosen) > limit:
            last = items[-1]
            key = (
                {"product_id": last.product_id}
                if category is None
                else {"product_id": last.product_id, "category": last.category}
            )
            token = encode_page_token(key)
        return Page(items, token)


class InMemoryOrderRepository:
    """Orders and idempotency records; a customer's orders are newest first (created_at, then order_id)."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._orders: dict[str, Order] = {}
        self._keys_by_customer: dict[str, list[tuple[str, str]]] = {}  # ascending (created_at, order_id)
        self._idempotency: dict[str, IdempotencyRecord] = {}

    def add(self, order: Order, idempotency: IdempotencyRecord | None = None) -> None:
        with self._lock:
            if idempotency is not None:
                held = self._idempotency.get(idempotency.key)
                if held is not None and not is_expired(held.expires_at, self._clock()):
                    raise IdempotencyKeyTakenError(idempotency.key)
            if order.order_id in self._orders:
                raise ConflictError(f"Order {order.order_id} already exists")
            self._orders[order.order_id] = order
            insort(self._keys_by_customer.setdefault(order.customer_id, []), (order.created_at, order.order_id))
            if idempotency is not None:
                self._idempotency[idempotency.key] = idempotency

    def get(self, order_id: str) -> Order | None:
        with self._lock:
            return self._orders.get(order_id)

    def list_for_customer(self, customer_id: str, limit: int, next_token: str | None) -> Page[Order]:
        check_limit(limit)
        before = None
        if next_token is not None:
            start = decode_page_token(next_token, CUSTOMER_ORDERS_KEY, {"customer_id": customer_id})
            before = (start["created_at"], start["order_id"])
        with self._lock:
            keys = self._keys_by_customer.get(customer_id, [])
            stop = len(keys) if before is None else bisect_left(keys, before)
            chosen = [self._orders[order_id] for _, order_id in reversed(keys[max(0, stop - limit - 1) : stop])]
        items = chosen[:limit]
        token = None
        if len(chosen) > limit:
            last = items[-1]
            token = encode_page_token(
                {"order_id": last.order_id, "customer_id": last.customer_id, "created_at": last.created_at}
            )
        return Page(items, token)

    def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        with self._lock:
            record = self._idempotency.get(key)
        if record is None or is_expired(record.expires_at, self._clock()):
            return None
        return record
