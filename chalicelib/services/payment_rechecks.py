"""Pending payments, outside the workflow: wait, re-check, resume, or give up.

The Express workflow runs for seconds and at most five minutes, so it cannot hold the
gateway's 300 s wait. When the gateway answers pending, the workflow's ``AwaitPayment`` task
(``await_payment``) schedules a delayed re-check and the execution ends; the order stays
``PROCESSING`` with its hold. After ``PAYMENT_WAIT_SECONDS`` the re-check consumer
(``resume``) starts the workflow again *at the status check* (``resume: "payment_check"``),
with the round in its input. Another pending answer schedules the next round, up to
``PAYMENT_CHECK_ROUNDS``; then ``AwaitPayment`` raises ``PaymentPendingTooLong``, which the
state machine routes to ``PaymentFailed``: the pending payment is voided, the hold released,
the order ``FAILED`` with ``PAYMENT_FAILED``.

Both halves are safe to run twice. Scheduling twice sends two messages for one round; the
consumer claims each round once (``PaymentRecheckQueue.claim``), so the copy starts nothing.
A round's status check counts once at the gateway however often it is asked.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Sequence

from chalicelib.domain.errors import DomainError, invalid
from chalicelib.domain.orders import OrderStatus
from chalicelib.domain.pipeline import (
    PAYMENT_CHECK_ROUNDS,
    OrderNotFoundError,
    PaymentPendingTooLong,
    execution_input,
    execution_name,
)
from chalicelib.domain.ports import DeadLetters, OrderProgress, PaymentRecheckQueue, WorkflowEngine
from chalicelib.observability.logs import annotate
from chalicelib.services.batches import QueueRecord, process_batch
from chalicelib.services.intake import order_id_of

log = logging.getLogger(__name__)


def parse_recheck(body: str) -> tuple[str, int]:
    """``(order_id, round)`` of a re-check message; ``ValidationError`` for anything else."""
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise invalid("body", "is not JSON") from exc
    if not isinstance(message, dict):
        raise invalid("body", "is not an object")
    order_id, round = message.get("order_id"), message.get("round")
    if not isinstance(order_id, str) or not order_id.startswith("ord_") or len(order_id) > 80:
        raise invalid("order_id", "is missing or not an order id")
    if not isinstance(round, int) or isinstance(round, bool) or not 1 <= round <= PAYMENT_CHECK_ROUNDS:
        raise invalid("round", f"must be a whole number from 1 to {PAYMENT_CHECK_ROUNDS}")
    return order_id, round


class PaymentRechecks:
    def __init__(
        self,
        progress: OrderProgress,
        queue: PaymentRecheckQueue,
        workflow: WorkflowEngine,
        dead_letters: DeadLetters | None,
        wait_seconds: int,
        give_up: Callable[[str], Any],
        max_rounds: int = PAYMENT_CHECK_ROUNDS,
    ) -> None:
        self._progress = progress
        self._queue = queue
        self._workflow = workflow
        self._dead_letters = dead_letters
        self._wait_seconds = wait_seconds
        self._give_up_order = give_up
        self._max_rounds = max_rounds

    def await_payment(self, order_id: str, round: int) -> dict[str, Any]:
        """The ``AwaitPayment`` task: schedule round ``round + 1``, or give up after the last round.

        Example: ``await_payment("ord_1", 0)`` -> ``{"next_round": 1, "in_seconds": 300}``.
        """
        if round >= self._max_rounds:
            raise PaymentPendingTooLong(f"Order {order_id}: payment still pending after {round} status checks")
        self._queue.schedule(order_id, round + 1, self._wait_seconds)
        log.info("order %s: payment pending; status check %d in %d s", order_id, round + 1, self._wait_seconds)
        return {"next_round": round + 1, "in_seconds": self._wait_seconds}

    def process(self, records: Sequence[QueueRecord]) -> dict[str, list[dict[str, str]]]:
        """The re-check queue's consumer; the answer lists the messages Lambda must retry."""
        return process_batch(records, self._resume_record, self._dead_letters, self._give_up)

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
        payload = execution_input(order_id, order.correlation_id or order_id, self._wait_seconds, round)
        return self._workflow.start(execution_name(order_id, round), payload)

    def _resume_record(self, record: QueueRecord) -> None:
        order_id, round = parse_recheck(record.body)
        self.resume(order_id, round, record.message_id)

    def _give_up(self, record: QueueRecord, exc: Exception) -> None:
        """A re-check dead-lettered for good must not leave stock held for an unpaid order.

        Only the order id has to be readable: a message with a bad round still names an order waiting.
        """
        try:
            self._give_up_order(order_id_of(record.body))
        except DomainError as why:
            log.info("dead-lettered re-check %s changed no order: %r", record.message_id, why)
