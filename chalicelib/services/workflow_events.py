"""Execution status changes (the seed's ``handle_workflow_event``): no order is left behind.

An execution that fails, times out or is aborted may have stopped anywhere, even
between a charge and the next state. Running the saga's compensation makes the
outcome certain: whatever was charged is refunded, whatever was held is returned,
and the order ends ``FAILED``. Orders the workflow had already failed for a business
reason (declined, out of stock, invalid) keep that reason and raise no alert; a
technical failure (``WORKFLOW_FAILED``) alerts the operations topic.

An order may have had several executions: the first, then one per payment re-check round
(``ord_...-checkN``). Once a later round has been claimed, that round's execution owns the
order, and an older execution that stops afterwards (an operator aborting it, say) is
superseded: compensating for it would fail an order the current execution may still
complete. Its event changes nothing (``superseded``); the current execution's own stop is
reported, and compensated, in turn. An event whose round cannot be told is compensated, as
before.
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.domain.events import ExecutionStatusChange
from chalicelib.domain.orders import FailureReason
from chalicelib.domain.ports import PaymentRecheckQueue, TopicPublisher
from chalicelib.services.compensation import Compensations

log = logging.getLogger(__name__)

STOPPED = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})


class WorkflowMonitor:
    def __init__(
        self,
        compensations: Compensations,
        alerts: TopicPublisher,
        state_machine_arn: str,
        rechecks: PaymentRecheckQueue,
    ) -> None:
        self._compensations = compensations
        self._alerts = alerts
        self._state_machine_arn = state_machine_arn
        self._rechecks = rechecks  # which round's execution owns an order now

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
        if change.round is not None:
            current = self._rechecks.latest_round(order_id)
            if change.round < current:
                log.info(
                    "order %s: execution %s of round %d %s after round %d took over; nothing to undo",
                    order_id, change.execution_arn, change.round, status, current,
                )  # fmt: skip
                return {"action": "superseded", "status": status, "round": change.round, "current_round": current}
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
