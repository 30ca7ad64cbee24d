"""The pipeline's queues on moto: duplicates, poison messages, partial batches, concurrency, aborts."""

from __future__ import annotations

import json

import pytest

from tests.integration.pipeline_stage import PipelineStage
from tests.pipeline_helpers import add_product, place, stock

pytestmark = pytest.mark.integration


@pytest.fixture
def stage(module_pipeline: PipelineStage) -> PipelineStage:
    """The module's pipeline stage, its queues drained and earlier tests' executions set aside."""
    module_pipeline.begin_test()
    return module_pipeline


def send(stage: PipelineStage, body: str) -> None:
    stage.client("sqs").send_message(QueueUrl=stage.outputs["ORDER_QUEUE_URL"], MessageBody=body)


def visible(stage: PipelineStage, url: str) -> list[dict[str, object]]:
    """What a consumer would receive from ``url`` now, left visible (a look, not a receive)."""
    answer = stage.client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
    )
    return list(answer.get("Messages", []))


def test_given_a_duplicated_delivery_when_both_copies_are_consumed_then_one_execution_and_one_charge(
    stage: PipelineStage,
) -> None:
    order = place(stage.container, (add_product(stage.container, stock=5), 1))
    send(stage, json.dumps({"order_id": order.order_id}))  # the same order, queued a second time
    assert stage.deliver_orders() == 2
    stage.wait_until_finished(order.order_id)
    assert len(stage.executions()) == 1
    payment = stage.container.payment_gateway.get(order.order_id)
    assert payment is not None and payment.charges == 1


def test_given_a_poison_message_when_it_fails_three_receives_then_it_is_in_the_dlq_with_its_reason(
    stage: PipelineStage,
) -> None:
    body = json.dumps({"order_id": "ord_" + "f" * 32})
    send(stage, body)
    assert [stage.deliver_orders() for _ in range(3)] == [0, 0, 1]
    assert visible(stage, stage.outputs["ORDER_QUEUE_URL"]) == []
    (dead,) = visible(stage, stage.outputs["ORDER_DLQ_URL"])
    assert dead["Body"] == body
    assert dead["MessageAttributes"]["ErrorType"]["StringValue"] == "OrderNotFoundError"  # type: ignore[index]


def test_given_a_batch_with_one_bad_message_when_delivered_then_only_that_message_comes_back(
    stage: PipelineStage,
) -> None:
    # Fails if the deployment's ReportBatchItemFailures is missing: the poller then deletes the whole batch.
    order = place(stage.container, (add_product(stage.container, stock=5), 1))
    send(stage, "not json")
    assert stage.deliver_orders() == 1
    assert [m["Body"] for m in visible(stage, stage.outputs["ORDER_QUEUE_URL"])] == ["not json"]
    assert stage.wait_until_finished(order.order_id)["status"] == "SUCCEEDED"


def test_given_stock_s_when_n_orders_race_then_exactly_s_complete_the_rest_fail_out_of_stock_and_stock_is_zero(
    stage: PipelineStage,
) -> None:
    supply, demand = 3, 8
    product = add_product(stage.container, stock=supply)
    orders = [place(stage.container, (product, 1)) for _ in range(demand)]
    assert stage.deliver_orders() == demand
    for order in orders:
        stage.wait_until_finished(order.order_id, timeout=30)
    outcomes = []
    for order in orders:
        found = stage.container.order_progress.get(order.order_id)
        assert found is not None
        outcomes.append((found.status.value, found.failure_reason.value if found.failure_reason else None))
    assert sorted(outcomes) == sorted([("COMPLETED", None)] * supply + [("FAILED", "OUT_OF_STOCK")] * (demand - supply))
    assert stock(stage.container, product) == 0


def test_given_an_order_waiting_on_a_pending_payment_when_an_aborted_status_event_arrives_then_compensated(
    stage: PipelineStage,
) -> None:
    # GIVEN an order whose payment is pending: its execution ended at AwaitPayment, stock held
    product = add_product(stage.container, stock=5)
    order = place(stage.container, (product, 2), token="tok_pending")
    stage.deliver_orders()
    stage.wait_until_finished(order.order_id)
    assert stock(stage.container, product) == 3
    execution_arn = stage.executions()[0]["executionArn"]
    # WHEN the status handler hears its execution died (Standard workflows send it; an operator may too)
    event = {  # the envelope EventBridge delivers (Chalice's CloudWatchEvent reads every field)
        "version": "0",
        "id": "0b5c9a6e-1111-2222-3333-444455556666",
        "account": "123456789012",
        "time": "2025-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [execution_arn],
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {
            "executionArn": execution_arn,
            "stateMachineArn": stage.outputs["STATE_MACHINE_ARN"],
            "name": order.order_id,
            "status": "ABORTED",
        },
    }
    answer = stage.invoke("handle_workflow_event", event)
    assert answer["action"] == "alerted" and answer["payment"] == "voided"
    found = stage.container.order_progress.get(order.order_id)
    assert found is not None and (found.status.value, found.failure_reason) == ("FAILED", "WORKFLOW_FAILED")
    assert stock(stage.container, product) == 5
