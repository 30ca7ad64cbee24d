"""The observability middleware, the correlation id's journey and business metrics, on fakes (tracing: test_observability_tracing.py)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from chalice.app import CloudWatchEvent, LambdaFunctionEvent, Response, SNSEvent, SQSEvent

import app as application
from chalicelib.adapters.metrics import InvocationMetrics, RecordingMetrics
from chalicelib.adapters.pipeline_messaging import RecordingWorkflow
from chalicelib.api.errors import server_error_type
from chalicelib.api.http import error_response, internal_error_response
from chalicelib.bootstrap import Container
from chalicelib.domain.errors import DependencyUnavailableError
from chalicelib.domain.orders import parse_order_request
from chalicelib.entrypoints.sqs import QueueMessage
from chalicelib.observability import invocation, tracing
from chalicelib.observability.correlation import InvocationIds, ids_of
from chalicelib.observability.logs import JsonFormatter, annotate, bound, current
from chalicelib.observability.metrics import NAMESPACE
from tests.pipeline_helpers import BUYER, order_body

pytestmark = pytest.mark.unit


@dataclass
class FakeContext:
    function_name: str = "ecommerce-backend-test-validate_order"
    aws_request_id: str = "aws-req-1"


@contextmanager
def json_logs() -> Iterator[io.StringIO]:
    """A JSON handler on the root logger, formatting at emit time as Lambda's handler does."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def emf(stdout: str) -> list[dict[str, Any]]:
    return [d for d in (json.loads(line) for line in stdout.splitlines() if line.startswith("{")) if "_aws" in d]


def metric(documents: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [d for d in documents if any(m["Name"] == name for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"])]
    assert len(found) == 1, (name, documents)
    return found[0]


# -- the middleware -----------------------------------------------------------------------------------


def test_given_a_task_invocation_when_it_succeeds_then_json_logs_carry_the_ids_and_emf_has_its_metrics(
    memory_container: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    order = memory_container.orders.place(BUYER, parse_order_request(order_body(memory_container)), None, "req-7").order
    memory_container.order_intake.start(order.order_id)
    capsys.readouterr()
    with json_logs() as out:
        answer = application.complete_order({"order_id": order.order_id}, FakeContext("fn-complete", "aws-9"))
    assert answer == {"status": "COMPLETED"}
    (logged,) = [line for line in lines(out) if line["message"].endswith("completed")]
    assert (logged["function"], logged["request_id"], logged["order_id"], logged["correlation_id"]) == (
        "fn-complete",
        "aws-9",
        order.order_id,
        "req-7",
    )
    documents = emf(capsys.readouterr().out)
    timing = metric(documents, "FunctionExecutionTime")
    assert timing["FunctionName"] == "fn-complete" and timing["_aws"]["CloudWatchMetrics"][0]["Namespace"] == NAMESPACE
    assert timing["FunctionSuccess"] == 1.0 and timing["FunctionExecutionTime"] > 0 and timing["MaxMemoryUsed"] > 0
    assert not [d for d in documents if "FunctionError" in d]
    assert current("correlation_id") is None  # nothing leaks past the invocation


def test_given_a_task_that_raises_when_invoked_then_error_metric_by_type_and_the_error_propagates(
    memory_container: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(Exception) as raised:
        application.validate_order({"order_id": "ord_missing"}, FakeContext())
    error = metric(emf(capsys.readouterr().out), "FunctionError")
    assert error["ErrorType"] == type(raised.value).__name__ == "OrderNotFoundError"
    assert error["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["ErrorType", "FunctionName"]]


@pytest.mark.parametrize(
    ("answer", "error_type"),
    [
        (internal_error_response("req-1"), "internal_error"),
        (error_response(DependencyUnavailableError("the orders table is throttling"), "req-1"), "service_unavailable"),
    ],
)
def test_given_the_apps_own_5xx_answer_when_observed_then_function_error_named_by_its_error_code(
    answer: Response, error_type: str
) -> None:
    # GIVEN a 5xx answer as the app builds it (chalicelib/api/http.py), WHEN observed
    out = io.StringIO()
    invocation.observe(InvocationIds("api"), lambda: answer, failure_of=server_error_type, stream=out)
    # THEN the FunctionError metric names the body's error code
    assert metric(emf(out.getvalue()), "FunctionError")["ErrorType"] == error_type
    assert server_error_type(Response(body={}, status_code=404)) is None


def test_given_the_api_when_called_then_the_middleware_binds_the_api_request_id(
    memory_container: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    from chalice.test import Client

    with Client(application.app) as client:
        response = client.http.get("/health")
    assert response.status_code == 200
    timing = metric(emf(capsys.readouterr().out), "FunctionExecutionTime")
    assert timing["FunctionSuccess"] == 1.0


@pytest.mark.parametrize(("header", "effect"), [("Bearer not-a-token", "Deny"), (None, "Deny")])
def test_given_the_authorizer_when_invoked_then_the_middleware_observes_it_as_any_function(
    memory_container: Container, capsys: pytest.CaptureFixture[str], header: str | None, effect: str
) -> None:
    # Chalice runs no middleware for authorizers by itself (chalicelib/api/authorizer_middleware.py).
    event = {"type": "TOKEN", "authorizationToken": header, "methodArn": "arn:aws:execute-api:r:a:api/api/GET/orders"}
    context = FakeContext(function_name="ecommerce-backend-test-jwt_auth", aws_request_id="auth-req-1")
    capsys.readouterr()
    with json_logs() as out:
        policy = application.jwt_auth(event, context)

    assert policy["policyDocument"]["Statement"][0]["Effect"] == effect
    timing = metric(emf(capsys.readouterr().out), "FunctionExecutionTime")
    assert timing["FunctionName"] == "ecommerce-backend-test-jwt_auth" and timing["FunctionSuccess"] == 1.0
    rejected = [line for line in lines(out) if line["message"].startswith("token rejected")]
    assert rejected and rejected[0]["function"] == "ecommerce-backend-test-jwt_auth"
    assert rejected[0]["request_id"] == "auth-req-1"


def test_given_authorizer_middleware_registered_in_order_then_each_wraps_the_next_and_sees_the_invocation() -> None:
    from chalicelib.api.authorizer_middleware import AuthorizerInvocation, AuthorizerMiddlewareChalice

    app = AuthorizerMiddlewareChalice(app_name="t")
    seen: list[str] = []

    @app.authorizer_middleware
    def outer(invocation: AuthorizerInvocation, get_response: Any) -> Any:
        seen.append(f"outer:{invocation.context}")
        return get_response(invocation)

    @app.authorizer_middleware
    def inner(invocation: AuthorizerInvocation, get_response: Any) -> Any:
        seen.append(f"inner:{invocation.event['authorizationToken']}")
        return get_response(invocation)

    @app.authorizer()
    def auth(request: Any) -> dict[str, Any]:
        seen.append(f"decide:{request.token}")
        return {"principalId": "p"}

    assert auth({"type": "TOKEN", "authorizationToken": "tok", "methodArn": "arn"}, "ctx") == {"principalId": "p"}
    assert seen == ["outer:ctx", "inner:tok", "decide:tok"]
    assert app.handler_map["auth"] is auth and auth.config.name == "auth"


def test_given_business_metrics_inside_an_invocation_when_it_ends_then_one_emf_line_with_the_stage() -> None:
    out = io.StringIO()
    sink = InvocationMetrics({"Stage": "dev"})

    def handler() -> None:
        sink.add("OrdersProcessed", 1)
        sink.add("OrderValue", 25.0, "None", {"Currency": "USD"})

    invocation.observe(InvocationIds("fn"), handler, stream=out)
    documents = emf(out.getvalue())
    assert metric(documents, "OrdersProcessed")["Stage"] == "dev"
    value = metric(documents, "OrderValue")
    assert (value["OrderValue"], value["Currency"], value["Stage"]) == (25.0, "USD", "dev")
    sink.add("OrdersProcessed", 1)  # outside an invocation: dropped, never an error


def test_given_set_up_once_when_called_then_root_logs_are_json(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    monkeypatch.setattr(invocation, "_set_up", False)
    monkeypatch.setattr(tracing, "_configured", False)
    root.addHandler(handler)
    try:
        invocation.set_up_once(tracing_enabled=False)
        assert isinstance(handler.formatter, JsonFormatter)
    finally:
        root.removeHandler(handler)
        tracing.reset()


# -- the correlation id's journey ---------------------------------------------------------------------


def _sqs_event(body: dict[str, Any], correlation_id: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": "m1",
                "receiptHandle": "rh1",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {"CorrelationId": {"stringValue": correlation_id, "dataType": "String"}},
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ecommerce-backend-order-processing-test",
            }
        ]
    }


def test_given_an_order_placed_by_a_request_when_it_flows_then_the_request_id_follows_to_queue_workflow_and_tasks(
    memory_container: Container,
) -> None:
    # GIVEN an order placed by API request "req-42"
    placed = memory_container.orders.place(BUYER, parse_order_request(order_body(memory_container)), None, "req-42")
    order_id = placed.order.order_id
    with json_logs() as out:
        # WHEN its queue message (as AwsOrderDispatcher sends it) is consumed, and two tasks run
        application.process_order(_sqs_event({"order_id": order_id}, "req-42"), FakeContext("fn-intake", "a1"))
        application.validate_order({"order_id": order_id}, FakeContext("fn-validate", "a2"))
        logging.getLogger("test").info("after the invocations")
    # THEN the consumer logged with it, the execution input carries it, and task logs carry it
    logged = lines(out)
    started = next(line for line in logged if "workflow started" in line["message"])
    assert (started["function"], started["correlation_id"], started["order_id"]) == ("fn-intake", "req-42", order_id)
    workflow = memory_container.workflow_engine
    assert isinstance(workflow, RecordingWorkflow)
    assert workflow.executions[order_id]["correlation_id"] == "req-42"
    assert "correlation_id" not in logged[-1]


def test_given_each_event_type_when_reading_ids_then_function_request_and_correlation_ids() -> None:
    ctx = FakeContext("fn", "aws-1")
    sqs = SQSEvent(_sqs_event({"order_id": "ord_1"}, "c-sqs"), ctx)
    attributes = {"correlation_id": {"Type": "String", "Value": "c-sns"}}
    sns_record = {"Sns": {"Message": "{}", "Subject": "s", "MessageAttributes": attributes}}
    sns = SNSEvent({"Records": [sns_record]}, ctx)
    status = {
        "version": "0", "id": "e", "detail-type": "Step Functions Execution Status Change", "source": "aws.states",
        "account": "1", "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"status": "FAILED", "input": json.dumps({"order_id": "ord_2", "correlation_id": "c-sfn"})},
    }  # fmt: skip
    task = LambdaFunctionEvent({"order_id": "ord_3"}, ctx)
    assert ids_of(sqs) == InvocationIds("fn", "aws-1", "c-sqs")
    assert ids_of(sns).correlation_id == "c-sns"
    assert ids_of(CloudWatchEvent(status, ctx)) == InvocationIds("fn", "aws-1", "c-sfn", "ord_2")
    assert ids_of(task) == InvocationIds("fn", "aws-1", "aws-1", "ord_3")  # learnt from the order later


def test_given_an_eventbridge_envelope_in_sqs_when_reading_the_record_then_its_detail_correlation_id() -> None:
    envelope = {"detail-type": "Order Completed", "detail": {"order_id": "ord_1", "correlation_id": "c-eb"}}
    record = QueueMessage.from_record({"messageId": "m", "body": json.dumps(envelope)})
    assert record.correlation_id == "c-eb"


def test_given_no_bound_scope_when_annotating_then_nothing_is_kept() -> None:
    assert annotate(correlation_id="x") is False and current("correlation_id") is None
    with bound(function="f"):
        assert annotate(correlation_id="y") is True and current("correlation_id") == "y"
    assert current("correlation_id") is None


# -- business metrics ---------------------------------------------------------------------------------


def test_given_an_order_through_the_workflow_when_it_completes_then_the_seeds_business_metrics(
    memory_container: Container,
) -> None:
    order = memory_container.orders.place(BUYER, parse_order_request(order_body(memory_container))).order
    memory_container.order_intake.start(order.order_id)
    steps = memory_container.workflow_steps
    for step in (steps.validate, steps.check_inventory, steps.process_payment, steps.reserve_inventory, steps.complete):
        step(order.order_id)
    metrics = memory_container.metrics
    assert isinstance(metrics, RecordingMetrics)
    assert [m.name for m in metrics.recorded] == [
        "InventoryReservations",
        "PaymentSuccess",
        "OrdersProcessed",
        "OrderValue",
    ]
    assert metrics.total("OrderValue") == float(order.total_amount)
    assert metrics.recorded[-1].dimensions == {"Currency": "USD"}
