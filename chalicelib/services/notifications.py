"""Customer notifications: from domain events to the SNS topic, and from the topic to the order.

Two decoupled consumers, as in the seed. ``route_event`` is the notification
service behind the EventBridge rule's queue: given a bus event (the entry layer reads
the EventBridge envelope from the SQS body), it publishes the customer message. ``deliver`` is the seed's
``sendNotification`` on the topic: it records each notification type once per order
(visible on ``GET /orders/{order_id}``), so duplicates from retries, redeliveries or
the API's own confirmation are delivered once.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from chalicelib.config import INVENTORY_RESERVED, ORDER_CREATED, PAYMENT_PROCESSED
from chalicelib.domain.events import CustomerNotification, PipelineEvent
from chalicelib.domain.pipeline import NotificationType
from chalicelib.domain.ports import OrderProgress, TopicPublisher

log = logging.getLogger(__name__)

SUBJECTS = {
    NotificationType.ORDER_CONFIRMATION: "Order Confirmation",
    NotificationType.PAYMENT_NOTIFICATION: "Payment Update",
    NotificationType.OUT_OF_STOCK: "Out of Stock",
}


def notification_for(detail_type: str, detail: Mapping[str, Any]) -> NotificationType | None:
    """Which customer message an event calls for (the seed's routing), if any."""
    if detail_type == ORDER_CREATED:
        return NotificationType.ORDER_CONFIRMATION
    if detail_type == PAYMENT_PROCESSED:
        return NotificationType.PAYMENT_NOTIFICATION
    if detail_type == INVENTORY_RESERVED and detail.get("status") == "failed":
        return NotificationType.OUT_OF_STOCK
    return None


class NotificationService:
    def __init__(self, progress: OrderProgress, topic: TopicPublisher) -> None:
        self._progress = progress
        self._topic = topic

    def route_event(self, event: PipelineEvent) -> NotificationType | None:
        """Publish the customer message a bus event calls for, if any."""
        detail = event.detail
        kind = notification_for(event.detail_type, detail)
        if kind is None:
            return None
        order_id = str(detail.get("order_id", ""))
        message = {"type": kind.value, "order_id": order_id, "customer_id": detail.get("customer_id")}
        message.update({k: detail[k] for k in ("status", "payment_id", "amount", "total_amount") if k in detail})
        self._topic.publish(f"{SUBJECTS[kind]} - {order_id}", message)
        return kind

    def deliver(self, note: CustomerNotification) -> bool:
        """Record (and deliver) a notification once per order and type; ``False`` for a duplicate."""
        first = self._progress.record_notification(note.order_id, note.kind.value)
        if first:
            # The delivery channel (e-mail, push) is out of scope; the log line is the delivery receipt.
            log.info("notified customer %s: %s for order %s", note.customer_id, note.kind.value, note.order_id)
        return first
