"""The order pipeline's vocabulary: holds, payments, notifications, and the processing rules.

Step Functions matches a task's error by the exception's class name (Lambda reports
``errorType`` as ``type(exc).__name__``), so the errors the state machine catches or
retries keep the seed's names: ``InsufficientInventory``, ``PaymentGatewayTimeout``,
and the domain's ``ValidationError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from chalicelib.domain.errors import DomainError, FieldError, ValidationError
from chalicelib.domain.orders import Order, OrderStatus

# A card charge above this needs a manual risk review, which this shop does not do: the
# workflow refuses it (VALIDATION_FAILED) although the API accepted a well-formed order.
MAX_ORDER_TOTAL = Decimal("10000.00")

# A pending payment is re-checked outside the workflow (services/payment_rechecks.py), every
# PAYMENT_WAIT_SECONDS, at most this many times: then the order fails PAYMENT_FAILED and its hold is
# released. Six rounds of the deployed 300 s are half an hour of stock held for an unpaid order.
PAYMENT_CHECK_ROUNDS = 6
# SQS's longest per-message delay: a longer wait would need EventBridge Scheduler (docs/architecture.md).
MAX_QUEUE_DELAY_SECONDS = 900

RESUME_AT_PAYMENT_CHECK = "payment_check"  # statemachine.json's first Choice reads ``$.resume``
START = "start"


def execution_input(order_id: str, correlation_id: str, wait_seconds: int, round: int = 0) -> dict[str, Any]:
    """The workflow's input: the first run (round 0) starts at validation, a re-check at the status check."""
    payload: dict[str, Any] = {
        "order_id": order_id,
        "correlation_id": correlation_id,
        "payment_wait_seconds": wait_seconds,
        "payment_round": round,
        "resume": RESUME_AT_PAYMENT_CHECK if round else START,
    }
    return payload


def execution_name(order_id: str, round: int = 0) -> str:
    """One name per order and round: ``ord_...`` for the first run, ``ord_...-check2`` for round 2."""
    return order_id if round == 0 else f"{order_id}-check{round}"


class NotificationType(StrEnum):
    ORDER_CONFIRMATION = "order_confirmation"
    PAYMENT_NOTIFICATION = "payment_notification"
    OUT_OF_STOCK = "out_of_stock"


class HoldStatus(StrEnum):
    """Stock taken from the shelf for one order: held before payment, committed or released after."""

    HELD = "HELD"
    COMMITTED = "COMMITTED"
    RELEASED = "RELEASED"


class PaymentStatus(StrEnum):
    """The seed's ``paymentStatus`` values (``success``/``failed``/anything else is pending), plus reversals."""

    SUCCESS = "success"
    FAILED = "failed"
    PENDING = "pending"
    REFUNDED = "refunded"
    VOIDED = "voided"


@dataclass(frozen=True)
class Payment:
    """One order's payment as the gateway holds it; ``charges`` counts money actually taken (0 or 1)."""

    order_id: str
    payment_id: str
    status: PaymentStatus
    amount: Decimal
    currency: str
    charges: int = 0
    status_checks: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "paymentStatus": self.status.value,
            "payment_id": self.payment_id,
            "amount": str(self.amount),
            "currency": self.currency,
        }


class WorkflowError(DomainError):
    """Base of the errors a workflow step raises on purpose."""

    code = "workflow_error"


class InsufficientInventory(WorkflowError):  # the state machine catches this exact name
    """Not enough stock for at least one line (or the hold is gone when it should be committed)."""


class PaymentGatewayTimeout(WorkflowError):  # the state machine retries this exact name
    """The gateway did not answer in time; nothing was charged, the step may be retried."""


class PaymentPendingTooLong(WorkflowError):  # the state machine catches this exact name
    """The gateway still says pending after ``PAYMENT_CHECK_ROUNDS`` status checks: the order gives up."""


class OrderNotFoundError(WorkflowError):
    """A message or execution names an order that does not exist: a poison message."""


def check_processable(order: Order) -> None:
    """The rules an accepted order must still meet when the workflow picks it up.

    Raises ``ValidationError`` listing every broken rule. The HTTP layer checked the
    shape; these are the business rules that need the stored order (and the risk limit).
    """
    problems: list[FieldError] = []
    if order.status != OrderStatus.PROCESSING:
        problems.append(FieldError("status", f"is {order.status.value}, expected PROCESSING"))
    if not order.items:
        problems.append(FieldError("items", "must contain at least one item"))
    if any(line.quantity <= 0 for line in order.items):
        problems.append(FieldError("items", "every quantity must be positive"))
    total = sum((line.subtotal for line in order.items), Decimal("0"))
    if order.total_amount <= 0 or total != order.total_amount:
        problems.append(FieldError("total_amount", "must be positive and the sum of the lines"))
    if order.total_amount > MAX_ORDER_TOTAL:
        problems.append(FieldError("total_amount", f"exceeds the {MAX_ORDER_TOTAL} limit for card payments"))
    if problems:
        raise ValidationError(f"Order {order.order_id} cannot be processed", problems)
