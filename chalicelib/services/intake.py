"""The order queue's consumer (the seed's ``orders.process``): one workflow execution per order.

The execution is named after the order. Express workflows do not refuse a second
execution of one name as Standard ones did, so a redelivered or duplicated message may
start the workflow twice; every task is idempotent, so the order still ends once and is
charged once (docs/architecture.md, "At least once"). The order moves to ``PROCESSING`` before the execution
starts, so the workflow never sees a ``PENDING`` order. A message naming no known
order is poison: it fails, is retried, and is dead-lettered with its reason.
"""

from __future__ import annotations

import json
import logging
from typing import Sequence

from chalicelib.domain.errors import DomainError, invalid
from chalicelib.domain.orders import FailureReason, OrderStatus
from chalicelib.domain.pipeline import OrderNotFoundError, execution_input, execution_name
from chalicelib.domain.ports import DeadLetters, OrderProgress, WorkflowEngine
from chalicelib.observability.logs import annotate
from chalicelib.observability.tracing import subsegment
from chalicelib.services.batches import QueueRecord, process_batch

log = logging.getLogger(__name__)


def order_id_of(body: str) -> str:
    """The ``order_id`` of an order-queue message; ``ValidationError`` for anything else."""
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise invalid("body", "is not JSON") from exc
    order_id = message.get("order_id") if isinstance(message, dict) else None
    if not isinstance(order_id, str) or not order_id.startswith("ord_") or len(order_id) > 80:
        raise invalid("order_id", "is missing or not an order id")
    return order_id


class OrderIntake:
    def __init__(
        self,
        progress: OrderProgress,
        workflow: WorkflowEngine,
        dead_letters: DeadLetters | None,
        payment_wait_seconds: int,
    ) -> None:
        self._progress = progress
        self._workflow = workflow
        self._dead_letters = dead_letters
        self._payment_wait_seconds = payment_wait_seconds

    def process(self, records: Sequence[QueueRecord]) -> dict[str, list[dict[str, str]]]:
        """Start the workflow for each message; the answer lists the messages Lambda must retry."""
        return process_batch(records, self._start, self._dead_letters, self._give_up)

    def start(self, order_id: str) -> bool:
        """Start the order's execution; ``False`` when it was started before or the order is finished.

        Example: ``start("ord_1")`` -> ``True``; again -> ``False`` (one execution, one charge).
        """
        order = self._progress.get(order_id)
        if order is None:
            raise OrderNotFoundError(f"Order {order_id} not found")
        correlation_id = order.correlation_id or order_id
        annotate(order_id=order_id, correlation_id=correlation_id)
        if order.status in (OrderStatus.COMPLETED, OrderStatus.FAILED):
            return False
        self._progress.advance(order_id, OrderStatus.PROCESSING)
        # The execution input carries the correlation id on, to the execution's logs and events.
        payload = execution_input(order_id, correlation_id, self._payment_wait_seconds)
        annotations = {"order_id": order_id, "order_total": float(order.total_amount)}
        with subsegment("order_processing", annotations, {"customer_id": order.customer_id}):
            started = self._workflow.start(execution_name(order_id), payload)
        if started:
            log.info("order %s: workflow started", order_id)
        else:
            log.info("order %s: execution already exists; duplicate message ignored", order_id)
        return started

    def _start(self, record: QueueRecord) -> None:
        self.start(order_id_of(record.body))

    def _give_up(self, record: QueueRecord, exc: Exception) -> None:
        """A message dead-lettered for good must not leave its order waiting forever."""
        try:
            order_id = order_id_of(record.body)
            self._progress.advance(order_id, OrderStatus.FAILED, FailureReason.WORKFLOW_FAILED)
        except DomainError as why:  # not an order, no such order, or already finished
            log.info("dead-lettered message %s changed no order: %r", record.message_id, why)
