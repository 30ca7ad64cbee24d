"""The workflow's failure paths and the saga's compensations.

Two promises: no order is charged without its goods, and no stock is held for an
unpaid order. So a hold taken before payment is released when payment fails, a
payment is refunded when stock cannot be secured after it, and any other failure
(``compensate``) refunds what was charged and returns what was held. Every path
ends with the order ``FAILED`` and its reason; all of them are safe to run twice.
"""

from __future__ import annotations

from typing import Any

from chalicelib.config import (
    INVENTORY_RESERVED,
    ORDER_FAILED,
    SOURCE_INVENTORY,
    SOURCE_ORDERS,
)
from chalicelib.domain.orders import FailureReason, Order, OrderStatus
from chalicelib.services.workflow import Pipeline


class Compensations:
    def __init__(self, pipeline: Pipeline) -> None:
        self._p = pipeline

    def _fail(self, order_id: str, reason: FailureReason, **detail: Any) -> dict[str, Any]:
        """Record FAILED with ``reason`` (a terminal order keeps its first outcome) and announce it."""
        order = self._p.progress.get(order_id)
        if order is not None and order.status not in (OrderStatus.COMPLETED, OrderStatus.FAILED):
            order = self._p.progress.advance(order_id, OrderStatus.FAILED, reason)
        order = order or self._p.order(order_id)
        if order.status == OrderStatus.FAILED:
            self._p.publish(SOURCE_ORDERS, ORDER_FAILED, order, failure_reason=str(order.failure_reason), **detail)
        reason_now = order.failure_reason.value if order.failure_reason is not None else None
        return {"status": order.status.value, "failure_reason": reason_now}

    def reject(self, order_id: str) -> dict[str, Any]:
        """After ``ValidateOrder`` refused the order: nothing was held or charged yet."""
        return self._fail(order_id, FailureReason.VALIDATION_FAILED)

    def notify_out_of_stock(self, order_id: str) -> dict[str, Any]:
        """The hold could not be taken (all or nothing, so nothing is held): tell the customer, fail the order."""
        order = self._p.order(order_id)
        self._p.publish(SOURCE_INVENTORY, INVENTORY_RESERVED, order, status="failed")
        return self._fail(order_id, FailureReason.OUT_OF_STOCK)

    def handle_payment_failure(self, order_id: str) -> dict[str, Any]:
        """Declined, or still pending after the last re-check: void what is pending, give the stock back, fail.

        Voiding a declined payment changes nothing; voiding a pending one means the gateway can no
        longer approve it after the order gave up.
        """
        order = self._p.order(order_id)
        payment = self._p.payments.refund(order_id)
        self._release(order, include_committed=False)
        return {**self._fail(order_id, FailureReason.PAYMENT_FAILED), "payment": payment.status.value}

    def refund_payment(self, order_id: str) -> dict[str, Any]:
        """Paid, but the stock could not be secured: refund, return whatever is still held, fail OUT_OF_STOCK."""
        order = self._p.order(order_id)
        refund = self._p.payments.refund(order_id)
        self._release(order, include_committed=True)
        refunded = refund.status.value if refund is not None else None
        return {**self._fail(order_id, FailureReason.OUT_OF_STOCK), "payment": refunded}

    def compensate(self, order_id: str) -> dict[str, Any]:
        """Undo whatever the workflow did (refund if charged, release if held) and fail WORKFLOW_FAILED.

        Used by every ``States.ALL`` catch and by the execution-status handler when an
        execution failed, timed out or was aborted. A refund or release with nothing to
        undo leaves a marker, so a step still running elsewhere cannot charge or hold later.
        """
        order = self._p.order(order_id)
        if order.status == OrderStatus.COMPLETED:
            return {"status": order.status.value, "failure_reason": None}  # delivered and paid: nothing to undo
        refund = self._p.payments.refund(order_id)
        hold = self._release(order, include_committed=True)
        return {
            **self._fail(order_id, FailureReason.WORKFLOW_FAILED),
            "payment": refund.status.value if refund is not None else None,
            "hold": hold,
        }

    def _release(self, order: Order, include_committed: bool) -> str | None:
        status = self._p.inventory.release(order, include_committed=include_committed)
        return status.value if status is not None else None
