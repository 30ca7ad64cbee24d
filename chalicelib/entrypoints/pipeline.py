"""The order pipeline's event handlers, entry side: envelopes and message bodies to domain values.

What each consumer receives, and what the service is handed instead:

- the order queue: SQS records whose body is ``{"order_id": ...}`` -> ``OrderIntake.start(order_id)``;
- the notification-events queue: SQS records whose body is an EventBridge envelope
  (``detail-type``, ``detail``) -> ``NotificationService.route_event(PipelineEvent)``;
- the notifications topic: the SNS message ``{"type", "order_id", "customer_id"}``
  -> ``NotificationService.deliver(CustomerNotification)``;
- the payment re-check queue: ``{"order_id": ..., "round": n}`` -> ``PaymentRechecks.resume``;
- the "Step Functions Execution Status Change" event's ``detail``
  -> ``WorkflowMonitor.handle(ExecutionStatusChange)``.

A malformed body raises ``ValidationError`` inside the record handler, so the message fails
alone and, on its last receive, is dead-lettered with that reason (``entrypoints/sqs.py``).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from chalicelib.domain.errors import ValidationError, invalid
from chalicelib.domain.events import CustomerNotification, ExecutionStatusChange, PipelineEvent
from chalicelib.domain.pipeline import PAYMENT_CHECK_ROUNDS, NotificationType
from chalicelib.domain.ports import DeadLetters
from chalicelib.entrypoints.sqs import BatchResponse, QueueMessage, partial_batch_response, queue_messages

if TYPE_CHECKING:
    from chalicelib.services.intake import OrderIntake
    from chalicelib.services.notifications import NotificationService
    from chalicelib.services.payment_rechecks import PaymentRechecks

log = logging.getLogger(__name__)

MAX_ORDER_ID_LENGTH = 80


def _json_object(text: str, field: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise invalid(field, "is not JSON") from exc
    if not isinstance(value, dict):
        raise invalid(field, "is not a JSON object")
    return value


def order_id_of(body: str) -> str:
    """The ``order_id`` of an order-queue message; ``ValidationError`` for anything else."""
    order_id = _json_object(body, "body").get("order_id")
    if not isinstance(order_id, str) or not order_id.startswith("ord_") or len(order_id) > MAX_ORDER_ID_LENGTH:
        raise invalid("order_id", "is missing or not an order id")
    return order_id


def payment_recheck(body: str) -> tuple[str, int]:
    """``(order_id, round)`` of a payment re-check message; ``ValidationError`` for anything else."""
    message = _json_object(body, "body")
    order_id, round = order_id_of(body), message.get("round")
    if not isinstance(round, int) or isinstance(round, bool) or not 1 <= round <= PAYMENT_CHECK_ROUNDS:
        raise invalid("round", f"must be a whole number from 1 to {PAYMENT_CHECK_ROUNDS}")
    return order_id, round


def pipeline_event(body: str) -> PipelineEvent:
    """The bus event an EventBridge envelope (an SQS body) carries; ``ValidationError`` if malformed."""
    envelope = _json_object(body, "body")
    detail = envelope.get("detail")
    if not isinstance(detail, dict) or not isinstance(envelope.get("detail-type"), str):
        raise invalid("body", "is not an EventBridge event")
    return PipelineEvent(envelope["detail-type"], detail)


def customer_notification(message: str) -> CustomerNotification:
    """A notifications-topic message; ``ValidationError`` if it names no known type or no order."""
    payload = _json_object(message, "message")
    try:
        kind = NotificationType(str(payload.get("type")))
    except ValueError as exc:
        raise invalid("type", "is not a notification type") from exc
    order_id = payload.get("order_id")
    if not isinstance(order_id, str) or not order_id:
        raise invalid("order_id", "is missing")
    customer_id = payload.get("customer_id")
    return CustomerNotification(kind, order_id, customer_id if isinstance(customer_id, str) else None)


def execution_status_change(detail: Mapping[str, Any]) -> ExecutionStatusChange:
    """A "Step Functions Execution Status Change" event's ``detail`` as the monitor needs it."""

    def text(key: str) -> str | None:
        value = detail.get(key)
        return value if isinstance(value, str) and value else None

    return ExecutionStatusChange(
        status=text("status") or "",
        order_id=_execution_order_id(detail),
        round=_execution_round(detail),
        state_machine_arn=text("stateMachineArn"),
        execution_arn=text("executionArn"),
        error=text("error"),
        cause=str(detail.get("cause") or ""),
    )


def _execution_order_id(detail: Mapping[str, Any]) -> str | None:
    """The order an execution ran for: its input's ``order_id``, else its name's (``ord_...[-suffix]``).

    The input says it outright; the name is the fallback for an event whose input was left out.
    An execution is named after its order, perhaps with a suffix (a re-run), and order ids hold no ``-``.
    """
    order_id = _execution_input(detail).get("order_id")
    if isinstance(order_id, str) and order_id:
        return order_id
    name = detail.get("name")
    if isinstance(name, str) and name.startswith("ord_"):
        return name.partition("-")[0]
    return None


def _execution_round(detail: Mapping[str, Any]) -> int | None:
    """The re-check round an execution ran: its input's ``payment_round``, else its name's (``ord_...-checkN``).

    ``None`` when neither tells (a run started by hand under another name, without the workflow's input).
    """
    found = _execution_input(detail).get("payment_round")
    if isinstance(found, int) and not isinstance(found, bool) and found >= 0:
        return found
    name = detail.get("name")
    if isinstance(name, str) and name.startswith("ord_"):
        _, _, suffix = name.partition("-")
        if not suffix:
            return 0
        number = suffix.removeprefix("check")
        if suffix.startswith("check") and number.isdigit():
            return int(number)
    return None


def _execution_input(detail: Mapping[str, Any]) -> dict[str, Any]:
    try:
        found = json.loads(detail.get("input") or "{}")
    except (ValueError, TypeError):
        return {}
    return found if isinstance(found, dict) else {}


def order_queue(records: Iterable[Any], intake: OrderIntake, dead_letters: DeadLetters | None) -> BatchResponse:
    """The order queue's batch: one workflow execution per order, a failed order for a dead letter."""

    def give_up(message: QueueMessage) -> None:
        try:
            order_id = order_id_of(message.body)
        except ValidationError as why:  # not an order message: there is no order to fail
            log.info("dead-lettered message %s names no order: %r", message.message_id, why)
            return
        intake.give_up(order_id)

    return partial_batch_response(
        queue_messages(records), lambda message: intake.start(order_id_of(message.body)), dead_letters, give_up
    )


def payment_recheck_queue(
    records: Iterable[Any], rechecks: PaymentRechecks, dead_letters: DeadLetters | None
) -> BatchResponse:
    """The re-check queue's batch: each round resumes its order once; a dead letter releases the order's hold.

    Only the order id has to be readable to give up: a message with a bad round still names an order waiting.
    """

    def resume(message: QueueMessage) -> None:
        order_id, round = payment_recheck(message.body)
        rechecks.resume(order_id, round, message.message_id)

    def give_up(message: QueueMessage) -> None:
        try:
            order_id = order_id_of(message.body)
        except ValidationError as why:
            log.info("dead-lettered re-check %s names no order: %r", message.message_id, why)
            return
        rechecks.give_up(order_id)

    return partial_batch_response(queue_messages(records), resume, dead_letters, give_up)


def notification_events(
    records: Iterable[Any], notifications: NotificationService, dead_letters: DeadLetters | None
) -> BatchResponse:
    """The notification-events queue's batch: each bus event routed to the customer message it calls for."""
    return partial_batch_response(
        queue_messages(records), lambda message: notifications.route_event(pipeline_event(message.body)), dead_letters
    )
