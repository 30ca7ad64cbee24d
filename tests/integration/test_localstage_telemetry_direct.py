"""The Lambda emulator's telemetry written into moto's backends (localstage/telemetry_direct.py) lands as
it did through the SDK, and IAM refuses what it refused over HTTP."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib.observability.metrics import MetricsRecorder
from localstage.iam import enforcement
from localstage.iam.principals import Acting, acting_as
from localstage.telemetry import Telemetry, writer_client
from localstage.telemetry_direct import DirectCloudWatch, DirectLogs, parsed_datum

pytestmark = pytest.mark.integration

ACCOUNT, REGION = "123456789012", "us-east-1"
GROUP = "/aws/lambda/f1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield


def _emf(metric: str, value: float) -> str:
    out = io.StringIO()
    recorder = MetricsRecorder("ServerlessApp", {"FunctionName": "f1"}, out)
    recorder.add(metric, value)
    recorder.flush()
    return out.getvalue().strip()


def _write_through(telemetry: Telemetry, stream: str, lines: list[str]) -> None:
    telemetry.open_stream(GROUP, stream)
    telemetry.write_log(GROUP, stream, lines)
    telemetry.put_metrics("f1", [("Invocations", 1, "Count"), ("Duration", 12.5, "Milliseconds")])


def _landed(stream: str, namespace: str) -> tuple[list[str], list[tuple[str, float]]]:
    logs, cloudwatch = boto3.client("logs"), boto3.client("cloudwatch")
    lines = [e["message"] for e in logs.get_log_events(logGroupName=GROUP, logStreamName=stream)["events"]]
    sums = []
    for metric in sorted(m["MetricName"] for m in cloudwatch.list_metrics(Namespace=namespace)["Metrics"]):
        [point] = cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName=metric,
            Dimensions=[{"Name": "FunctionName", "Value": "f1"}],
            StartTime=datetime.now(UTC) - timedelta(minutes=5),
            EndTime=datetime.now(UTC) + timedelta(minutes=5),
            Period=600,
            Statistics=["Sum"],
        )["Datapoints"]
        sums.append((metric, point["Sum"]))
    return lines, sums


def test_given_the_same_writes_when_sent_direct_then_logs_and_metrics_read_back_as_through_the_sdk(aws: None) -> None:
    # GIVEN one function's log lines (one of them EMF) and its invocation metrics, through the SDK
    lines = ["START RequestId: 1", _emf("OrdersPlaced", 2), "END RequestId: 1"]
    _write_through(Telemetry(writer_client("logs"), writer_client("cloudwatch")), "sdk", lines)
    through_sdk = _landed("sdk", "ServerlessApp"), _landed("sdk", "AWS/Lambda")[1]
    from moto.cloudwatch.models import cloudwatch_backends

    cloudwatch_backends[ACCOUNT][REGION].metric_data.clear()  # the metrics start again from nothing
    # WHEN the same writes go to moto's backends directly
    direct = Telemetry(DirectLogs(lambda: writer_client("logs"), ACCOUNT, REGION), DirectCloudWatch(ACCOUNT, REGION))
    _write_through(direct, "direct", lines)
    # THEN the lines and the metrics read back the same
    assert (_landed("direct", "ServerlessApp"), _landed("direct", "AWS/Lambda")[1]) == through_sdk
    assert through_sdk[0][1] == [("OrdersPlaced", 2.0)]
    assert through_sdk[1] == [("Duration", 12.5), ("Invocations", 1.0)]


def test_given_metric_data_when_parsed_then_it_is_what_moto_s_parser_hands_its_backend(aws: None) -> None:
    from moto.cloudwatch.models import CloudWatchBackend

    handed: list[list[dict[str, Any]]] = []
    original = CloudWatchBackend.put_metric_data

    def keep(self: Any, namespace: str, data: list[dict[str, Any]]) -> None:
        handed.append(data)
        original(self, namespace, data)

    data = [
        {"MetricName": "A", "Dimensions": [{"Name": "FunctionName", "Value": "f"}], "Value": 3, "Unit": "Count"},
        {
            "MetricName": "B",
            "Timestamp": datetime.fromtimestamp(1764640000.125, UTC),
            "Values": [1, 2.5],
            "Counts": [1, 2],
        },
    ]
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(CloudWatchBackend, "put_metric_data", keep)
        boto3.client("cloudwatch").put_metric_data(Namespace="ns", MetricData=data)
    assert [parsed_datum(d) for d in data] == handed[0]


def _role(name: str, actions: list[str]) -> Acting:
    iam = boto3.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}  # fmt: skip
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps(policy))
    return Acting(arn, f"{name}-session", Credentials("k", "s", "t"))


def test_given_iam_enforced_when_a_role_without_put_log_events_writes_then_refused_and_nothing_lands(aws: None) -> None:
    logs = DirectLogs(lambda: writer_client("logs"), ACCOUNT, REGION)
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="s")
    event = [{"timestamp": int(time.time() * 1000), "message": "hello"}]
    authorizer = enforcement.Authorizer()
    enforcement.activate(authorizer)
    try:
        # WHEN a role that may only create streams writes, and then one that may write
        with acting_as(_role("mute", ["logs:CreateLogStream"])), pytest.raises(ClientError) as refused:
            logs.put_log_events(logGroupName=GROUP, logStreamName="s", logEvents=event)
        with acting_as(_role("writer", ["logs:PutLogEvents"])):
            logs.put_log_events(logGroupName=GROUP, logStreamName="s", logEvents=event)
    finally:
        enforcement.deactivate(authorizer)
    # THEN the first is AWS's AccessDenied naming the action and the stream, and only the second landed
    error = refused.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert "logs:PutLogEvents" in error["Message"] and "log-group:/aws/lambda/f1:log-stream:s" in error["Message"]
    assert [e["message"] for e in boto3.client("logs").get_log_events(logGroupName=GROUP, logStreamName="s")["events"]] == ["hello"]  # fmt: skip
    used = [(u["principal"], u["action"]) for u in authorizer.ledger.report()["allowed"]]
    assert ("writer", "logs:PutLogEvents") in used


def test_given_no_such_stream_when_writing_direct_then_moto_s_error_as_the_sdk_raises_it(aws: None) -> None:
    logs = DirectLogs(lambda: writer_client("logs"), ACCOUNT, REGION)
    event = [{"timestamp": int(time.time() * 1000), "message": "lost"}]
    with pytest.raises(ClientError) as through_sdk:
        boto3.client("logs").put_log_events(logGroupName=GROUP, logStreamName="none", logEvents=event)
    with pytest.raises(ClientError) as direct:
        logs.put_log_events(logGroupName=GROUP, logStreamName="none", logEvents=event)
    assert direct.value.response["Error"] == {
        "Code": through_sdk.value.response["Error"]["Code"],
        "Message": through_sdk.value.response["Error"]["Message"],
    }
