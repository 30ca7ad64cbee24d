"""The order workflow's forward steps, one method per Step Functions task (see statemachine.json).

Each step takes the order id, reads the stored order (the source of truth, so task
payloads stay small), does one thing idempotently, and returns what the state
machine needs next. A step may run twice (a Retry, a duplicated execution event):
holds, charges and status moves are written with conditions, so the second run
changes nothing. Failure paths and compensations live in ``services.compensation``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from chalicelib.config import (
    INVENTORY_RESERVED,
    ORDER_COMPLETED,
    PAYMENT_PROCESSED,
    SOURCE_INVENTORY,
    SOURCE_ORDERS,
    SOURCE_PAYMENTS,
)
from chalicelib.domain.ids import Clock, iso, utc_now
from chalicelib.domain.orders import Order, OrderStatus
from chalicelib.domain.pipeline import (
    HoldStatus,
    InsufficientInventory,
    NotificationType,
    OrderNotFoundError,
    Payment,
    PaymentStatus,
    check_processable,
)
from chalicelib.domain.ports import (
    DiscardMetrics,
    EventPublisher,
    Inventory,
    MetricsSink,
    OrderProgress,
    PaymentGateway,
    TopicPublisher,
)
from chalicelib.observability.logs import annotate
from chalicelib.observability.tracing import subsegment

log = logging.getLogger(__name__)


@dataclass
class Pipeline:
    """The ports every step may touch."""

    progress: OrderProgress
    inventory: Inventory
    payments: PaymentGateway
    events: EventPublisher
    notifications: TopicPublisher
    clock: Clock = utc_now
    metrics: MetricsSink = field(default_factory=DiscardMetrics)

    def order(self, order_id: str) -> Order:
        order = self.progress.get(order_id)
        if order is None:
            raise OrderNotFoundError(f"Order {order_id} not found")
        return tracked(order)

    def publish(self, source: str, detail_type: str, order: Order, **detail: Any) -> None:
        self.events.publish_event(
            source,
            detail_type,
            {
                "order_id": order.order_id,
                "customer_id": order.customer_id,
                "correlation_id": order.correlation_id or order.order_id,
                "timestamp": iso(self.clock()),
                **detail,
            },
        )


def tracked(order: Order) -> Order:
    """Bind the order's correlation id to the task's log lines: tasks receive only the order id."""
    annotate(order_id=order.order_id, correlation_id=order.correlation_id or order.order_id)
    return order


def trace_fields(order: Order) -> tuple[dict[str, Any], dict[str, Any]]:
    """The seed's X-Ray fields: order id and total as annotations (searchable), the customer as metadata."""
    annotations = {"order_id": order.order_id, "order_total": float(order.total_amount)}
    return annotations, {"customer_id": order.customer_id, "order_total": str(order.total_amount)}


def choice_status(payment: Payment) -> str:
    """The seed's ``paymentStatus`` for the Choice state: a reversed payment counts as failed, never as pending."""
    if payment.status in (PaymentStatus.SUCCESS, PaymentStatus.PENDING):
        return payment.status.value
    return PaymentStatus.FAILED.value


class WorkflowSteps:
    def __init__(self, pipeline: Pipeline) -> None:
        self._p = pipeline

    def validate(self, order_id: str) -> dict[str, Any]:
        """``ValidationError`` (caught by the state machine) when the order breaks a processing rule."""
        order = self._p.order(order_id)
        with subsegment("order_validation", *trace_fields(order)):
            check_processable(order)
        return {"valid": True, "total_amount": str(order.total_amount)}

    def check_inventory(self, order_id: str) -> dict[str, Any]:
        """Hold the stock before payment; ``InsufficientInventory`` when it is not there."""
        order = self._p.order(order_id)
        status = self._p.inventory.hold(order)
        if status == HoldStatus.RELEASED:
            # Compensated already (an aborted execution): the goods are not coming back for this order.
            raise InsufficientInventory(f"Order {order_id} gave its stock back")
        lines = [{"product_id": line.product_id, "quantity": line.quantity} for line in order.items]
        self._p.metrics.add("InventoryReservations", 1)
        self._p.publish(SOURCE_INVENTORY, INVENTORY_RESERVED, order, status="reserved", reservations=lines)
        return {"hold": status.value}

    def process_payment(self, order_id: str) -> dict[str, Any]:
        """Charge once per order; ``PaymentGatewayTimeout`` propagates for the state machine's Retry."""
        order = self._p.order(order_id)
        with subsegment("payment_processing", *trace_fields(order)):
            payment = self._p.payments.charge(order_id, order.payment_token, order.total_amount, order.currency)
        return self._announce(order, payment)

    def check_payment_status(self, order_id: str, round: int = 1) -> dict[str, Any]:
        """The ``round``-th status check of a pending payment (the re-check resumed the workflow here)."""
        order = self._p.order(order_id)
        return self._announce(order, self._p.payments.check(order_id, round))

    def _announce(self, order: Order, payment: Payment) -> dict[str, Any]:
        status = choice_status(payment)
        if status == PaymentStatus.SUCCESS.value:
            self._p.metrics.add("PaymentSuccess", 1)
        if status != PaymentStatus.PENDING.value:
            self._p.publish(
                SOURCE_PAYMENTS,
                PAYMENT_PROCESSED,
                order,
                payment_id=payment.payment_id,
                amount=str(payment.amount),
                status=status,
            )
        return {**payment.to_dict(), "paymentStatus": status}

    def reserve_inventory(self, order_id: str) -> dict[str, Any]:
        """Commit the hold (paid for now); ``InsufficientInventory`` if it is gone, so the payment is refunded."""
        return {"hold": self._p.inventory.commit(order_id).value}

    def send_confirmation(self, order_id: str) -> dict[str, Any]:
        order = self._p.order(order_id)
        self._p.notifications.publish(
            f"Order Confirmation - {order_id}",
            {
                "type": NotificationType.ORDER_CONFIRMATION.value,
                "order_id": order_id,
                "customer_id": order.customer_id,
                "total_amount": str(order.total_amount),
                "status": "CONFIRMED",
            },
        )
        return {"sent": NotificationType.ORDER_CONFIRMATION.value}

    def schedule_shipping(self, order_id: str) -> dict[str, Any]:
        """The sandbox carrier: a deterministic shipment id, so a retried step books nothing new."""
        order = self._p.order(order_id)
        return {"shipment_id": "shp_" + order_id.removeprefix("ord_"), "country": order.shipping_address.country}

    def complete(self, order_id: str) -> dict[str, Any]:
        with subsegment("order_completion", {"order_id": order_id}):
            order = tracked(self._p.progress.advance(order_id, OrderStatus.COMPLETED))
        # The seed's business metrics, counted when an order completes; the value per currency.
        self._p.metrics.add("OrdersProcessed", 1)
        self._p.metrics.add("OrderValue", float(order.total_amount), "None", {"Currency": order.currency})
        log.info("order %s completed", order_id, extra={"order_total": str(order.total_amount)})
        self._p.publish(SOURCE_ORDERS, ORDER_COMPLETED, order, status=order.status.value)
        return {"status": order.status.value}
