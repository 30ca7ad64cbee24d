"""Customer notifications: from domain events to the SNS topic, and from the topic to the order.

Two decoupled consumers, as in the seed. ``route_event`` is the notification
service behind the EventBridge rule's queue: it reads the EventBridge envelope from
the SQS body and publishes the customer message. ``deliver`` is the seed's
``sendNotification`` on the topic: it records each notification type once per order
(visible on ``GET /orders/{order_id}``), so duplicates from retries, redeliveries or
the API's own confirmation are delivered once.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Mapping, Sequence

from chalicelib.domain.errors import invalid
from chalicelib.domain.pipeline import INVENTORY_RESERVED, ORDER_CREATED, PAYMENT_PROCESSED, NotificationType
from chalicelib.domain.ports import DeadLetters, OrderProgress, TopicPublisher
from chalicelib.services.batches import QueueRecord, process_batch

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
    def __init__(self, progress: OrderProgress, topic: TopicPublisher, dead_letters: DeadLetters | None = None) -> None:
        self._progress = progress
        self._topic = topic
        self._dead_letters = dead_letters

    def process_events(self, records: Sequence[QueueRecord]) -> dict[str, list[dict[str, str]]]:
        """Route a batch from the events queue; the answer lists the messages Lambda must retry."""
        return process_batch(records, lambda record: self.route_event(record.body), self._dead_letters)

    def route_event(self, body: str) -> NotificationType | None:
        """Publish what an EventBridge envelope (an SQS body) calls for; ``ValidationError`` if malformed."""
        envelope = json.loads(body)
        if not isinstance(envelope, dict) or not isinstance(envelope.get("detail"), dict):
            raise invalid("body", "is not an EventBridge event")
        detail = envelope["detail"]
        kind = notification_for(str(envelope.get("detail-type", "")), detail)
        if kind is None:
            return None
        order_id = str(detail.get("order_id", ""))
        message = {"type": kind.value, "order_id": order_id, "customer_id": detail.get("customer_id")}
        message.update({k: detail[k] for k in ("status", "payment_id", "amount", "total_amount") if k in detail})
        self._topic.publish(f"{SUBJECTS[kind]} - {order_id}", message)
        return kind

    def deliver(self, message: str) -> bool:
        """Record (and deliver) a topic message once per order and type; ``False`` for a duplicate."""
        payload = json.loads(message)
        kind = NotificationType(payload["type"])
        order_id = str(payload["order_id"])
        first = self._progress.record_notification(order_id, kind.value)
        if first:
            # The delivery channel (e-mail, push) is out of scope; the log line is the delivery receipt.
            log.info("notified customer %s: %s for order %s", payload.get("customer_id"), kind.value, order_id)
        return first
