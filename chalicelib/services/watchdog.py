"""The Express workflow's watchdog: no order is left ``PROCESSING`` with its stock held after its execution died.

Standard workflows announced a timed-out, failed or aborted execution ("Execution Status Change"),
and ``handle_workflow_event`` compensated its order. Express workflows announce nothing. Instead each
order in flight carries a deadline (``domain/deadlines.py``: set at intake, at every payment
re-check and when ``AwaitPayment`` schedules the next round), and this sweep, run on a schedule,
compensates every order found past it exactly as a failed workflow would: refund or void the
payment, release the hold, ``FAILED`` with ``WORKFLOW_FAILED``, the ``Order Failed`` event that tells
the customer, and an alert to operations.

One outcome even when the execution was only slow and finishes during the sweep: the order is
first *claimed* (``PROCESSING`` and past its deadline -> ``FAILED``, one conditional write), and only
then compensated. A step finishing meanwhile either won the race (the claim fails, nothing is
touched) or lost it: ``CompleteOrder`` cannot move a ``FAILED`` order, a refund or release already
made leaves its marker so a late charge or hold is refused. The claim keeps the deadline as the
mark "compensation owed" until compensation is done, so a sweep that dies half-way is finished by
the next one; every step is idempotent.
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.domain.deadlines import DeadlinePolicy, OverdueOrder
from chalicelib.domain.errors import DomainError
from chalicelib.domain.ids import Clock, utc_now
from chalicelib.domain.orders import OrderStatus
from chalicelib.domain.ports import OrderDeadlines, TopicPublisher
from chalicelib.services.compensation import Compensations

log = logging.getLogger(__name__)

SWEEP_BATCH = 100  # orders per run; more wait for the next run (the schedule is minutes apart)


class WatchdogError(DomainError):
    """Some overdue orders could not be compensated this run; they stay in the index for the next one."""


class DeadlineKeeper:
    """Records each order's deadline when an execution starts or a payment round is scheduled.

    One conditional write each, safe to repeat: a deadline only moves later (``OrderDeadlines.extend``).
    """

    def __init__(self, deadlines: OrderDeadlines, policy: DeadlinePolicy, clock: Clock = utc_now) -> None:
        self._deadlines = deadlines
        self._policy = policy
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock().timestamp())

    def execution_started(self, order_id: str) -> None:
        self._deadlines.extend(order_id, self._policy.for_execution(self._now()))

    def payment_round_scheduled(self, order_id: str, wait_seconds: int) -> None:
        self._deadlines.extend(order_id, self._policy.for_payment_round(self._now(), wait_seconds))


class WorkflowWatchdog:
    def __init__(
        self,
        deadlines: OrderDeadlines,
        compensations: Compensations,
        alerts: TopicPublisher,
        clock: Clock = utc_now,
        batch: int = SWEEP_BATCH,
    ) -> None:
        self._deadlines = deadlines
        self._compensations = compensations
        self._alerts = alerts
        self._clock = clock
        self._batch = batch

    def sweep(self) -> dict[str, Any]:
        """Compensate every order past its deadline; ``WatchdogError`` (after trying all) if any could not be.

        Example: ``sweep()`` -> ``{"overdue": 1, "compensated": ["ord_1"], "untouched": []}``.
        """
        now = int(self._clock().timestamp())
        overdue = self._deadlines.overdue(now, self._batch)
        compensated: list[str] = []
        untouched: list[str] = []
        failed: list[str] = []
        for entry in overdue:
            try:
                (compensated if self._settle(entry, now) else untouched).append(entry.order_id)
            except Exception:  # one order's failure must not stop the others; raised below for the alarm
                log.exception("watchdog: order %s could not be compensated; next run retries", entry.order_id)
                failed.append(entry.order_id)
        if failed:
            raise WatchdogError(f"{len(failed)} overdue order(s) not compensated yet: {', '.join(failed[:10])}")
        return {"overdue": len(overdue), "compensated": compensated, "untouched": untouched}

    def _settle(self, entry: OverdueOrder, now: int) -> bool:
        if entry.status == OrderStatus.PROCESSING.value and not self._deadlines.claim(entry.order_id, now):
            log.info("watchdog: order %s moved or got more time meanwhile; left alone", entry.order_id)
            return False
        outcome = self._compensations.compensate(entry.order_id)
        self._alert(entry, outcome)
        self._deadlines.settle(entry.order_id)
        log.warning("watchdog: order %s was past its deadline; compensated: %s", entry.order_id, outcome)
        return True

    def _alert(self, entry: OverdueOrder, outcome: dict[str, Any]) -> None:
        self._alerts.publish(
            f"Order workflow stalled - {entry.order_id}",
            {
                "type": "workflow_alert",
                "order_id": entry.order_id,
                "status": "TIMED_OUT",
                "deadline": entry.deadline,
                "summary": "order past its deadline with no execution moving it; failed and compensated",
                **outcome,
            },
        )
