"""In-memory twins of the pipeline's DynamoDB adapters: order progress and inventory holds.

They change the same in-memory repositories the API reads (so ``GET /orders`` shows
the workflow's progress in the in-memory mode), under the repositories' own locks:
a lock is the in-memory equivalent of DynamoDB's condition expressions.
"""

from __future__ import annotations

import threading
from dataclasses import replace

from chalicelib.adapters.memory import InMemoryOrderRepository, InMemoryProductRepository
from chalicelib.domain.ids import Clock, iso, utc_now
from chalicelib.domain.orders import FailureReason, Order, OrderStatus
from chalicelib.domain.pipeline import HoldStatus, InsufficientInventory, OrderNotFoundError


class InMemoryOrderProgress:
    def __init__(self, orders: InMemoryOrderRepository, clock: Clock = utc_now) -> None:
        # The repository has no update method; this twin shares its dict and lock on purpose.
        self._repo = orders
        self._clock = clock

    def get(self, order_id: str) -> Order | None:
        return self._repo.get(order_id)

    def advance(self, order_id: str, status: OrderStatus, failure_reason: FailureReason | None = None) -> Order:
        with self._repo._lock:
            order = self._repo._orders.get(order_id)
            if order is None:
                raise OrderNotFoundError(f"Order {order_id} not found")
            moved = order.transition(status, iso(self._clock()), failure_reason)
            self._repo._orders[order_id] = moved
            return moved

    def record_notification(self, order_id: str, kind: str) -> bool:
        with self._repo._lock:
            order = self._repo._orders.get(order_id)
            if order is None:
                raise OrderNotFoundError(f"Order {order_id} not found")
            if kind in order.notifications:
                return False
            self._repo._orders[order_id] = replace(order, notifications=(*order.notifications, kind))
            return True


class InMemoryInventory:
    def __init__(self, products: InMemoryProductRepository) -> None:
        self._products = products
        self._holds: dict[str, HoldStatus] = {}
        self._lock = threading.Lock()

    def hold(self, order: Order) -> HoldStatus:
        with self._lock, self._products._lock:
            existing = self._holds.get(order.order_id)
            if existing is not None:
                return existing
            stock = self._products._products
            short = [
                line.product_id
                for line in order.items
                if line.product_id not in stock or stock[line.product_id].stock < line.quantity
            ]
            if short:
                raise InsufficientInventory(f"Not enough stock for {', '.join(short)}")
            for line in order.items:
                product = stock[line.product_id]
                stock[line.product_id] = replace(product, stock=product.stock - line.quantity)
            self._holds[order.order_id] = HoldStatus.HELD
            return HoldStatus.HELD

    def commit(self, order_id: str) -> HoldStatus:
        with self._lock:
            if self._holds.get(order_id) not in (HoldStatus.HELD, HoldStatus.COMMITTED):
                raise InsufficientInventory(f"Order {order_id} has no stock on hold to commit")
            self._holds[order_id] = HoldStatus.COMMITTED
            return HoldStatus.COMMITTED

    def release(self, order: Order, include_committed: bool = False) -> HoldStatus | None:
        releasable = {HoldStatus.HELD, HoldStatus.COMMITTED} if include_committed else {HoldStatus.HELD}
        with self._lock, self._products._lock:
            status = self._holds.get(order.order_id)
            if status is None:
                # Nothing held yet: mark it released, so a hold still in flight is refused.
                self._holds[order.order_id] = HoldStatus.RELEASED
                return HoldStatus.RELEASED
            if status not in releasable:
                return status
            stock = self._products._products
            for line in order.items:
                product = stock[line.product_id]
                stock[line.product_id] = replace(product, stock=product.stock + line.quantity)
            self._holds[order.order_id] = HoldStatus.RELEASED
            return HoldStatus.RELEASED

    def hold_status(self, order_id: str) -> HoldStatus | None:
        with self._lock:
            return self._holds.get(order_id)

    def stock(self, product_id: str) -> int | None:
        product = self._products.get(product_id)
        return None if product is None else product.stock
