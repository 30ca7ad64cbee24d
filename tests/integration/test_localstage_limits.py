"""Size quotas on the app's AWS paths, against the embedded AWS with ``AwsLimitsMiddleware`` in front of moto.

Each refused call is one moto 5.2.5 accepts on its own (docs/local-stage.md); each accepted one is
at the quota, to show the check counts as AWS does and is not merely stricter.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from chalice import Chalice

from localstage.aws_limits import AwsLimitsMiddleware
from localstage.testing import Harness, emulated

pytestmark = pytest.mark.integration

KiB, MiB = 1024, 1024 * 1024
app = Chalice(app_name="limits")


@app.lambda_function()
def size_of(event: Any, context: Any) -> int:
    return len(json.dumps(event))


@pytest.fixture(scope="module")
def stage() -> Iterator[Harness]:
    with emulated(app) as harness:
        wsgi_server = harness.aws._server._server  # type: ignore[attr-defined]
        wsgi_server.app = AwsLimitsMiddleware(wsgi_server.app)  # as EmbeddedAws.start wires throttling
        yield harness


@functools.cache
def _session() -> boto3.session.Session:
    # One session: each new one loads botocore's service models again (seconds per test).
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")


def client(stage: Harness, service: str) -> Any:
    # No retries: a refusal must reach the test as the error it is.
    config = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120)
    return _session().client(service, endpoint_url=stage.aws.endpoint, config=config)


def refusal(call: Any, **kwargs: Any) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    error = raised.value.response
    return error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"], error["Error"]["Message"]


def test_given_an_sqs_message_over_1_mib_in_utf8_bytes_when_sent_then_invalid_parameter_value(stage: Harness) -> None:
    sqs = client(stage, "sqs")
    queue = sqs.create_queue(QueueName="orders")["QueueUrl"]

    refused = refusal(sqs.send_message, QueueUrl=queue, MessageBody="é" * (MiB // 2 + 1))  # 1 MiB + 2 bytes
    accepted = sqs.send_message(QueueUrl=queue, MessageBody="é" * (MiB // 2))

    assert refused == (
        400,
        "InvalidParameterValue",
        "One or more parameters are invalid. Reason: Message must be shorter than 1048576 bytes.",
    )
    assert accepted["MessageId"]


def test_given_a_queue_with_a_smaller_maximum_when_attributes_push_a_message_over_then_refused(stage: Harness) -> None:
    sqs = client(stage, "sqs")
    queue = sqs.create_queue(QueueName="small", Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    attribute = {"trace": {"DataType": "String", "StringValue": "t" * 20}}  # 5 + 6 + 20 bytes

    refused = refusal(sqs.send_message, QueueUrl=queue, MessageBody="x" * 1000, MessageAttributes=attribute)

    assert refused[1:] == (
        "InvalidParameterValue",
        "One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes.",
    )


def test_given_an_sqs_batch_over_1_mib_when_sent_then_batch_request_too_long(stage: Harness) -> None:
    sqs = client(stage, "sqs")
    queue = sqs.create_queue(QueueName="batch")["QueueUrl"]
    entries = [{"Id": str(n), "MessageBody": "é" * 300_000} for n in range(2)]

    status, code, message = refusal(sqs.send_message_batch, QueueUrl=queue, Entries=entries)

    assert (status, code) == (400, "AWS.SimpleQueueService.BatchRequestTooLong")
    assert message == "Batch requests cannot be longer than 1048576 bytes. You have sent 1200000 bytes."


def test_given_an_sns_message_over_256_kib_with_its_attributes_when_published_then_invalid_parameter(
    stage: Harness,
) -> None:
    sns = client(stage, "sns")
    topic = sns.create_topic(Name="order-events")["TopicArn"]
    attributes = {"kind": {"DataType": "String", "StringValue": "order.paid"}}  # 4 + 6 + 10 bytes

    refused = refusal(sns.publish, TopicArn=topic, Message="x" * (256 * KiB - 19), MessageAttributes=attributes)
    accepted = sns.publish(TopicArn=topic, Message="x" * (256 * KiB - 20), MessageAttributes=attributes)

    assert refused == (400, "InvalidParameter", "Invalid parameter: Message too long")
    assert accepted["MessageId"]


def test_given_put_events_entries_over_1_mb_together_when_put_then_validation_exception(stage: Harness) -> None:
    events = client(stage, "events")
    entry = {"Source": "shop", "DetailType": "Order", "Detail": json.dumps({"x": "x" * (600 * KiB)})}

    refused = refusal(events.put_events, Entries=[entry, entry])
    accepted = events.put_events(Entries=[entry])

    assert refused == (400, "ValidationException", "Total size of the entries in the request is over the limit.")
    assert accepted["FailedEntryCount"] == 0


def test_given_an_execution_input_over_256_kib_when_started_then_validation_exception(stage: Harness) -> None:
    sfn = client(stage, "stepfunctions")
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    machine = sfn.create_state_machine(
        name="orders", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    over = json.dumps({"x": "x" * (256 * KiB - 8)})  # '{"x": "' and '"}' make it 256 KiB + 1 byte
    at_quota = json.dumps({"x": "x" * (256 * KiB - 9)})

    refused = refusal(sfn.start_execution, stateMachineArn=machine, name="too-big", input=over)
    accepted = sfn.start_execution(stateMachineArn=machine, name="at-quota", input=at_quota)

    assert refused[:2] == (400, "ValidationException")
    assert refused[2].endswith(
        "at 'input' failed to satisfy constraint: Member must have length less than or equal to 262144"
    )
    assert accepted["executionArn"].endswith(":at-quota")
    assert [e["name"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]] == ["at-quota"]


def test_given_lambda_payloads_over_the_quota_of_their_invocation_type_when_invoked_then_413(stage: Harness) -> None:
    lam = client(stage, "lambda")
    name = "limits-local-size_of"

    sync = refusal(lam.invoke, FunctionName=name, Payload=b'"' + b"x" * (6 * MiB - 1) + b'"')
    event = refusal(lam.invoke, FunctionName=name, InvocationType="Event", Payload=b'{"x": "' + b"x" * MiB + b'"}')
    at_quota = lam.invoke(FunctionName=name, Payload=b'"' + b"x" * (6 * MiB - 2) + b'"')
    after_refusals = lam.invoke(FunctionName=name, Payload=b"{}")  # the refused bodies were drained

    assert sync == (
        413,
        "RequestEntityTooLargeException",
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
    )
    assert event == (
        413,
        "RequestEntityTooLargeException",
        f"{MiB + 9} byte payload is too large for the Event invocation type (limit {MiB} bytes)",
    )
    assert json.loads(at_quota["Payload"].read()) == 6 * MiB
    assert json.loads(after_refusals["Payload"].read()) == 2
