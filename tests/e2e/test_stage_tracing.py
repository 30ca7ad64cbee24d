"""X-Ray on the running local stage: one order is one trace, read back through the X-Ray API.

The trace is found twice, as an operator would: by the ``X-Amzn-Trace-Id`` the API answers with,
and by ``annotation.order_id`` in ``GetTraceSummaries``. Its documents must form one tree, from
the API Gateway stage segment down to every Lambda task of the workflow, with the hand-offs where
AWS puts them: the consumer continues the SQS message's ``AWSTraceHeader``, the execution
continues the consumer's ``StartExecution`` call, and the bus's and the topic's deliveries continue
the ``PutEvents`` and ``Publish`` calls that made them.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from tests.e2e.conftest import RunningStage
from tests.e2e.support import ADDRESS, StageShop

pytestmark = pytest.mark.e2e

PREFIX = "ecommerce-backend-local"
# The functions a successful order runs through, after the API function.
SUCCESS_PATH = (
    "process_order",
    "validate_order",
    "check_inventory",
    "process_payment",
    "reserve_inventory",
    "send_confirmation",
    "schedule_shipping",
    "complete_order",
)
# Continued through the bus (EventBridge -> SQS -> Lambda) and the notifications topic (SNS -> Lambda).
EVENT_HANDLERS = ("route_notification_events", "send_notification")


def _xray(stage: RunningStage) -> Any:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return session.client("xray", endpoint_url=stage.aws_endpoint)


def _documents(xray: Any, trace_id: str) -> list[dict[str, Any]]:
    traces = xray.batch_get_traces(TraceIds=[trace_id])["Traces"]
    return [json.loads(segment["Document"]) for trace in traces for segment in trace["Segments"]]


def _complete(documents: list[dict[str, Any]]) -> bool:
    origins = {doc.get("origin") for doc in documents}
    functions = {doc["name"] for doc in documents if doc.get("origin") == "AWS::Lambda::Function"}
    expected = {f"{PREFIX}-{name}" for name in ("complete_order", *EVENT_HANDLERS)}
    return "AWS::StepFunctions::StateMachine" in origins and expected <= functions


@pytest.fixture(scope="module")
def traced_order(local_stage: RunningStage) -> tuple[str, str, list[dict[str, Any]]]:
    """GIVEN an order placed through the API that completed; its trace id and documents once all arrived."""
    shop = StageShop(local_stage)
    body = {
        "items": [{"product_id": shop.product(), "quantity": 1}],
        "shipping_address": ADDRESS,
        "payment_method": {"type": "card", "token": "tok_success"},
    }
    answer = shop.http.post("/orders", json=body, headers=shop.buyer)
    assert answer.status_code == 201, answer.text
    order_id = answer.json()["order_id"]
    assert shop.settle(order_id)["status"] == "COMPLETED"
    trace_header = answer.headers["X-Amzn-Trace-Id"]
    trace_id = dict(part.split("=", 1) for part in trace_header.split(";"))["Root"]
    xray = _xray(local_stage)
    deadline = time.monotonic() + 20
    documents = _documents(xray, trace_id)
    while not _complete(documents) and time.monotonic() < deadline:  # the execution segment follows its end
        time.sleep(0.3)
        documents = _documents(xray, trace_id)
    return order_id, trace_id, documents


def test_given_an_order_when_its_trace_is_read_then_every_function_of_its_path_is_in_it(
    traced_order: tuple[str, str, list[dict[str, Any]]],
) -> None:
    _, trace_id, documents = traced_order
    functions = {doc["name"] for doc in documents if doc.get("origin") == "AWS::Lambda::Function"}
    assert {PREFIX} | {f"{PREFIX}-{name}" for name in (*SUCCESS_PATH, *EVENT_HANDLERS)} <= functions
    assert {doc["trace_id"] for doc in documents} == {trace_id}
    origins = [doc.get("origin") for doc in documents]
    assert origins.count("AWS::ApiGateway::Stage") == 1 and origins.count("AWS::StepFunctions::StateMachine") == 1


def test_given_an_order_trace_then_its_documents_form_one_tree_rooted_at_the_api_stage(
    traced_order: tuple[str, str, list[dict[str, Any]]],
) -> None:
    _, _, documents = traced_order
    ids = {doc["id"] for doc in documents}
    roots = [doc for doc in documents if not doc.get("parent_id")]
    assert [doc.get("origin") for doc in roots] == ["AWS::ApiGateway::Stage"]
    dangling = [
        (doc["name"], doc["parent_id"]) for doc in documents if doc.get("parent_id") and doc["parent_id"] not in ids
    ]
    assert dangling == []


def test_given_an_order_trace_then_the_hand_offs_hang_from_the_calls_that_made_them(
    traced_order: tuple[str, str, list[dict[str, Any]]],
) -> None:
    _, _, documents = traced_order
    by_id = {doc["id"]: doc for doc in documents}

    def parent_calls(origin: str, name: str) -> set[str]:
        segments = [doc for doc in documents if doc.get("origin") == origin and doc["name"] == name]
        parents = [by_id[segment["parent_id"]] for segment in segments]
        return {f"{parent['name']}.{parent.get('aws', {}).get('operation')}" for parent in parents}

    assert parent_calls("AWS::Lambda", f"{PREFIX}-process_order") == {"sqs.SendMessage"}
    assert parent_calls("AWS::StepFunctions::StateMachine", "ecommerce-backend-order-workflow-local") == {
        "states.StartExecution"
    }
    # Through EventBridge and its SQS target, and through SNS: each delivery under the call that made it.
    assert parent_calls("AWS::Lambda", f"{PREFIX}-route_notification_events") == {"events.PutEvents"}
    assert parent_calls("AWS::Lambda", f"{PREFIX}-send_notification") == {"sns.Publish"}


def test_given_an_order_id_when_traces_are_filtered_by_its_annotation_then_exactly_its_trace(
    local_stage: RunningStage, traced_order: tuple[str, str, list[dict[str, Any]]]
) -> None:
    order_id, trace_id, documents = traced_order
    business = {doc["name"] for doc in documents if (doc.get("annotations") or {}).get("order_id") == order_id}
    assert {"order_processing", "order_validation", "payment_processing", "order_completion"} <= business

    summaries = _xray(local_stage).get_trace_summaries(
        StartTime=time.time() - 600, EndTime=time.time() + 60, FilterExpression=f'annotation.order_id = "{order_id}"'
    )["TraceSummaries"]

    assert [summary["Id"] for summary in summaries] == [trace_id]
    assert summaries[0]["Annotations"]["order_id"][0]["AnnotationValue"] == {"StringValue": order_id}
