"""What the order pipeline's event handlers hand the services: plain values, no AWS envelopes.

The entry layer (``chalicelib/entrypoints``) reads Lambda's SQS records, the EventBridge
envelope inside an SQS body, the SNS message and the Step Functions status event, and
builds these. A service never sees ``Records``, ``detail-type`` or ``batchItemFailures``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from chalicelib.domain.pipeline import NotificationType


@dataclass(frozen=True)
class PipelineEvent:
    """One event of the stage's bus: its detail type (``Order Created``...) and its detail."""

    detail_type: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CustomerNotification:
    """One message on the notifications topic: which notification, for which order and customer."""

    kind: NotificationType
    order_id: str
    customer_id: str | None = None


@dataclass(frozen=True)
class ExecutionStatusChange:
    """A workflow execution's new status, and the order it ran for (``None`` when it names none)."""

    status: str
    order_id: str | None
    state_machine_arn: str | None = None
    execution_arn: str | None = None
    error: str | None = None
    cause: str = ""
    round: int | None = None  # the payment re-check round it ran (0: the first run); None when it cannot tell
