"""The order queue's consumer (the seed's ``orders.process``): one workflow execution per order.

The execution is named after the order. Express workflows do not refuse a second
execution of one name as Standard ones did, so a redelivered or duplicated message may
start the workflow twice; every task is idempotent, so the order still ends once and is
charged once (docs/architecture.md, "At least once"). The order moves to ``PROCESSING`` before the execution
starts, so the workflow never sees a ``PENDING`` order. A message naming no known
order is poison: it fails, is retried, and is dead-lettered with its reason; the
entry layer (``entrypoints/pipeline.py``) reads the messages and calls ``start`` and,
for a message dead-lettered for good, ``give_up``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from chalicelib.domain.errors import DomainError
from chalicelib.domain.orders import FailureReason, OrderStatus
from chalicelib.domain.pipeline import OrderNotFoundError, execution_input, execution_name
from chalicelib.domain.ports import OrderProgress, WorkflowEngine
from chalicelib.observability.logs import annotate
from chalicelib.observability.tracing import subsegment

if TYPE_CHECKING:
    from chalicelib.services.watchdog import DeadlineKeeper

log = logging.getLogger(__name__)


class OrderIntake:
    def __init__(
        self,
        progress: OrderProgress,
        workflow: WorkflowEngine,
        payment_wait_seconds: int,
        deadlines: DeadlineKeeper | None = None,
    ) -> None:
        self._deadlines = deadlines
        self._progress = progress
        self._workflow = workflow
        self._payment_wait_seconds = payment_wait_seconds

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
        if self._deadlines is not None:  # before the start: a crash between the two leaves no order unwatched
            self._deadlines.execution_started(order_id)
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

    def give_up(self, order_id: str) -> None:
        """Its message was dead-lettered for good: the order must not be left waiting forever."""
        try:
            self._progress.advance(order_id, OrderStatus.FAILED, FailureReason.WORKFLOW_FAILED)
        except DomainError as why:  # no such order, or already finished
            log.info("dead-lettered order %s stays as it was: %r", order_id, why)
