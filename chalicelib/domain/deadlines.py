"""Deadlines of orders in flight: by when a ``PROCESSING`` order must have moved again.

Express workflows send no "Execution Status Change" event, so an execution that hits its
``TimeoutSeconds`` (or whose failure path itself fails) would leave its order ``PROCESSING``
forever, its stock held and maybe its card charged. Every start of an execution (intake, a
payment re-check) and every scheduled re-check therefore records a deadline on the order; the
watchdog (``services/watchdog.py``) compensates an order found past it.

A live execution started at ``t`` ends by ``t + timeout``; a pending payment's round resumes
after ``wait`` and then has ``timeout`` again. The margin covers clock skew between Lambda
hosts, SQS delivering a delayed message late and the resumed execution's own start.

    policy = DeadlinePolicy(timeout_seconds=300, margin_seconds=120)
    policy.for_execution(1_000)              # 1_420
    policy.for_payment_round(1_000, 300)     # 1_720
"""

from __future__ import annotations

from dataclasses import dataclass

# statemachine.json's TimeoutSeconds (tests/unit/test_watchdog.py keeps them equal).
WORKFLOW_TIMEOUT_SECONDS = 300
DEFAULT_DEADLINE_MARGIN_SECONDS = 120
DEFAULT_SWEEP_INTERVAL_MINUTES = 5


@dataclass(frozen=True)
class DeadlinePolicy:
    """How long an order may stay ``PROCESSING`` after each start or scheduled re-check."""

    timeout_seconds: int = WORKFLOW_TIMEOUT_SECONDS
    margin_seconds: int = DEFAULT_DEADLINE_MARGIN_SECONDS

    def for_execution(self, now: int) -> int:
        """An execution starts (or resumes) at ``now`` (epoch seconds)."""
        return now + self.timeout_seconds + self.margin_seconds

    def for_payment_round(self, now: int, wait_seconds: int) -> int:
        """``AwaitPayment`` schedules the next status check ``wait_seconds`` from ``now``."""
        return now + wait_seconds + self.timeout_seconds + self.margin_seconds


@dataclass(frozen=True)
class OverdueOrder:
    """An entry of the deadline index: ``PROCESSING`` past its deadline, or ``FAILED`` with compensation owed."""

    order_id: str
    status: str
    deadline: int
