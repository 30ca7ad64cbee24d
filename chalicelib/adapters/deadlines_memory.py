"""The in-memory twin of ``DynamoOrderDeadlines``: deadlines beside the in-memory orders.

It shares the order repository's dict and lock (as ``InMemoryOrderProgress`` does), so a claim
and a workflow step racing on one order are ordered as DynamoDB's conditions order them. A
finished order is never overdue, as an order the workflow finished leaves the real index.
"""

from __future__ import annotations

from chalicelib.adapters.memory import InMemoryOrderRepository
from chalicelib.domain.deadlines import OverdueOrder
from chalicelib.domain.ids import Clock, iso, utc_now
from chalicelib.domain.orders import FailureReason, OrderStatus


class InMemoryOrderDeadlines:
    def __init__(self, orders: InMemoryOrderRepository, clock: Clock = utc_now) -> None:
        self._repo = orders
        self._clock = clock
        self._deadlines: dict[str, int] = {}
        self._owed: set[str] = set()  # claimed, compensation not finished

    def _status(self, order_id: str) -> OrderStatus | None:
        order = self._repo._orders.get(order_id)
        return None if order is None else order.status

    def deadline_of(self, order_id: str) -> int | None:
        with self._repo._lock:
            return self._deadlines.get(order_id)

    def extend(self, order_id: str, deadline: int) -> bool:
        with self._repo._lock:
            later = self._deadlines.get(order_id, deadline - 1) >= deadline
            if self._status(order_id) != OrderStatus.PROCESSING or later:
                return False
            self._deadlines[order_id] = deadline
            return True

    def overdue(self, now: int, limit: int) -> list[OverdueOrder]:
        with self._repo._lock:
            late = [
                OverdueOrder(order_id, OrderStatus.PROCESSING.value, deadline)
                for order_id, deadline in sorted(self._deadlines.items(), key=lambda item: item[1])
                if deadline <= now and order_id not in self._owed and self._status(order_id) == OrderStatus.PROCESSING
            ]
            owed = [OverdueOrder(o, OrderStatus.FAILED.value, self._deadlines[o]) for o in sorted(self._owed)]
            return (late + owed)[:limit]

    def claim(self, order_id: str, now: int) -> bool:
        with self._repo._lock:
            order = self._repo._orders.get(order_id)
            deadline = self._deadlines.get(order_id)
            if order is None or order.status != OrderStatus.PROCESSING or deadline is None or deadline > now:
                return False
            self._repo._orders[order_id] = order.transition(
                OrderStatus.FAILED, iso(self._clock()), FailureReason.WORKFLOW_FAILED
            )
            self._owed.add(order_id)
            return True

    def settle(self, order_id: str) -> None:
        with self._repo._lock:
            self._owed.discard(order_id)
            self._deadlines.pop(order_id, None)
