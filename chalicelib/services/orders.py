"""Placing and reading orders."""

from __future__ import annotations

import time
from dataclasses import dataclass

from chalicelib.domain.errors import ConflictError, NotFoundError
from chalicelib.domain.ids import Clock, IdFactory, iso, new_id, utc_now
from chalicelib.domain.orders import Order, OrderRequest, OrderStatus, price_items
from chalicelib.domain.ports import (
    IdempotencyKeyTakenError,
    IdempotencyRecord,
    OrderDispatcher,
    OrderRepository,
    Page,
    ProductRepository,
)
from chalicelib.domain.users import Principal

IDEMPOTENCY_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    replayed: bool


class OrderService:
    def __init__(
        self,
        products: ProductRepository,
        orders: OrderRepository,
        dispatcher: OrderDispatcher,
        clock: Clock = utc_now,
        ids: IdFactory = new_id,
    ) -> None:
        self._products = products
        self._orders = orders
        self._dispatcher = dispatcher
        self._clock = clock
        self._ids = ids

    def place(
        self,
        caller: Principal,
        request: OrderRequest,
        idempotency_key: str | None = None,
        correlation_id: str = "",
    ) -> PlacedOrder:
        """Price the order from the catalog, store it, then hand it to the pipeline.

        The customer is the caller; prices come from the catalog. With an
        ``idempotency_key``, a replay of the same body returns the first order
        (and re-queues it if it is still ``PENDING``, which downstream ignores
        when already started), while the same key with another body is a 409.
        """
        record_key = f"{caller.user_id}#{idempotency_key}" if idempotency_key else None
        fingerprint = request.fingerprint()
        if record_key is not None:
            replay = self._replay(record_key, fingerprint)
            if replay is not None:
                return replay

        lines, total = price_items(request.items, self._products.get_many([i.product_id for i in request.items]))
        now = iso(self._clock())
        order_id = self._ids("ord")
        order = Order(
            order_id=order_id,
            customer_id=caller.user_id,
            items=lines,
            shipping_address=request.shipping_address,
            payment_token=request.payment_token,
            total_amount=total,
            created_at=now,
            updated_at=now,
            correlation_id=correlation_id or order_id,
        )
        record = None
        if record_key is not None:
            record = IdempotencyRecord(record_key, fingerprint, order_id, int(time.time()) + IDEMPOTENCY_TTL_SECONDS)
        try:
            self._orders.add(order, record)
        except IdempotencyKeyTakenError:
            # A concurrent request with the same key won the race; answer as a replay.
            assert record_key is not None
            replay = self._replay(record_key, fingerprint)
            if replay is None:  # pragma: no cover - the winner's record exists by construction
                raise ConflictError("Idempotency key is in use; retry") from None
            return replay
        self._dispatcher.order_placed(order)
        return PlacedOrder(order, replayed=False)

    def _replay(self, record_key: str, fingerprint: str) -> PlacedOrder | None:
        record = self._orders.get_idempotency(record_key)
        if record is None:
            return None
        if record.fingerprint != fingerprint:
            raise ConflictError("This Idempotency-Key was already used with a different request body")
        order = self._orders.get(record.order_id)
        if order is None:  # pragma: no cover - written in the same transaction as the record
            raise NotFoundError(f"Order {record.order_id} not found")
        if order.status == OrderStatus.PENDING:
            # The first attempt may have stored the order but failed to queue it.
            self._dispatcher.order_placed(order)
        return PlacedOrder(order, replayed=True)

    def get(self, caller: Principal, order_id: str) -> Order:
        """The owner or an admin may read an order; others get 404 (existence is not revealed)."""
        order = self._orders.get(order_id)
        if order is None or (order.customer_id != caller.user_id and not caller.is_admin):
            raise NotFoundError(f"Order {order_id} not found")
        return order

    def list_mine(self, caller: Principal, limit: int, next_token: str | None) -> Page[Order]:
        """The caller's orders, newest first."""
        return self._orders.list_for_customer(caller.user_id, limit, next_token)
