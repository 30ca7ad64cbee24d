"""Pending payments, outside the workflow: wait, re-check, resume, or give up.

The Express workflow runs for seconds and at most five minutes, so it cannot hold the
gateway's 300 s wait. When the gateway answers pending, the workflow's ``AwaitPayment`` task
(``await_payment``) schedules a delayed re-check and the execution ends; the order stays
``PROCESSING`` with its hold. After ``PAYMENT_WAIT_SECONDS`` the re-check consumer
(``resume``, called by the entry layer, ``entrypoints/pipeline.py``) starts the workflow again
*at the status check* (``resume: "payment_check"``),
with the round in its input. Another pending answer schedules the next round, up to
``PAYMENT_CHECK_ROUNDS``; then ``AwaitPayment`` raises ``PaymentPendingTooLong``, which the
state machine routes to ``PaymentFailed``: the pending payment is voided, the hold released,
the order ``FAILED`` with ``PAYMENT_FAILED``.

Both halves are safe to run twice. Scheduling twice sends two messages for one round; the
consumer claims each round once (``PaymentRecheckQueue.claim``), so the copy starts nothing.
A round's status check counts once at the gateway however often it is asked.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from chalicelib.domain.errors import DomainError
from chalicelib.domain.orders import OrderStatus
from chalicelib.domain.pipeline import (
    PAYMENT_CHECK_ROUNDS,
    OrderNotFoundError,
    PaymentPendingTooLong,
    execution_input,
    execution_name,
)
from chalicelib.domain.ports import OrderProgress, PaymentRecheckQueue, WorkflowEngine
from chalicelib.observability.logs import annotate

if TYPE_CHECKING:
    from chalicelib.services.watchdog import DeadlineKeeper

log = logging.getLogger(__name__)


class PaymentRechecks:
    def __init__(
        self,
        progress: OrderProgress,
        queue: PaymentRecheckQueue,
        workflow: WorkflowEngine,
        wait_seconds: int,
        give_up: Callable[[str], Any],
        max_rounds: int = PAYMENT_CHECK_ROUNDS,
        deadlines: DeadlineKeeper | None = None,
    ) -> None:
        self._deadlines = deadlines
        self._progress = progress
        self._queue = queue
        self._workflow = workflow
        self._wait_seconds = wait_seconds
        self._give_up_order = give_up
        self._max_rounds = max_rounds

    def await_payment(self, order_id: str, round: int) -> dict[str, Any]:
        """The ``AwaitPayment`` task: schedule round ``round + 1``, or give up after the last round.

        Example: ``await_payment("ord_1", 0)`` -> ``{"next_round": 1, "in_seconds": 300}``.
        """
        if round >= self._max_rounds:
            raise PaymentPendingTooLong(f"Order {order_id}: payment still pending after {round} status checks")
        if self._deadlines is not None:  # first: the order is watched before the round can be lost
            self._deadlines.payment_round_scheduled(order_id, self._wait_seconds)
        self._queue.schedule(order_id, round + 1, self._wait_seconds)
        log.info("order %s: payment pending; status check %d in %d s", order_id, round + 1, self._wait_seconds)
        return {"next_round": round + 1, "in_seconds": self._wait_seconds}

    def resume(self, order_id: str, round: int, message_id: str) -> bool:
        """Start the workflow at the status check; ``False`` for a finished order or a duplicate delivery."""
        order = self._progress.get(order_id)
        if order is None:
            raise OrderNotFoundError(f"Order {order_id} not found")
        annotate(order_id=order_id, correlation_id=order.correlation_id or order_id)
        if order.status != OrderStatus.PROCESSING:
            log.info("order %s is %s: re-check %d has nothing to do", order_id, order.status.value, round)
            return False
        if not self._queue.claim(order_id, round, message_id):
            log.info("order %s: re-check %d was delivered before; duplicate ignored", order_id, round)
            return False
        if self._deadlines is not None:
            self._deadlines.execution_started(order_id)
        payload = execution_input(order_id, order.correlation_id or order_id, self._wait_seconds, round)
        return self._workflow.start(execution_name(order_id, round), payload)

    def give_up(self, order_id: str) -> None:
        """A re-check dead-lettered for good must not leave stock held for an unpaid order."""
        try:
            self._give_up_order(order_id)
        except DomainError as why:
            log.info("dead-lettered re-check of order %s changed no order: %r", order_id, why)
