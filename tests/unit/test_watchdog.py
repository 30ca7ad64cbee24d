"""The Express workflow's watchdog, on in-memory fakes: late orders are compensated once, live ones never.

The "execution" here is the workflow's tasks called in order (``WorkflowSteps``); an execution that
dies simply stops calling them. A settable clock stands in for time passing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.deadlines_memory import InMemoryOrderDeadlines
from chalicelib.adapters.payment_rechecks import InMemoryPaymentRechecks
from chalicelib.adapters.pipeline_messaging import RecordingTopic
from chalicelib.bootstrap import Container, use_container
from chalicelib.config import watchdog_schedule
from chalicelib.domain.deadlines import WORKFLOW_TIMEOUT_SECONDS, DeadlinePolicy, OverdueOrder
from chalicelib.domain.orders import FailureReason, InvalidTransitionError, Order, OrderStatus
from chalicelib.domain.pipeline import InsufficientInventory
from chalicelib.services.intake import OrderIntake
from chalicelib.services.payment_rechecks import PaymentRechecks
from chalicelib.services.watchdog import DeadlineKeeper, WatchdogError, WorkflowWatchdog
from infra.pipeline import STATE_MACHINE_FILE
from tests.conftest import memory_settings
from tests.pipeline_helpers import add_product, place, stock

pytestmark = pytest.mark.unit

POLICY = DeadlinePolicy(timeout_seconds=300, margin_seconds=60)
WAIT = 600  # a payment round's wait, longer than an execution's whole deadline on purpose
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EPOCH0 = int(T0.timestamp())  # the clock's start; tests move it by seconds from here


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: int) -> None:
        self.now = T0 + timedelta(seconds=seconds)


@dataclass
class Watched:
    """A shop whose intake, re-checks and watchdog share one deadline store and one clock."""

    shop: Container
    clock: Clock
    deadlines: InMemoryOrderDeadlines
    intake: OrderIntake
    rechecks: PaymentRechecks
    watchdog: WorkflowWatchdog
    alerts: RecordingTopic
    product: str = field(default="")

    def started(self, token: str = "tok_success") -> Order:
        self.product = add_product(self.shop, stock=5)
        order = place(self.shop, (self.product, 2), token=token)
        assert self.intake.start(order.order_id) is True
        return order

    def status(self, order: Order) -> tuple[OrderStatus, FailureReason | None]:
        found = self.shop.order_progress.get(order.order_id)
        assert found is not None
        return found.status, found.failure_reason

    def payment(self, order: Order) -> tuple[str, int] | None:
        payment = self.shop.payment_gateway.get(order.order_id)
        return None if payment is None else (payment.status.value, payment.charges)


@pytest.fixture
def watched() -> Iterator[Watched]:
    shop = Container(memory_settings())
    use_container(shop)
    clock = Clock()
    deadlines = InMemoryOrderDeadlines(shop.order_repository, clock)
    keeper = DeadlineKeeper(deadlines, POLICY, clock)
    intake = OrderIntake(shop.order_progress, shop.workflow_engine, WAIT, keeper)
    rechecks = PaymentRechecks(
        shop.order_progress,
        InMemoryPaymentRechecks(),
        shop.workflow_engine,
        WAIT,
        shop.compensations.compensate,
        deadlines=keeper,
    )
    alerts = RecordingTopic()
    watchdog = WorkflowWatchdog(deadlines, shop.compensations, alerts, clock)
    yield Watched(shop, clock, deadlines, intake, rechecks, watchdog, alerts)
    use_container(None)


def charged_then_died(w: Watched) -> Order:
    """GIVEN an execution that held the stock and charged the card, then died (timed out, or its catch failed)."""
    order = w.started()
    steps = w.shop.workflow_steps
    steps.validate(order.order_id)
    steps.check_inventory(order.order_id)
    steps.process_payment(order.order_id)
    assert stock(w.shop, w.product) == 3 and w.payment(order) == ("success", 1)
    return order


def test_given_an_order_past_its_deadline_when_swept_twice_then_compensated_once(watched: Watched) -> None:
    order = charged_then_died(watched)
    # WHEN the watchdog sweeps after the execution's timeout and margin, then sweeps again
    watched.clock.at(POLICY.timeout_seconds + POLICY.margin_seconds)
    first = watched.watchdog.sweep()
    second = watched.watchdog.sweep()
    # THEN the order failed as a failed workflow fails it: refunded, stock back, customer told, operations paged
    assert first == {"overdue": 1, "compensated": [order.order_id], "untouched": []}
    assert watched.status(order) == (OrderStatus.FAILED, FailureReason.WORKFLOW_FAILED)
    assert watched.payment(order) == ("refunded", 1)
    assert stock(watched.shop, watched.product) == 5
    failed_events = [e for e in watched.shop.event_publisher.events if e[1] == "Order Failed"]  # type: ignore[attr-defined]
    assert [e[2]["order_id"] for e in failed_events] == [order.order_id]
    assert [m["order_id"] for _, m in watched.alerts.messages] == [order.order_id]
    # ... and only once: the second sweep finds nothing
    assert second == {"overdue": 0, "compensated": [], "untouched": []}


def test_given_an_order_not_yet_past_its_deadline_when_swept_then_untouched(watched: Watched) -> None:
    order = charged_then_died(watched)
    # WHEN the watchdog sweeps one second before the deadline
    watched.clock.at(POLICY.timeout_seconds + POLICY.margin_seconds - 1)
    swept = watched.watchdog.sweep()
    # THEN nothing moved: still PROCESSING, stock held, card charged, nobody paged
    assert swept["overdue"] == 0
    assert watched.status(order) == (OrderStatus.PROCESSING, None)
    assert stock(watched.shop, watched.product) == 3 and watched.payment(order) == ("success", 1)
    assert watched.alerts.messages == []


def test_given_a_pending_payment_round_when_swept_then_untouched_until_the_rounds_deadline(watched: Watched) -> None:
    # GIVEN a pending payment: AwaitPayment scheduled the next status check WAIT seconds out, at t = 10
    order = watched.started(token="tok_pending_99")
    steps = watched.shop.workflow_steps
    steps.validate(order.order_id)
    steps.check_inventory(order.order_id)
    assert steps.process_payment(order.order_id)["paymentStatus"] == "pending"
    watched.clock.at(10)
    watched.rechecks.await_payment(order.order_id, 0)
    round_deadline = POLICY.for_payment_round(EPOCH0 + 10, WAIT) - EPOCH0
    # WHEN swept long after the first execution's own deadline, but before the round's
    watched.clock.at(round_deadline - 1)
    assert watched.watchdog.sweep()["overdue"] == 0
    # THEN the order waits, PROCESSING with its hold
    assert watched.status(order) == (OrderStatus.PROCESSING, None)
    assert stock(watched.shop, watched.product) == 3
    # WHEN the re-check never came (lost, or its execution died) and the round's deadline passed
    watched.clock.at(round_deadline)
    assert watched.watchdog.sweep()["compensated"] == [order.order_id]
    # THEN the pending payment is voided (it can no longer be approved) and the stock is back
    assert watched.status(order) == (OrderStatus.FAILED, FailureReason.WORKFLOW_FAILED)
    assert watched.payment(order) == ("voided", 0)  # a pending payment was never captured
    assert stock(watched.shop, watched.product) == 5


def test_given_a_resumed_round_when_its_execution_runs_then_the_deadline_follows_it(watched: Watched) -> None:
    # GIVEN a pending payment whose re-check resumes the order at t = WAIT + 5
    order = watched.started(token="tok_pending")
    watched.shop.workflow_steps.check_inventory(order.order_id)
    watched.shop.workflow_steps.process_payment(order.order_id)
    watched.rechecks.await_payment(order.order_id, 0)
    watched.clock.at(WAIT + 5)
    # WHEN the round is delivered (twice: SQS is at least once)
    assert watched.rechecks.resume(order.order_id, 1, "m-1") is True
    watched.rechecks.resume(order.order_id, 1, "m-1")
    # THEN the deadline is the resumed execution's, never shortened by the copy
    assert watched.deadlines.deadline_of(order.order_id) == POLICY.for_execution(EPOCH0 + WAIT + 5)
    assert watched.deadlines.extend(order.order_id, POLICY.for_execution(EPOCH0)) is False


class FinishesDuringClaim(InMemoryOrderDeadlines):
    """The slow execution's last steps run between the sweep's query and its claim."""

    def __init__(self, inner: InMemoryOrderDeadlines, finish: Any) -> None:
        self.__dict__.update(inner.__dict__)
        self._finish = finish

    def claim(self, order_id: str, now: int) -> bool:
        self._finish(order_id)
        return super().claim(order_id, now)


def _finish(w: Watched, order_id: str) -> None:
    steps = w.shop.workflow_steps
    steps.reserve_inventory(order_id)
    steps.schedule_shipping(order_id)
    steps.complete(order_id)


def test_given_a_slow_execution_completing_before_the_claim_then_it_completes_and_nothing_is_undone(
    watched: Watched,
) -> None:
    order = charged_then_died(watched)
    # GIVEN the execution was only slow: it completes the order while the sweep is between query and claim
    racing = FinishesDuringClaim(watched.deadlines, lambda oid: _finish(watched, oid))
    watchdog = WorkflowWatchdog(racing, watched.shop.compensations, watched.alerts, watched.clock)
    watched.clock.at(POLICY.timeout_seconds + POLICY.margin_seconds)
    # WHEN the sweep runs
    swept = watchdog.sweep()
    # THEN one outcome: COMPLETED, charged once, stock taken, nothing refunded or released, nobody paged
    assert swept == {"overdue": 1, "compensated": [], "untouched": [order.order_id]}
    assert watched.status(order) == (OrderStatus.COMPLETED, None)
    assert watched.payment(order) == ("success", 1)
    assert stock(watched.shop, watched.product) == 3
    assert watched.alerts.messages == []


def test_given_a_slow_execution_completing_after_the_claim_then_it_cannot_and_the_order_fails_once(
    watched: Watched,
) -> None:
    order = charged_then_died(watched)
    watched.clock.at(POLICY.timeout_seconds + POLICY.margin_seconds)
    # GIVEN the sweep claimed and compensated the order
    watched.watchdog.sweep()
    # WHEN the slow execution goes on: its hold is gone, a FAILED order cannot complete, and its catches
    # (RefundPayment after ReserveInventory, CompensateOrder after anything else) run again
    steps = watched.shop.workflow_steps
    with pytest.raises(InsufficientInventory):
        steps.reserve_inventory(order.order_id)
    with pytest.raises(InvalidTransitionError):
        steps.complete(order.order_id)
    watched.shop.compensations.refund_payment(order.order_id)
    watched.shop.compensations.compensate(order.order_id)
    # THEN still one outcome: FAILED/WORKFLOW_FAILED, refunded, one charge, stock back
    assert watched.status(order) == (OrderStatus.FAILED, FailureReason.WORKFLOW_FAILED)
    assert watched.payment(order) == ("refunded", 1)
    assert stock(watched.shop, watched.product) == 5


class FailingTopic(RecordingTopic):
    def __init__(self) -> None:
        super().__init__()
        self.down = True

    def publish(self, subject: str, message: Any) -> None:
        if self.down:
            raise ConnectionError("alerts topic unavailable")
        super().publish(subject, message)


def test_given_a_sweep_that_dies_after_the_claim_when_the_next_runs_then_it_finishes_the_compensation(
    watched: Watched,
) -> None:
    order = charged_then_died(watched)
    watched.clock.at(POLICY.timeout_seconds + POLICY.margin_seconds)
    alerts = FailingTopic()
    watchdog = WorkflowWatchdog(watched.deadlines, watched.shop.compensations, alerts, watched.clock)
    # WHEN a sweep claims the order, then fails before it is done (the alert cannot be sent)
    with pytest.raises(WatchdogError):
        watchdog.sweep()
    assert watched.deadlines.overdue(0, 10) == [
        OverdueOrder(order.order_id, "FAILED", POLICY.for_execution(EPOCH0))
    ]  # compensation still owed, whatever the clock says
    # THEN the next sweep finishes it, once
    alerts.down = False
    assert watchdog.sweep()["compensated"] == [order.order_id]
    assert watchdog.sweep()["overdue"] == 0
    assert watched.payment(order) == ("refunded", 1) and stock(watched.shop, watched.product) == 5
    assert len(alerts.messages) == 1


def test_given_a_finished_order_when_its_deadline_passes_then_it_is_never_overdue(watched: Watched) -> None:
    order = charged_then_died(watched)
    _finish(watched, order.order_id)
    watched.clock.at(10 * POLICY.timeout_seconds)
    assert watched.watchdog.sweep()["overdue"] == 0
    assert watched.deadlines.extend(order.order_id, 10**10) is False  # a finished order gets no new deadline


def test_given_the_state_machine_then_the_deadlines_use_its_timeout() -> None:
    assert json.loads(STATE_MACHINE_FILE.read_text())["TimeoutSeconds"] == WORKFLOW_TIMEOUT_SECONDS


@pytest.mark.parametrize(("minutes", "expression"), [(None, "rate(5 minutes)"), ("1", "rate(1 minute)")])
def test_given_a_stage_interval_then_the_sweep_schedule_follows_it(minutes: str | None, expression: str) -> None:
    env = {} if minutes is None else {"WATCHDOG_INTERVAL_MINUTES": minutes}
    assert watchdog_schedule(env) == expression
