"""The order pipeline on moto: statemachine.json run by moto's Step Functions interpreter, every task
a real handler of app.py, orders placed through the API's service and delivered from SQS."""

from __future__ import annotations

import pytest

from chalicelib.domain.orders import Order
from chalicelib.domain.pipeline import PAYMENT_CHECK_ROUNDS
from runbooks import workflow
from tests.integration.pipeline_stage import PipelineStage
from tests.pipeline_helpers import add_product, place, stock

pytestmark = pytest.mark.integration


@pytest.fixture
def stage(module_pipeline: PipelineStage) -> PipelineStage:
    """The module's pipeline stage, its queues drained and earlier tests' executions set aside."""
    module_pipeline.begin_test()
    return module_pipeline


def run(stage: PipelineStage, *lines: tuple[str, int], token: str = "tok_success") -> Order:
    """Place an order, deliver its message, wait for the workflow, route the events it published."""
    order = place(stage.container, *lines, token=token)
    assert stage.deliver_orders() == 1
    stage.wait_until_finished(order.order_id)
    stage.deliver_events()
    found = stage.container.order_progress.get(order.order_id)
    assert found is not None
    return found


def charges(stage: PipelineStage, order: Order) -> int:
    payment = stage.container.payment_gateway.get(order.order_id)
    return 0 if payment is None else payment.charges


def test_given_stock_and_tok_success_when_the_workflow_runs_then_completed_with_its_notifications(
    stage: PipelineStage,
) -> None:
    product = add_product(stage.container, stock=5)
    order = run(stage, (product, 2))
    assert (order.status, order.failure_reason) == ("COMPLETED", None)
    assert set(order.notifications) == {"order_confirmation", "payment_notification"}
    assert (stock(stage.container, product), charges(stage, order)) == (3, 1)


def test_given_an_order_over_the_risk_limit_when_the_workflow_runs_then_validation_failed_and_nothing_moved(
    stage: PipelineStage,
) -> None:
    product = add_product(stage.container, stock=5, price="6000.00")
    order = run(stage, (product, 2))
    assert (order.status, order.failure_reason) == ("FAILED", "VALIDATION_FAILED")
    assert (stock(stage.container, product), charges(stage, order)) == (5, 0)
    assert stage.executions()[0]["status"] == "FAILED"


def test_given_too_little_stock_when_the_workflow_runs_then_out_of_stock_notified_and_stock_untouched(
    stage: PipelineStage,
) -> None:
    product = add_product(stage.container, stock=1)
    order = run(stage, (product, 2))
    assert (order.status, order.failure_reason) == ("FAILED", "OUT_OF_STOCK")
    assert "out_of_stock" in order.notifications
    assert (stock(stage.container, product), charges(stage, order)) == (1, 0)


def test_given_tok_declined_when_the_workflow_runs_then_payment_failed_and_the_hold_released(
    stage: PipelineStage,
) -> None:
    product = add_product(stage.container, stock=5)
    order = run(stage, (product, 2), token="tok_declined")
    assert (order.status, order.failure_reason) == ("FAILED", "PAYMENT_FAILED")
    assert "payment_notification" in order.notifications
    assert (stock(stage.container, product), charges(stage, order)) == (5, 0)


def entered(stage: PipelineStage, execution: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in stage.history(execution) if "stateEnteredEventDetails" in e]


def resume(stage: PipelineStage, order: Order, round: int) -> Order:
    """Deliver the pending payment's re-check of ``round`` and wait for the execution it starts."""
    assert stage.deliver_rechecks() == 1
    stage.wait_until_finished(f"{order.order_id}-check{round}")
    stage.deliver_events()
    found = stage.container.order_progress.get(order.order_id)
    assert found is not None
    return found


def test_given_tok_pending_when_the_workflow_runs_then_it_ends_rechecks_outside_and_completes(
    stage: PipelineStage,
) -> None:
    # GIVEN a card the gateway leaves pending until its first status check
    product = add_product(stage.container, stock=5)
    # WHEN the workflow runs: the execution ends at AwaitPayment, the order still PROCESSING and its stock held
    waiting = run(stage, (product, 1), token="tok_pending")
    assert waiting.status == "PROCESSING" and stock(stage.container, product) == 4
    assert entered(stage, waiting.order_id)[-2:] == ["AwaitPayment", "PaymentAwaited"]
    # THEN the delayed re-check resumes it at the status check, and it completes, charged once
    order = resume(stage, waiting, 1)
    assert order.status == "COMPLETED"
    assert entered(stage, f"{order.order_id}-check1")[:3] == ["StartOrResume", "CheckPaymentStatus", "PaymentChoice"]
    assert (stock(stage.container, product), charges(stage, order)) == (4, 1)


def test_given_a_payment_pending_for_three_checks_when_rechecked_then_three_rounds_and_completed(
    stage: PipelineStage,
) -> None:
    product = add_product(stage.container, stock=5)
    order = run(stage, (product, 1), token="tok_pending_3")
    for round in (1, 2, 3):
        order = resume(stage, order, round)
    assert (order.status, stock(stage.container, product), charges(stage, order)) == ("COMPLETED", 4, 1)


def test_given_a_payment_that_never_settles_when_the_rounds_run_out_then_payment_failed_voided_and_released(
    stage: PipelineStage,
) -> None:
    product = add_product(stage.container, stock=5)
    order = run(stage, (product, 1), token="tok_pending_99")
    for round in range(1, PAYMENT_CHECK_ROUNDS + 1):
        order = resume(stage, order, round)
    assert (order.status, order.failure_reason) == ("FAILED", "PAYMENT_FAILED")
    payment = stage.container.payment_gateway.get(order.order_id)
    assert payment is not None and (payment.status, payment.charges) == ("voided", 0)
    assert stock(stage.container, product) == 5


def test_given_tok_gateway_timeout_when_the_workflow_runs_then_the_retry_completes_it_charging_once(
    stage: PipelineStage,
) -> None:
    product = add_product(stage.container, stock=5)
    order = run(stage, (product, 1), token="tok_gateway_timeout")
    assert order.status == "COMPLETED"
    failures = [e for e in stage.history(order.order_id) if e["type"] == "LambdaFunctionFailed"]
    assert [f["lambdaFunctionFailedEventDetails"]["error"] for f in failures] == ["PaymentGatewayTimeout"]
    assert charges(stage, order) == 1


def start_again(stage: PipelineStage, order: Order, name: str) -> None:
    """What Express may do and Standard could not: a second execution of the same order, same input."""
    sfn = stage.client("stepfunctions")
    first = f"{stage.outputs['STATE_MACHINE_ARN'].replace(':stateMachine:', ':execution:')}:{order.order_id}"
    payload = sfn.describe_execution(executionArn=first)["input"]
    sfn.start_execution(stateMachineArn=stage.outputs["STATE_MACHINE_ARN"], name=name, input=payload)


@pytest.mark.parametrize(
    ("token", "expected"),
    [("tok_success", ("COMPLETED", None, 3, 1)), ("tok_declined", ("FAILED", "PAYMENT_FAILED", 5, 0))],
)
def test_given_an_execution_delivered_twice_concurrently_when_both_run_then_one_outcome_and_one_charge(
    stage: PipelineStage, token: str, expected: tuple[object, ...]
) -> None:
    # GIVEN an order whose execution starts, and a duplicate of it started at once
    product = add_product(stage.container, stock=5)
    order = place(stage.container, (product, 2), token=token)
    assert stage.deliver_orders() == 1
    start_again(stage, order, f"{order.order_id}-duplicate")
    # WHEN both run to their end
    stage.wait_until_finished(order.order_id)
    stage.wait_until_finished(f"{order.order_id}-duplicate")
    found = stage.container.order_progress.get(order.order_id)
    # THEN one outcome, the stock moved once, at most one charge
    assert found is not None
    assert (found.status, found.failure_reason, stock(stage.container, product), charges(stage, found)) == expected


def test_given_a_recheck_sent_twice_when_both_arrive_then_one_resumed_execution_and_one_charge(
    stage: PipelineStage,
) -> None:
    # GIVEN a pending order whose re-check of round 1 was sent twice (AwaitPayment ran twice)
    product = add_product(stage.container, stock=5)
    order = run(stage, (product, 1), token="tok_pending")
    stage.container.payment_rechecks._queue.schedule(order.order_id, 1, 1)
    # WHEN the consumer receives both
    delivered = 0
    while delivered < 2:
        got = stage.deliver_rechecks()
        assert got, "both copies should arrive"
        delivered += got
    stage.wait_until_finished(f"{order.order_id}-check1")
    # THEN one execution resumed it, it completed, charged once
    names = [e["name"] for e in stage.executions()]
    assert sorted(names) == sorted([order.order_id, f"{order.order_id}-check1"])
    found = stage.container.order_progress.get(order.order_id)
    assert found is not None and found.status == "COMPLETED" and charges(stage, found) == 1


def test_given_an_express_execution_when_the_runbook_reads_its_logs_then_it_shows_the_orders_steps(
    stage: PipelineStage,
) -> None:
    # GIVEN an order the Express workflow completed (its log group is the stage's, logging at level ALL)
    product = add_product(stage.container, stock=5)
    order = run(stage, (product, 1))
    # WHEN the workflow-inspection runbook lists the executions and reads the order's
    sfn, arn = stage.client("stepfunctions"), stage.outputs["STATE_MACHINE_ARN"]
    found = [e for e in workflow.list_executions(sfn, arn, logs=stage.client("logs")) if e["name"] == order.order_id]
    trace = workflow.parse_history(workflow.get_history(sfn, found[0]["executionArn"]), found[0])
    # THEN its steps, in order, come from the execution log, and the order id from the execution's name
    assert found[0]["status"] == "SUCCEEDED" and trace.order_id == order.order_id
    names = [span.name for span in trace.spans]
    assert names[:4] == ["StartOrResume", "ValidateOrder", "CheckInventory", "ProcessPayment"]
    assert {"ReserveInventory", "SendConfirmation", "ScheduleShipping", "CompleteOrder"} <= set(names)
