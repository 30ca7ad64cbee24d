"""Event delivery to handlers, as AWS documents it: SNS, EventBridge (default and custom bus),
schedules, Step Functions tasks and status change events, asynchronous retries and destinations.
A toy Chalice app (not the real one) against the embedded AWS on a free port."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice import Chalice
from chalice.app import CloudWatchEvent, SNSEvent

from localstage.eventbridge import Scheduler
from localstage.patches import Patches
from localstage.sfn_events import install_status_events
from localstage.testing import Harness, emulated
from tests.polling import wait_for

pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"
ISO_SECONDS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
app = Chalice(app_name="toye")
received: dict[str, list[Any]] = {}


def _record(kind: str, value: Any) -> None:
    received.setdefault(kind, []).append(value)


@app.on_sns_message(topic="toye-alerts")
def on_alert(event: SNSEvent) -> None:
    _record("sns", event.to_dict())


@app.on_cw_event({"source": ["toy.orders"]})
def on_order_event(event: CloudWatchEvent) -> None:
    _record("orders", event.to_dict())


@app.on_cw_event({"source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"]})
def on_execution(event: CloudWatchEvent) -> None:
    _record("executions", event.to_dict())


@app.schedule("rate(5 minutes)")
def tick(event: CloudWatchEvent) -> None:
    _record("ticks", event.to_dict())


@app.lambda_function()
def echo(event: Any, context: Any) -> Any:
    _record("echo", event)
    return event


@app.lambda_function()
def flaky(event: Any, context: Any) -> None:
    _record("flaky", context.aws_request_id)
    raise RuntimeError("flaky failed")


@app.lambda_function()
def task(event: Any, context: Any) -> dict[str, Any]:
    _record("task", event)
    if event.get("fail"):
        raise ValueError("the task failed")
    return {"done": True}


@pytest.fixture(scope="module")
def stage() -> Iterator[Harness]:
    with emulated(app) as harness:
        yield harness


@pytest.fixture(autouse=True)
def fresh() -> None:
    received.clear()


def _queue(stage: Harness, name: str) -> tuple[str, str]:
    sqs = stage.client("sqs")
    url = sqs.create_queue(QueueName=f"{name}-{time.monotonic_ns()}")["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _receive(stage: Harness, url: str) -> list[dict[str, Any]]:
    return list(stage.client("sqs").receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []))


# -- SNS -----------------------------------------------------------------------------------------


def test_given_an_sns_handler_on_a_topic_name_then_the_topic_exists_and_the_function_is_subscribed(
    stage: Harness,
) -> None:
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:toye-alerts"
    subscriptions = stage.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"].rsplit(":", 1)[-1]) for s in subscriptions] == [
        ("lambda", "toye-local-on_alert")
    ]


def test_given_a_subscription_when_a_message_is_published_then_the_handler_gets_the_sns_event(stage: Harness) -> None:
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:toye-alerts"
    published = stage.client("sns").publish(
        TopicArn=topic,
        Message="stock low",
        Subject="inventory",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "low-stock"}},
    )
    [event] = wait_for(lambda: received.get("sns"))
    [record] = event["Records"]
    sns = record["Sns"]
    assert record["EventSource"] == "aws:sns" and record["EventVersion"] == "1.0"
    assert record["EventSubscriptionArn"].startswith(topic + ":")
    assert (sns["Type"], sns["Message"], sns["Subject"], sns["TopicArn"]) == (
        "Notification",
        "stock low",
        "inventory",
        topic,
    )
    assert sns["MessageId"] == published["MessageId"]
    assert sns["MessageAttributes"] == {"kind": {"Type": "String", "Value": "low-stock"}}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", sns["Timestamp"])


def test_given_no_subject_when_published_then_the_subject_is_null(stage: Harness) -> None:
    stage.client("sns").publish(TopicArn=f"arn:aws:sns:us-east-1:{ACCOUNT}:toye-alerts", Message="plain")
    [event] = wait_for(lambda: received.get("sns"))
    assert event["Records"][0]["Sns"]["Subject"] is None
    assert event["Records"][0]["Sns"]["MessageAttributes"] == {}


# -- EventBridge ---------------------------------------------------------------------------------


def test_given_a_cw_event_handler_then_its_rule_is_on_the_default_bus_as_chalice_names_it(stage: Harness) -> None:
    events = stage.client("events")
    rule = events.describe_rule(Name="toye-local-on_order_event-event")
    assert json.loads(rule["EventPattern"]) == {"source": ["toy.orders"]}
    [target] = events.list_targets_by_rule(Rule="toye-local-on_order_event-event")["Targets"]
    assert target["Arn"].endswith(":function:toye-local-on_order_event")


def test_given_a_matching_event_on_the_default_bus_then_the_handler_gets_the_envelope(stage: Harness) -> None:
    events = stage.client("events")
    answer = events.put_events(
        Entries=[
            {"Source": "toy.orders", "DetailType": "Order Placed", "Detail": json.dumps({"order_id": "o-1"})},
            {"Source": "toy.other", "DetailType": "Order Placed", "Detail": json.dumps({"order_id": "o-2"})},
        ]
    )
    assert answer["FailedEntryCount"] == 0
    [event] = wait_for(lambda: received.get("orders"))
    time.sleep(0.3)  # the non-matching event must not arrive either
    assert received["orders"] == [event]
    assert event["id"] == answer["Entries"][0]["EventId"]
    assert (event["version"], event["source"], event["detail-type"]) == ("0", "toy.orders", "Order Placed")
    assert (event["account"], event["region"], event["resources"]) == (ACCOUNT, "us-east-1", [])
    assert event["detail"] == {"order_id": "o-1"}
    assert re.fullmatch(ISO_SECONDS, event["time"])
    assert "ingestion-time" not in event


def test_given_a_rule_on_a_custom_bus_with_lambda_and_sqs_targets_then_both_receive_the_event(stage: Harness) -> None:
    events = stage.client("events")
    events.create_event_bus(Name="toye-bus")
    url, queue_arn = _queue(stage, "toye-bus-copy")
    events.put_rule(Name="toye-custom", EventBusName="toye-bus", EventPattern=json.dumps({"source": ["toy.custom"]}))
    echo_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:toye-local-echo"
    events.put_targets(
        Rule="toye-custom",
        EventBusName="toye-bus",
        Targets=[{"Id": "fn", "Arn": echo_arn}, {"Id": "q", "Arn": queue_arn}],
    )
    events.put_events(
        Entries=[{"Source": "toy.custom", "DetailType": "Thing", "Detail": "{}", "EventBusName": "toye-bus"}]
    )
    [event] = wait_for(lambda: received.get("echo"))
    assert event["source"] == "toy.custom"
    assert json.loads(_receive(stage, url)[0]["Body"])["source"] == "toy.custom"


def test_given_a_target_input_or_a_disabled_rule_then_eventbridge_semantics_apply(stage: Harness) -> None:
    events = stage.client("events")
    echo_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:toye-local-echo"
    events.put_rule(Name="toye-input", EventPattern=json.dumps({"source": ["toy.input"]}))
    events.put_targets(Rule="toye-input", Targets=[{"Id": "1", "Arn": echo_arn, "InputPath": "$.detail"}])
    events.put_rule(Name="toye-off", EventPattern=json.dumps({"source": ["toy.input"]}), State="DISABLED")
    events.put_targets(Rule="toye-off", Targets=[{"Id": "1", "Arn": echo_arn, "Input": '{"from": "disabled"}'}])
    events.put_events(Entries=[{"Source": "toy.input", "DetailType": "X", "Detail": json.dumps({"n": 7})}])
    wait_for(lambda: received.get("echo"))
    time.sleep(0.3)
    assert received["echo"] == [{"n": 7}]


# -- schedules -----------------------------------------------------------------------------------


def test_given_a_schedule_handler_then_the_scheduler_fires_it_at_its_rate(stage: Harness) -> None:
    rule = stage.client("events").describe_rule(Name="toye-local-tick-event")
    assert rule["ScheduleExpression"] == "rate(5 minutes)"
    scheduler = Scheduler()
    start = datetime(2030, 1, 1, tzinfo=UTC)
    assert scheduler.tick(start) == []
    assert scheduler.tick(start + timedelta(minutes=4)) == []
    assert rule["Arn"] in scheduler.tick(start + timedelta(minutes=5))
    [event] = wait_for(lambda: received.get("ticks"))
    assert (event["source"], event["detail-type"], event["detail"]) == ("aws.events", "Scheduled Event", {})
    assert event["resources"] == [rule["Arn"]] and event["time"] == "2030-01-01T00:05:00Z"


def test_given_a_schedule_rule_when_its_scheduled_event_is_put_then_it_fires_now_and_other_events_do_not(
    stage: Harness,
) -> None:
    events = stage.client("events")
    rule_arn = events.describe_rule(Name="toye-local-tick-event")["Arn"]
    events.put_events(Entries=[{"Source": "toy.unrelated", "DetailType": "X", "Detail": "{}"}])
    events.put_events(
        Entries=[{"Source": "aws.events", "DetailType": "Scheduled Event", "Detail": "{}", "Resources": [rule_arn]}]
    )
    [event] = wait_for(lambda: received.get("ticks"))
    time.sleep(0.3)
    assert len(received["ticks"]) == 1 and event["resources"] == [rule_arn]


# -- asynchronous invocation ---------------------------------------------------------------------


def test_given_a_failing_async_invoke_then_lambda_retries_twice_and_sends_the_record_to_on_failure(
    stage: Harness,
) -> None:
    lam = stage.client("lambda")
    url, queue_arn = _queue(stage, "toye-failures")
    lam.put_function_event_invoke_config(
        FunctionName="toye-local-flaky",
        MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )
    answer = lam.invoke(FunctionName="toye-local-flaky", InvocationType="Event", Payload=json.dumps({"n": 1}))
    assert answer["StatusCode"] == 202
    messages = wait_for(lambda: _receive(stage, url))
    record = json.loads(messages[0]["Body"])
    attempts = received["flaky"]
    assert len(attempts) == 3 and len(set(attempts)) == 1  # three attempts, one request id
    context = record["requestContext"]
    assert context["condition"] == "RetriesExhausted" and context["approximateInvokeCount"] == 3
    assert context["requestId"] == attempts[0]
    assert context["functionArn"].endswith(":function:toye-local-flaky:$LATEST")
    assert record["requestPayload"] == {"n": 1}
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "RuntimeError"


def test_given_no_retries_configured_when_an_async_invoke_fails_then_it_runs_once(stage: Harness) -> None:
    lam = stage.client("lambda")
    url, queue_arn = _queue(stage, "toye-once")
    lam.put_function_event_invoke_config(
        FunctionName="toye-local-flaky",
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )
    lam.invoke(FunctionName="toye-local-flaky", InvocationType="Event", Payload=b"{}")
    wait_for(lambda: _receive(stage, url))
    assert len(received["flaky"]) == 1


# -- Step Functions ------------------------------------------------------------------------------


def _run_machine(stage: Harness, name: str, definition: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    sfn = stage.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=f"arn:aws:iam::{ACCOUNT}:role/toye-local"
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps(data))["executionArn"]
    deadline = time.monotonic() + 15
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "execution did not finish"
        time.sleep(0.1)
    return dict(described)


@pytest.fixture
def status_events(stage: Harness) -> Iterator[None]:
    """GIVEN the stage's status events: each execution that ends puts one on the default bus."""
    with Patches() as patches:
        install_status_events(patches, lambda: stage.client("events"))
        yield


def test_given_a_task_whose_handler_raises_then_retry_and_catch_see_its_error_and_a_status_event_follows(
    stage: Harness, monkeypatch: pytest.MonkeyPatch, status_events: None
) -> None:
    monkeypatch.setenv("MOTO_PORT", str(stage.aws.port))  # moto's interpreter calls Lambda there
    task_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:toye-local-task"
    definition = {
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task",
                "Resource": task_arn,
                "Retry": [{"ErrorEquals": ["ValueError"], "MaxAttempts": 1, "IntervalSeconds": 1}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Recovered"}],
                "End": True,
            },
            "Recovered": {"Type": "Pass", "End": True},
        },
    }
    caught = _run_machine(stage, "toye-caught", definition, {"fail": True})
    assert caught["status"] == "SUCCEEDED"
    assert json.loads(caught["output"])["error"]["Error"] == "ValueError"
    assert len(received["task"]) == 2  # the first attempt and one retry

    failing = {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": task_arn, "End": True}}}
    failed = _run_machine(stage, "toye-failed", failing, {"fail": True})
    assert failed["status"] == "FAILED" and failed["error"] == "ValueError"

    ours = {caught["executionArn"], failed["executionArn"]}

    def reported() -> list[dict[str, Any]]:
        return [e for e in received.get("executions", []) if e["detail"]["executionArn"] in ours]

    wait_for(lambda: len(reported()) == 2)
    time.sleep(0.5)
    assert len(reported()) == 2  # each ending execution reported once
    by_status = {e["detail"]["status"]: e for e in reported()}
    event = by_status["FAILED"]
    assert (event["source"], event["detail-type"]) == ("aws.states", "Step Functions Execution Status Change")
    assert event["resources"] == [failed["executionArn"]]
    detail = event["detail"]
    assert detail["executionArn"] == failed["executionArn"] and detail["stateMachineArn"] == failed["stateMachineArn"]
    assert detail["name"] == failed["executionArn"].rsplit(":", 1)[-1] and detail["error"] == "ValueError"
    assert json.loads(detail["input"]) == {"fail": True}
    assert isinstance(detail["startDate"], int) and detail["stopDate"] >= detail["startDate"]
    assert json.loads(by_status["SUCCEEDED"]["detail"]["output"])["error"]["Error"] == "ValueError"
