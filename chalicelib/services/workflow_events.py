"""Execution status changes (the seed's ``handle_workflow_event``): no order is left behind.

An execution that fails, times out or is aborted may have stopped anywhere, even
between a charge and the next state. Running the saga's compensation makes the
outcome certain: whatever was charged is refunded, whatever was held is returned,
and the order ends ``FAILED``. Orders the workflow had already failed for a business
reason (declined, out of stock, invalid) keep that reason and raise no alert; a
technical failure (``WORKFLOW_FAILED``) alerts the operations topic.
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.domain.events import ExecutionStatusChange
from chalicelib.domain.orders import FailureReason
from chalicelib.domain.ports import TopicPublisher
from chalicelib.services.compensation import Compensations

log = logging.getLogger(__name__)

STOPPED = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})


class WorkflowMonitor:
    def __init__(self, compensations: Compensations, alerts: TopicPublisher, state_machine_arn: str) -> None:
        self._compensations = compensations
        self._alerts = alerts
        self._state_machine_arn = state_machine_arn

    def handle(self, change: ExecutionStatusChange) -> dict[str, Any]:
        """React to one execution's status change (the entry layer reads it from the event's ``detail``)."""
        status = change.status
        arn = change.state_machine_arn
        if status not in STOPPED or (self._state_machine_arn and arn and arn != self._state_machine_arn):
            return {"action": "ignored", "status": status}
        order_id = change.order_id
        if order_id is None:
            self._alert(change, "execution names no order")
            return {"action": "alerted", "status": status}
        outcome = self._compensations.compensate(order_id)
        if outcome.get("failure_reason") == FailureReason.WORKFLOW_FAILED.value:
            self._alert(change, f"execution {status}; order failed and compensated")
            return {"action": "alerted", "status": status, **outcome}
        return {"action": "compensated", "status": status, **outcome}

    def _alert(self, change: ExecutionStatusChange, summary: str) -> None:
        log.warning("workflow alert for %s: %s", change.order_id, summary)
        self._alerts.publish(
            f"Order workflow {change.status} - {change.order_id}",
            {
                "type": "workflow_alert",
                "order_id": change.order_id,
                "status": change.status,
                "execution_arn": change.execution_arn,
                "error": change.error,
                "cause": change.cause[:1000],
                "summary": summary,
            },
        )
