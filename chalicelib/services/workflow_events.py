"""Execution status changes (the seed's ``handle_workflow_event``): no order is left behind.

An execution that fails, times out or is aborted may have stopped anywhere, even
between a charge and the next state. Running the saga's compensation makes the
outcome certain: whatever was charged is refunded, whatever was held is returned,
and the order ends ``FAILED``. Orders the workflow had already failed for a business
reason (declined, out of stock, invalid) keep that reason and raise no alert; a
technical failure (``WORKFLOW_FAILED``) alerts the operations topic.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Mapping

from chalicelib.domain.orders import FailureReason
from chalicelib.domain.ports import TopicPublisher
from chalicelib.services.compensation import Compensations

log = logging.getLogger(__name__)

STOPPED = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})


def execution_order_id(detail: Mapping[str, Any]) -> str | None:
    """The order an execution ran for: its name, else its input's ``order_id``."""
    name = detail.get("name")
    if isinstance(name, str) and name.startswith("ord_"):
        return name
    try:
        order_id = json.loads(detail.get("input") or "{}").get("order_id")
    except (ValueError, AttributeError):
        return None
    return order_id if isinstance(order_id, str) else None


class WorkflowMonitor:
    def __init__(self, compensations: Compensations, alerts: TopicPublisher, state_machine_arn: str) -> None:
        self._compensations = compensations
        self._alerts = alerts
        self._state_machine_arn = state_machine_arn

    def handle(self, detail: Mapping[str, Any]) -> dict[str, Any]:
        """React to one "Step Functions Execution Status Change" event's ``detail``."""
        status = str(detail.get("status", ""))
        arn = detail.get("stateMachineArn")
        if status not in STOPPED or (self._state_machine_arn and arn and arn != self._state_machine_arn):
            return {"action": "ignored", "status": status}
        order_id = execution_order_id(detail)
        if order_id is None:
            self._alert(detail, None, "execution names no order")
            return {"action": "alerted", "status": status}
        outcome = self._compensations.compensate(order_id)
        if outcome.get("failure_reason") == FailureReason.WORKFLOW_FAILED.value:
            self._alert(detail, order_id, f"execution {status}; order failed and compensated")
            return {"action": "alerted", "status": status, **outcome}
        return {"action": "compensated", "status": status, **outcome}

    def _alert(self, detail: Mapping[str, Any], order_id: str | None, summary: str) -> None:
        log.warning("workflow alert for %s: %s", order_id, summary)
        self._alerts.publish(
            f"Order workflow {detail.get('status')} - {order_id}",
            {
                "type": "workflow_alert",
                "order_id": order_id,
                "status": detail.get("status"),
                "execution_arn": detail.get("executionArn"),
                "error": detail.get("error"),
                "cause": str(detail.get("cause") or "")[:1000],
                "summary": summary,
            },
        )
