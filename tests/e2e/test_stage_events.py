"""The running local stage's invocations and event delivery, seen only through HTTP and its AWS endpoint."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from chalicelib.config import MAX_RECEIVES
from tests.e2e.conftest import RunningStage
from tests.e2e.support import aws, reports, wait_for

pytestmark = pytest.mark.e2e

API_FUNCTION = "ecommerce-backend-local"
AUTHORIZER = "ecommerce-backend-local-jwt_auth"
ORDER_CONSUMER = "ecommerce-backend-local-process_order"


def _invocations(stage: RunningStage, function: str) -> float:
    now = datetime.now(UTC)
    points = aws(stage, "cloudwatch").get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName="Invocations",
        Dimensions=[{"Name": "FunctionName", "Value": function}],
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=1),
        Period=600,
        Statistics=["Sum"],
    )["Datapoints"]
    return float(sum(p["Sum"] for p in points))


def _login(stage: RunningStage) -> str:
    login = httpx.post(
        f"{stage.api_url}/auth/login",
        json={"email": stage.admin_email, "password": stage.admin_password},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    return str(login.json()["access_token"])


def _functions(stage: RunningStage) -> set[str]:
    return {f["FunctionName"] for f in aws(stage, "lambda").list_functions()["Functions"]}


def test_given_http_requests_then_the_api_function_and_the_authorizer_report_invocations(
    local_stage: RunningStage,
) -> None:
    token = _login(local_stage)
    orders = httpx.get(f"{local_stage.api_url}/orders", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert orders.status_code == 200, orders.text

    for function in (API_FUNCTION, AUTHORIZER):
        lines = wait_for(lambda f=function: reports(local_stage, f), timeout=10)
        assert "Billed Duration:" in lines[-1] and "Max Memory Used:" in lines[-1]
        assert wait_for(lambda f=function: _invocations(local_stage, f) >= 1, timeout=10)


def _place_order(stage: RunningStage, token: str) -> dict[str, Any]:
    products = httpx.get(f"{stage.api_url}/products", timeout=10).json()["items"]
    body = {
        "items": [{"product_id": products[0]["product_id"], "quantity": 1}],
        "shipping_address": {
            "name": "Ada Lovelace",
            "line1": "1 Analytical Way",
            "city": "London",
            "postal_code": "N1 1AA",
            "country": "GB",
        },
        "payment_method": {"type": "card", "token": "tok_success"},
    }
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
    placed = httpx.post(f"{stage.api_url}/orders", json=body, headers=headers, timeout=10)
    assert placed.status_code == 201, placed.text
    return dict(placed.json())


def test_given_an_order_placed_over_http_then_the_sqs_consumer_receives_it(local_stage: RunningStage) -> None:
    assert ORDER_CONSUMER in _functions(local_stage)
    before = len(reports(local_stage, ORDER_CONSUMER))
    _place_order(local_stage, _login(local_stage))
    wait_for(lambda: len(reports(local_stage, ORDER_CONSUMER)) > before)
    assert _invocations(local_stage, ORDER_CONSUMER) >= 1


def test_given_a_poison_order_message_then_its_third_receive_dead_letters_it_with_its_reason(
    local_stage: RunningStage,
) -> None:
    # GIVEN a message on the order queue that names no order
    assert ORDER_CONSUMER in _functions(local_stage)
    sqs = aws(local_stage, "sqs")
    queue = sqs.get_queue_url(QueueName="ecommerce-backend-order-processing-local")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="ecommerce-backend-order-processing-dlq-local")["QueueUrl"]
    marker = f"poison-{uuid.uuid4()}"
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"not": "an order", "marker": marker}))

    def in_dlq() -> list[dict[str, Any]]:
        messages = sqs.receive_message(
            QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        ).get("Messages", [])
        return [m for m in messages if marker in m["Body"]]

    # WHEN the consumer has given up on it
    [moved] = wait_for(in_dlq, timeout=30)
    sqs.delete_message(QueueUrl=dlq, ReceiptHandle=moved["ReceiptHandle"])

    # THEN the consumer parked it itself, with the reason (the redrive policy would add none),
    # on its third receive (MAX_RECEIVES), not the redrive's fourth
    attributes = {name: value["StringValue"] for name, value in moved.get("MessageAttributes", {}).items()}
    assert attributes.get("ErrorType") == "ValidationError", moved
    assert attributes.get("ErrorMessage") == "order_id: is missing or not an order id", attributes
    assert attributes.get("ReceiveCount") == str(MAX_RECEIVES), attributes
    assert json.loads(moved["Body"]) == {"not": "an order", "marker": marker}


def test_given_a_schedule_or_rule_trigger_through_the_aws_endpoint_then_lambda_targets_run(
    local_stage: RunningStage,
) -> None:
    """Through the endpoint only: a rule created with put_rule, fired at once by its Scheduled Event.

    As on AWS, EventBridge may invoke the function only once the function's policy lets it
    (``lambda:AddPermission`` for ``events.amazonaws.com`` and the rule): first it is refused.
    """
    events = aws(local_stage, "events")
    target = f"arn:aws:lambda:us-east-1:123456789012:function:{AUTHORIZER}"
    rule_arn = events.put_rule(Name=f"e2e-tick-{uuid.uuid4().hex[:8]}", ScheduleExpression="rate(1 day)")["RuleArn"]
    events.put_targets(
        Rule=rule_arn.rsplit("/", 1)[-1],
        Targets=[
            {
                "Id": "1",
                "Arn": target,
                "Input": json.dumps({"type": "TOKEN", "authorizationToken": "x", "methodArn": "a"}),
            }
        ],
    )
    fire = [{"Source": "aws.events", "DetailType": "Scheduled Event", "Detail": "{}", "Resources": [rule_arn]}]
    before = len(reports(local_stage, AUTHORIZER))
    # WHEN the rule fires before the function's policy allows EventBridge
    events.put_events(Entries=fire)
    # THEN the delivery is refused, and the stage's IAM report says who was refused what, and why
    refusal = wait_for(lambda: _refusal(local_stage, "events.amazonaws.com", rule_arn))
    assert (refusal["action"], refusal["resource"]) == ("lambda:InvokeFunction", target)
    assert refusal["reason"] == "no resource-based policy allows the lambda:InvokeFunction action"
    assert len(reports(local_stage, AUTHORIZER)) == before
    # WHEN the permission is added, as it must be on AWS, and the rule fires again
    aws(local_stage, "lambda").add_permission(
        FunctionName=AUTHORIZER,
        StatementId=f"events-{uuid.uuid4().hex[:8]}",
        Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
        SourceArn=rule_arn,
    )
    events.put_events(Entries=fire)
    # THEN the function runs
    wait_for(lambda: len(reports(local_stage, AUTHORIZER)) > before)


def _refusal(stage: RunningStage, principal: str, caller: str) -> dict[str, Any] | None:
    """The latest refusal the stage's IAM logged for ``principal`` acting for ``caller``."""
    report = httpx.get(f"{stage.aws_endpoint}/_localstage/iam", timeout=5).json()
    found = [d for d in report["denied"] if d["principal"] == principal and d["caller"] == caller]
    return found[-1] if found else None


def test_given_a_message_published_to_the_notifications_topic_then_the_sns_handler_records_it(
    local_stage: RunningStage,
) -> None:
    token = _login(local_stage)
    order = _place_order(local_stage, token)
    topic = next(
        t["TopicArn"]
        for t in aws(local_stage, "sns").list_topics()["Topics"]
        if t["TopicArn"].endswith(":ecommerce-backend-notifications-local")
    )
    aws(local_stage, "sns").publish(
        TopicArn=topic, Message=json.dumps({"type": "out_of_stock", "order_id": order["order_id"]})
    )

    def recorded() -> bool:
        current = httpx.get(
            f"{local_stage.api_url}/orders/{order['order_id']}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()
        return "out_of_stock" in current["notifications"]

    assert wait_for(recorded)


def test_given_a_failed_execution_event_on_the_bus_then_the_workflow_handler_alerts_operations(
    local_stage: RunningStage,
) -> None:
    sns, sqs = aws(local_stage, "sns"), aws(local_stage, "sqs")
    alerts = next(
        t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":ecommerce-backend-alerts-local")
    )
    inbox = sqs.create_queue(QueueName=f"e2e-alerts-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=alerts, Protocol="sqs", Endpoint=inbox_arn)
    execution_arn = f"arn:aws:states:us-east-1:123456789012:execution:elsewhere:{uuid.uuid4().hex}"
    detail = {"executionArn": execution_arn, "name": "not-an-order", "status": "FAILED", "input": "{}"}
    aws(local_stage, "events").put_events(
        Entries=[
            {
                "Source": "aws.states",
                "DetailType": "Step Functions Execution Status Change",
                "Detail": json.dumps(detail),
            }
        ]
    )

    def alerted() -> bool:
        messages = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        return any(execution_arn in m["Body"] for m in messages)

    assert wait_for(alerted)
