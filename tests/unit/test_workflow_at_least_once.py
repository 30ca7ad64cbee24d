"""At least once is safe: every task, a whole execution and a payment re-check, each run twice.

Express workflows and SQS deliver at least once, so nothing here may depend on running once:
each test runs the same thing twice with the same input and checks that the order, the stock,
the hold and the payment end as after one run, with at most one charge.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chalicelib.adapters.payment_rechecks import InMemoryPaymentRechecks
from chalicelib.adapters.pipeline_messaging import RecordingTopic, RecordingWorkflow
from chalicelib.bootstrap import Container, use_container
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.events import ExecutionStatusChange
from chalicelib.domain.orders import Order, OrderStatus
from chalicelib.domain.pipeline import (
    PAYMENT_CHECK_ROUNDS,
    HoldStatus,
    InsufficientInventory,
    PaymentPendingTooLong,
    execution_input,
)
from chalicelib.entrypoints.pipeline import execution_status_change, payment_recheck_queue
from tests.conftest import memory_settings
from tests.pipeline_helpers import add_product, place, stock

pytestmark = pytest.mark.unit


@pytest.fixture
def shop() -> Iterator[Container]:
    built = Container(memory_settings(PAYMENT_WAIT_SECONDS="2"))
    use_container(built)
    yield built
    use_container(None)


def started(shop: Container, token: str = "tok_success", quantity: int = 2, on_shelf: int = 5) -> tuple[Order, str]:
    product = add_product(shop, stock=on_shelf)
    order = place(shop, (product, quantity), token=token)
    assert shop.order_intake.start(order.order_id) is True
    return order, product


def state(shop: Container, order: Order, product: str) -> tuple[Any, ...]:
    """Everything a step may change: the order's status and reason, the hold, the stock, the payment."""
    found = shop.order_progress.get(order.order_id)
    payment = shop.payment_gateway.get(order.order_id)
    assert found is not None
    return (
        found.status,
        found.failure_reason,
        shop.inventory.hold_status(order.order_id),
        stock(shop, product),
        None if payment is None else (payment.status, payment.charges, payment.status_checks),
    )


def twice(step: Callable[[], Any]) -> tuple[Any, Any]:
    """Run ``step`` twice; a business error counts as its answer, both times."""
    answers = []
    for _ in range(2):
        try:
            answers.append(step())
        except (ValidationError, InsufficientInventory, PaymentPendingTooLong) as exc:
            answers.append(type(exc).__name__)
    return answers[0], answers[1]


def test_given_each_forward_step_when_run_twice_then_the_same_state_and_at_most_one_charge(shop: Container) -> None:
    # GIVEN an order the workflow has started
    order, product = started(shop)
    steps, oid = shop.workflow_steps, order.order_id
    forward: list[tuple[str, Callable[[], Any]]] = [
        ("validate", lambda: steps.validate(oid)),
        ("check_inventory", lambda: steps.check_inventory(oid)),
        ("process_payment", lambda: steps.process_payment(oid)),
        ("reserve_inventory", lambda: steps.reserve_inventory(oid)),
        ("send_confirmation", lambda: steps.send_confirmation(oid)),
        ("schedule_shipping", lambda: steps.schedule_shipping(oid)),
        ("complete", lambda: steps.complete(oid)),
    ]
    for name, step in forward:
        # WHEN a step runs, then runs again with the same input (a Retry, a duplicated execution)
        step()
        after_once = state(shop, order, product)
        step()
        # THEN the second run changed nothing
        assert state(shop, order, product) == after_once, name
    assert state(shop, order, product) == (OrderStatus.COMPLETED, None, "COMMITTED", 3, ("success", 1, 0))


@pytest.mark.parametrize(
    ("token", "compensation", "reason"),
    [
        ("tok_declined", "handle_payment_failure", "PAYMENT_FAILED"),
        ("tok_success", "refund_payment", "OUT_OF_STOCK"),
        ("tok_success", "compensate", "WORKFLOW_FAILED"),
        ("tok_pending", "handle_payment_failure", "PAYMENT_FAILED"),
    ],
)
def test_given_each_compensation_when_run_twice_then_it_gives_back_once(
    shop: Container, token: str, compensation: str, reason: str
) -> None:
    # GIVEN an order held and charged (or declined, or pending)
    order, product = started(shop, token=token)
    shop.workflow_steps.check_inventory(order.order_id)
    shop.workflow_steps.process_payment(order.order_id)
    # WHEN its compensation runs twice
    run = getattr(shop.compensations, compensation)
    first, second = twice(lambda: run(order.order_id))
    # THEN both answer the same, the stock is back once, nothing stays charged, the reason is the first one's
    assert first == second
    status, failure, hold, on_shelf, payment = state(shop, order, product)
    assert (status, failure, hold, on_shelf) == (OrderStatus.FAILED, reason, "RELEASED", 5)
    assert payment is not None and payment[0] in ("failed", "refunded", "voided")


def run_execution(shop: Container, order_id: str) -> str:
    """The state machine's paths over the in-memory adapters: validate .. complete, or the matching compensation."""
    steps, compensations = shop.workflow_steps, shop.compensations
    try:
        steps.validate(order_id)
    except ValidationError:
        return str(compensations.reject(order_id)["status"])
    try:
        steps.check_inventory(order_id)
    except InsufficientInventory:
        return str(compensations.notify_out_of_stock(order_id)["status"])
    status = steps.process_payment(order_id)["paymentStatus"]
    if status == "failed":
        return str(compensations.handle_payment_failure(order_id)["status"])
    if status == "pending":
        return str(shop.payment_rechecks.await_payment(order_id, 0)["next_round"])
    try:
        steps.reserve_inventory(order_id)
    except InsufficientInventory:
        return str(compensations.refund_payment(order_id)["status"])
    steps.send_confirmation(order_id)
    steps.schedule_shipping(order_id)
    return str(steps.complete(order_id)["status"])


@pytest.mark.parametrize(
    ("token", "quantity", "outcome"),
    [
        ("tok_success", 2, (OrderStatus.COMPLETED, None, "COMMITTED", 3, ("success", 1, 0))),
        ("tok_declined", 2, (OrderStatus.FAILED, "PAYMENT_FAILED", "RELEASED", 5, ("failed", 0, 0))),
        ("tok_success", 9, (OrderStatus.FAILED, "OUT_OF_STOCK", None, 5, None)),
    ],
)
def test_given_an_execution_delivered_twice_when_both_run_then_one_outcome_and_one_charge(
    shop: Container, token: str, quantity: int, outcome: tuple[Any, ...]
) -> None:
    # GIVEN an order whose execution Step Functions delivers twice (Express is at least once)
    order, product = started(shop, token=token, quantity=quantity)
    # WHEN both run, one after the other
    run_execution(shop, order.order_id)
    first = state(shop, order, product)
    run_execution(shop, order.order_id)
    # THEN the second changed nothing: one outcome, one charge at most, the stock moved once
    assert state(shop, order, product) == first == outcome


def record(message_id: str, body: str, receive_count: int = 1) -> dict[str, Any]:
    """One entry of Lambda's SQS event."""
    return {"messageId": message_id, "body": body, "attributes": {"ApproximateReceiveCount": str(receive_count)}}


def recheck(message_id: str, order_id: str, round: int) -> dict[str, Any]:
    return record(message_id, f'{{"order_id": "{order_id}", "round": {round}}}')


def consume(shop: Container, *records: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """The re-check queue's consumer, as app.py wires it."""
    return payment_recheck_queue(records, shop.payment_rechecks, shop.payment_recheck_dead_letters)


def test_given_a_recheck_delivered_twice_when_consumed_then_the_workflow_resumes_once(shop: Container) -> None:
    # GIVEN an order whose payment is pending, and its re-check of round 1 sent twice (the task ran twice)
    order, _ = started(shop, token="tok_pending")
    assert run_execution(shop, order.order_id) == "1"
    shop.payment_rechecks.await_payment(order.order_id, 0)
    queue = shop.payment_rechecks._queue
    assert isinstance(queue, InMemoryPaymentRechecks)
    assert queue.scheduled == [(order.order_id, 1, 2), (order.order_id, 1, 2)]
    # WHEN both copies are consumed
    answer = consume(shop, recheck("m1", order.order_id, 1), recheck("m2", order.order_id, 1))
    # THEN one execution resumes the order at the status check; the copy starts nothing and is not retried
    assert answer == {"batchItemFailures": []}
    workflow = shop.workflow_engine
    assert isinstance(workflow, RecordingWorkflow)
    resumed = {name: payload for name, payload in workflow.executions.items() if name != order.order_id}
    assert list(resumed) == [f"{order.order_id}-check1"]
    assert workflow.calls.count(f"{order.order_id}-check1") == 1  # the claim, not the name, stopped the copy
    assert resumed[f"{order.order_id}-check1"]["resume"] == "payment_check"
    assert resumed[f"{order.order_id}-check1"]["payment_round"] == 1


def test_given_a_recheck_whose_consumer_failed_after_claiming_when_redelivered_then_it_resumes(
    shop: Container,
) -> None:
    # GIVEN a re-check claimed by a delivery whose Lambda then failed (the claim is kept)
    order, _ = started(shop, token="tok_pending")
    run_execution(shop, order.order_id)
    assert shop.payment_rechecks._queue.claim(order.order_id, 1, "m1") is True
    # WHEN SQS redelivers that same message
    resumed = shop.payment_rechecks.resume(order.order_id, 1, "m1")
    # THEN it resumes the order (a copy with another message id would not)
    assert resumed is True
    assert shop.payment_rechecks.resume(order.order_id, 1, "m2") is False


def test_given_a_status_check_asked_twice_in_one_round_when_pending_for_two_rounds_then_it_counts_once(
    shop: Container,
) -> None:
    # GIVEN a payment the gateway approves at its second status check
    order, product = started(shop, token="tok_pending_2")
    run_execution(shop, order.order_id)
    steps = shop.workflow_steps
    # WHEN round 1's check runs twice, THEN both say pending (the duplicate did not count as round 2)
    first, second = twice(lambda: steps.check_payment_status(order.order_id, 1))
    assert first == second and first["paymentStatus"] == "pending"
    assert state(shop, order, product)[4] == ("pending", 0, 1)
    # and round 2 approves it, once however often it is asked
    first, second = twice(lambda: steps.check_payment_status(order.order_id, 2))
    assert first == second and first["paymentStatus"] == "success"
    assert state(shop, order, product)[4] == ("success", 1, 2)


def test_given_a_payment_pending_after_the_last_round_when_awaited_then_it_gives_up(shop: Container) -> None:
    order, product = started(shop, token="tok_pending_99")
    run_execution(shop, order.order_id)
    # WHEN the last round still finds it pending, THEN AwaitPayment raises for PaymentFailed to void and release
    with pytest.raises(PaymentPendingTooLong):
        shop.payment_rechecks.await_payment(order.order_id, PAYMENT_CHECK_ROUNDS)
    shop.compensations.handle_payment_failure(order.order_id)
    assert state(shop, order, product) == (OrderStatus.FAILED, "PAYMENT_FAILED", "RELEASED", 5, ("voided", 0, 0))


@pytest.mark.parametrize("body", ['{"order_id": "ord_1", "round": 0}', '{"order_id": "x", "round": 1}', "[]", "{"])
def test_given_a_malformed_recheck_when_consumed_then_it_is_retried_and_dead_lettered_not_resumed(
    shop: Container, body: str
) -> None:
    answer = consume(shop, record("bad", body))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "bad"}]}


def test_given_a_recheck_that_fails_for_good_when_dead_lettered_then_its_order_is_compensated(shop: Container) -> None:
    # GIVEN an order waiting on a pending payment, and a re-check of it no consumer can process (round 0)
    order, product = started(shop, token="tok_pending_99")
    run_execution(shop, order.order_id)
    body = f'{{"order_id": "{order.order_id}", "round": 0}}'
    # WHEN its last receive fails too
    answer = consume(shop, record("m9", body, 3))
    # THEN it is dead-lettered with its reason and the order does not keep its stock: voided, released, failed
    assert answer == {"batchItemFailures": []}
    assert state(shop, order, product) == (OrderStatus.FAILED, "WORKFLOW_FAILED", "RELEASED", 5, ("voided", 0, 0))


def stopped(order_id: str, name: str, round: int) -> ExecutionStatusChange:
    """An operator's abort of execution ``name``, as EventBridge reports it (the workflow's own input)."""
    payload = execution_input(order_id, order_id, 2, round)
    return execution_status_change({"status": "ABORTED", "name": name, "input": json.dumps(payload)})


def test_given_a_stale_execution_stopping_after_the_next_round_took_over_when_reported_then_nothing_is_undone(
    shop: Container,
) -> None:
    # GIVEN a pending payment whose round-1 re-check has resumed the workflow (the first execution is stale)
    order, product = started(shop, token="tok_pending")
    assert run_execution(shop, order.order_id) == "1"
    shop.payment_rechecks.await_payment(order.order_id, 0)
    assert shop.payment_rechecks.resume(order.order_id, 1, "m1") is True
    before = state(shop, order, product)
    # WHEN the first execution is aborted and its status event arrives
    outcome = shop.workflow_monitor.handle(stopped(order.order_id, order.order_id, 0))
    # THEN the order is left to the round-1 execution: nothing refunded, released or failed, nobody paged
    assert outcome == {"action": "superseded", "status": "ABORTED", "round": 0, "current_round": 1}
    assert state(shop, order, product) == before and before[0] == OrderStatus.PROCESSING
    alerts = shop.alerts_topic
    assert isinstance(alerts, RecordingTopic) and alerts.messages == []
    # AND the current execution stopping is compensated, as any stopped execution is
    outcome = shop.workflow_monitor.handle(stopped(order.order_id, f"{order.order_id}-check1", 1))
    assert outcome["action"] == "alerted" and outcome["failure_reason"] == "WORKFLOW_FAILED"
    assert state(shop, order, product)[2:4] == (HoldStatus.RELEASED, 5)
