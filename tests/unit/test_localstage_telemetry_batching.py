"""Lambda's logs and metrics, batched off the invocation's thread: fewer calls, same content, same principal."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from chalicelib.observability.metrics import MetricsRecorder
from localstage.iam.principals import Acting, acting_as, current
from localstage.telemetry import MAX_LOG_EVENTS, Telemetry, flush_before_reads, log_batches

pytestmark = pytest.mark.unit

ROLE_A = Acting("arn:aws:iam::123456789012:role/a", "a", Credentials("a", "a", "a"))
ROLE_B = Acting("arn:aws:iam::123456789012:role/b", "b", Credentials("b", "b", "b"))


class FakeAws:
    """Records each call with the principal acting when it was made; refuses streams listed in ``refuse``."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple[str, Acting | None, dict[str, Any]]] = []
        self.refuse = refuse

    def put_log_events(self, **kwargs: Any) -> None:
        if kwargs["logStreamName"] in self.refuse:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutLogEvents")
        self.calls.append(("logs", current(), kwargs))

    def put_metric_data(self, **kwargs: Any) -> None:
        self.calls.append(("metrics", current(), kwargs))

    def of(self, kind: str) -> list[tuple[Acting | None, dict[str, Any]]]:
        return [(who, args) for k, who, args in self.calls if k == kind]


def emf_line(metric: str) -> str:
    out = io.StringIO()
    recorder = MetricsRecorder("ServerlessApp", {"FunctionName": "f1"}, out)
    recorder.add(metric, 1)
    recorder.flush()
    return out.getvalue().strip()


def test_given_a_batch_window_when_three_invocations_write_then_one_call_per_stream_and_per_namespace() -> None:
    aws = FakeAws()
    telemetry = Telemetry(aws, aws, batch_window_s=60.0)  # the writer never wakes on its own in this test
    # WHEN three invocations of one function write their lines and metrics
    for index in range(3):
        with acting_as(ROLE_A):
            telemetry.write_log("/aws/lambda/f1", "s1", [f"START {index}", emf_line("OrdersProcessed")])
        telemetry.put_metrics("f1", [("Invocations", 1, "Count")])
    assert aws.calls == []  # nothing on the invocations' own thread
    telemetry.flush()
    # THEN one PutLogEvents with all six lines, in order, signed by the function's role
    [(who, put)] = aws.of("logs")
    assert who is ROLE_A
    assert [e["message"] for e in put["logEvents"]][::2] == ["START 0", "START 1", "START 2"]
    # AND one PutMetricData per namespace: the Lambda metrics, and the EMF metrics extracted from the lines
    by_namespace = {args["Namespace"]: args["MetricData"] for _, args in aws.of("metrics")}
    assert sorted(by_namespace) == ["AWS/Lambda", "ServerlessApp"]
    assert len(by_namespace["AWS/Lambda"]) == 3 and len(by_namespace["ServerlessApp"]) == 3
    telemetry.close()


def test_given_two_roles_when_batched_then_each_stream_is_written_as_its_own_role_and_a_refusal_loses_its_emf() -> None:
    aws = FakeAws(refuse=("denied",))
    telemetry = Telemetry(aws, aws, batch_window_s=60.0)
    with acting_as(ROLE_A):
        telemetry.write_log("/aws/lambda/a", "ok", [emf_line("FromA")])
    with acting_as(ROLE_B):
        telemetry.write_log("/aws/lambda/b", "denied", [emf_line("FromB")])
    telemetry.flush()
    assert [(who, args["logStreamName"]) for who, args in aws.of("logs")] == [(ROLE_A, "ok")]
    names = [d["MetricName"] for _, args in aws.of("metrics") for d in args["MetricData"]]
    assert names == ["FromA"]  # CloudWatch Logs extracts only from what reached the group
    telemetry.close()


def test_given_a_short_window_when_lines_are_written_then_the_writer_sends_them_without_being_asked() -> None:
    aws = FakeAws()
    telemetry = Telemetry(aws, aws, batch_window_s=0.05)
    telemetry.put_log_lines("/aws/lambda/f1", "s1", ["hello"])
    deadline = time.monotonic() + 5
    while not aws.of("logs") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [e["message"] for _, args in aws.of("logs") for e in args["logEvents"]] == ["hello"]
    telemetry.close()
    # AND after close, writes are sent at once rather than queued and lost
    telemetry.put_log_lines("/aws/lambda/f1", "s1", ["late"])
    assert [e["message"] for _, args in aws.of("logs") for e in args["logEvents"]] == ["hello", "late"]


def test_given_no_window_when_written_then_it_is_sent_at_once_on_the_callers_thread() -> None:
    aws = FakeAws()
    with acting_as(ROLE_B):
        assert Telemetry(aws, aws).put_log_lines("/aws/lambda/f1", "s1", ["now"]) is True
    assert [who for who, _ in aws.of("logs")] == [ROLE_B]


def test_given_many_events_when_batched_then_no_call_exceeds_10000_events_or_one_mib() -> None:
    small = [{"timestamp": 1, "message": "x"} for _ in range(MAX_LOG_EVENTS + 1)]
    assert [len(b) for b in log_batches(small)] == [MAX_LOG_EVENTS, 1]
    big = [{"timestamp": 1, "message": "y" * 300_000} for _ in range(4)]
    assert [len(b) for b in log_batches(big)] == [3, 1]


def test_given_queued_lines_when_a_reader_asks_cloudwatch_logs_then_they_are_flushed_first() -> None:
    aws = FakeAws()
    telemetry = Telemetry(aws, aws, batch_window_s=60.0)
    telemetry.put_log_lines("/aws/lambda/f1", "s1", ["queued"])
    seen: list[int] = []
    app = flush_before_reads(lambda environ, start: seen.append(len(aws.of("logs"))), lambda: telemetry)
    scope = "AWS4-HMAC-SHA256 Credential=testing/20261201/us-east-1/{}/aws4_request, SignedHeaders=host"
    # WHEN the writer itself or another service calls, nothing is flushed
    app({"HTTP_AUTHORIZATION": scope.format("logs"), "HTTP_X_LOCALSTAGE_TELEMETRY": "1"}, None)
    app({"HTTP_AUTHORIZATION": scope.format("dynamodb")}, None)
    # WHEN a reader calls CloudWatch Logs, the queued lines are sent before its request is served
    app({"HTTP_AUTHORIZATION": scope.format("logs")}, None)
    assert seen == [0, 0, 1]
    telemetry.close()
