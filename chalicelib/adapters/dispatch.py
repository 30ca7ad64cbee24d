"""Handing a stored order to the pipeline: SQS queue, EventBridge event, SNS confirmation.

The order is already stored when it is dispatched, so a failure here is a 503
the client may retry with the same ``Idempotency-Key``: the service re-dispatches
a ``PENDING`` order on replay, and every consumer deduplicates by ``order_id``.
"""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from typing import Any, Mapping

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.config import ORDER_CREATED, SOURCE_ORDERS
from chalicelib.domain.errors import DependencyUnavailableError
from chalicelib.domain.ids import Clock, iso, utc_now
from chalicelib.domain.money import to_json_number
from chalicelib.domain.orders import Order

ORDER_CONFIRMATION = "order_confirmation"


class EventPublishError(Exception):
    """EventBridge accepted the call but rejected the entry (``FailedEntryCount > 0``)."""


class EventRuleError(Exception):
    """EventBridge refused one of a rule's targets."""


def _json_default(value: Any) -> Any:
    # DynamoDB hands numbers back as Decimal; JSON has only one number type.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


class EventBridgePublisher:
    """The seed's ``EventBridgeRouter``, with an injected client and failures that are not ignored."""

    def __init__(self, client: Any, bus_name: str) -> None:
        self._events = client
        self.bus_name = bus_name

    def publish_event(self, source: str, detail_type: str, detail: Mapping[str, Any]) -> str:
        """Put one event on the bus; returns its id. ``EventPublishError`` if the entry was rejected.

        ``put_events`` answers 200 even when an entry fails; only ``FailedEntryCount`` tells.
        """
        answer = self._events.put_events(
            Entries=[
                {"Source": source, "DetailType": detail_type, "Detail": to_json(detail), "EventBusName": self.bus_name}
            ]
        )
        entry = (answer.get("Entries") or [{}])[0]
        if answer.get("FailedEntryCount", 0) > 0 or "EventId" not in entry:
            raise EventPublishError(
                f"event {detail_type!r} rejected by bus {self.bus_name}: "
                f"{entry.get('ErrorCode', 'unknown')}: {entry.get('ErrorMessage', 'no message')}"
            )
        return str(entry["EventId"])

    def create_rule(
        self,
        rule_name: str,
        event_pattern: Mapping[str, Any],
        targets: list[dict[str, str | None]],
        description: str | None = None,
    ) -> str:
        """Route matching events to ``targets`` (``arn``, optional ``role_arn`` and ``input_path``).

        Returns the rule's ARN. ``RoleArn``/``InputPath`` are sent only when set:
        the seed sent ``RoleArn: None``, which botocore refuses.
        """
        rule_arn = self._events.put_rule(
            Name=rule_name,
            EventPattern=json.dumps(event_pattern),
            State="ENABLED",
            EventBusName=self.bus_name,
            # The seed put the whole pattern here, which breaks on the 512-character limit.
            Description=description or f"Routes events on {self.bus_name} for {rule_name}",
        )["RuleArn"]
        formatted: list[dict[str, str]] = []
        for index, target in enumerate(targets, start=1):
            entry = {"Id": str(index), "Arn": str(target["arn"])}
            if target.get("role_arn"):
                entry["RoleArn"] = str(target["role_arn"])
            if target.get("input_path"):
                entry["InputPath"] = str(target["input_path"])
            formatted.append(entry)
        answer = self._events.put_targets(Rule=rule_name, EventBusName=self.bus_name, Targets=formatted)
        if answer.get("FailedEntryCount", 0) > 0:
            failed = answer.get("FailedEntries", [{}])[0]
            raise EventRuleError(
                f"rule {rule_name}: target {failed.get('TargetId')} refused: "
                f"{failed.get('ErrorCode')}: {failed.get('ErrorMessage')}"
            )
        return str(rule_arn)


def _items(order: Order) -> list[dict[str, Any]]:
    return [
        {"product_id": line.product_id, "quantity": line.quantity, "unit_price": to_json_number(line.unit_price)}
        for line in order.items
    ]


def _string_attribute(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


class AwsOrderDispatcher:
    """``OrderDispatcher`` on SQS (the work), EventBridge (who else cares) and SNS (the customer)."""

    def __init__(
        self,
        sqs_client: Any,
        sns_client: Any,
        publisher: EventBridgePublisher,
        queue_url: str,
        topic_arn: str,
        clock: Clock = utc_now,
    ) -> None:
        self._sqs = sqs_client
        self._sns = sns_client
        self._publisher = publisher
        self._queue_url = queue_url
        self._topic_arn = topic_arn
        self._clock = clock

    def order_placed(self, order: Order) -> None:
        """Queue the order, announce ``Order Created`` and send the confirmation, in that order.

        The queue comes first because it alone moves the order forward. Raises
        ``DependencyUnavailableError`` (from the AWS error) if any step fails.
        """
        correlation_id = order.correlation_id or order.order_id
        for step, send in (
            ("queued", self._queue),
            ("announced", self._announce),
            ("confirmed", self._confirm),
        ):
            try:
                send(order, correlation_id)
            except (ClientError, BotoCoreError, EventPublishError) as exc:
                raise DependencyUnavailableError(
                    f"Order {order.order_id} is stored but could not be {step}; "
                    "retry the request with the same Idempotency-Key to send it again"
                ) from exc

    def _queue(self, order: Order, correlation_id: str) -> None:
        body = {
            "order_id": order.order_id,
            "customer_id": order.customer_id,
            "total_amount": to_json_number(order.total_amount),
            "currency": order.currency,
            "items": _items(order),
            "correlation_id": correlation_id,
        }
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=to_json(body),
            MessageAttributes={
                "OrderType": _string_attribute("standard"),
                "Priority": _string_attribute("normal"),
                "CorrelationId": _string_attribute(correlation_id),
            },
        )

    def _announce(self, order: Order, correlation_id: str) -> None:
        self._publisher.publish_event(
            source=SOURCE_ORDERS,
            detail_type=ORDER_CREATED,
            detail={
                "order_id": order.order_id,
                "customer_id": order.customer_id,
                "total_amount": to_json_number(order.total_amount),
                "currency": order.currency,
                "items": _items(order),
                "status": order.status.value,
                "correlation_id": correlation_id,
                "timestamp": iso(self._clock()),
            },
        )

    def _confirm(self, order: Order, correlation_id: str) -> None:
        message = {
            "order_id": order.order_id,
            "customer_id": order.customer_id,
            "total_amount": to_json_number(order.total_amount),
            "status": order.status.value,
            "type": ORDER_CONFIRMATION,
        }
        self._sns.publish(
            TopicArn=self._topic_arn,
            Subject=f"Order Confirmation - {order.order_id}",
            Message=to_json(message),
            MessageAttributes={
                "notification_type": _string_attribute(ORDER_CONFIRMATION),
                "correlation_id": _string_attribute(correlation_id),
            },
        )


class RecordingDispatcher:
    """In-memory ``OrderDispatcher``: remembers what it dispatched; ``fail_next`` simulates an outage."""

    def __init__(self) -> None:
        self.orders: list[Order] = []
        self.fail_next = 0
        self._lock = threading.Lock()

    def order_placed(self, order: Order) -> None:
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                raise DependencyUnavailableError(
                    f"Order {order.order_id} is stored but could not be queued; "
                    "retry the request with the same Idempotency-Key to send it again"
                )
            self.orders.append(order)
