"""The Lambda emulator against the embedded AWS, with a toy Chalice app (not the real one)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from chalice import Chalice

from localstage.lambda_model import LambdaThrottledError, modelled_duration_ms
from localstage.moto_lambda import decode_log_tail
from localstage.testing import Harness, emulated

pytestmark = pytest.mark.integration

release = threading.Event()
app = Chalice(app_name="toy")


@app.lambda_function()
def echo(event: Any, context: Any) -> dict[str, Any]:
    print("echoing", json.dumps(event))
    return {"event": event, "function": context.function_name, "remaining": context.get_remaining_time_in_millis()}


@app.lambda_function()
def boom(event: Any, context: Any) -> None:
    raise ValueError("the handler failed")


@app.lambda_function()
def slow(event: Any, context: Any) -> str:
    time.sleep(event.get("sleep", 3))
    return "late"


@app.lambda_function()
def hold(event: Any, context: Any) -> str:
    release.wait(5)
    return "released"


held: list[str] = []  # the threads of handlers that hold until released
_thread_token = threading.local()  # a token per thread: thread idents are reused once a thread ends


@app.lambda_function()
def where(event: Any, context: Any) -> dict[str, Any]:
    token = getattr(_thread_token, "token", None) or str(time.monotonic_ns())
    _thread_token.token = token
    if event.get("hold"):
        held.append(token)
        release.wait(5)
    return {"thread": token, "name": threading.current_thread().name}


@pytest.fixture(scope="module")
def stage() -> Iterator[Harness]:
    with emulated(app) as harness:
        yield harness


@pytest.fixture(scope="module")
def lam(stage: Harness) -> Any:
    # No client-side retries: a throttle must reach the test as the 429 it is.
    return boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1").client(
        "lambda", endpoint_url=stage.aws.endpoint, config=Config(retries={"max_attempts": 1, "mode": "standard"})
    )


def test_given_the_app_when_registered_then_functions_are_named_as_chalice_deploy_names_them(lam: Any) -> None:
    names = {f["FunctionName"] for f in lam.list_functions()["Functions"]}
    assert {"toy-local-echo", "toy-local-boom", "toy-local-slow", "toy-local-hold"} <= names
    config = lam.get_function_configuration(FunctionName="toy-local-echo")
    assert (config["MemorySize"], config["Timeout"]) == (128, 60)


def test_given_a_function_when_invoked_through_the_lambda_api_then_the_real_handler_answers(lam: Any) -> None:
    response = lam.invoke(FunctionName="toy-local-echo", Payload=json.dumps({"n": 1}), LogType="Tail")
    payload = json.loads(response["Payload"].read())
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert payload["event"] == {"n": 1} and payload["function"] == "toy-local-echo"
    assert 0 < payload["remaining"] <= 60_000
    tail = decode_log_tail(response["LogResult"])
    assert "START RequestId:" in tail and 'echoing {"n": 1}' in tail and "END RequestId:" in tail


def test_given_a_raising_handler_when_invoked_then_the_error_payload_is_lambdas(lam: Any) -> None:
    response = lam.invoke(FunctionName="toy-local-boom", Payload=b"{}")
    payload = json.loads(response["Payload"].read())
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "ValueError" and payload["errorMessage"] == "the handler failed"
    assert payload["requestId"] and any("boom" in line for line in payload["stackTrace"])


def test_given_a_short_timeout_when_the_handler_overruns_then_the_invocation_times_out(lam: Any) -> None:
    lam.update_function_configuration(FunctionName="toy-local-slow", Timeout=1)
    started = time.monotonic()
    response = lam.invoke(FunctionName="toy-local-slow", Payload=json.dumps({"sleep": 3}), LogType="Tail")
    elapsed = time.monotonic() - started
    payload = json.loads(response["Payload"].read())
    assert response["FunctionError"] == "Unhandled" and payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]
    assert elapsed < 2.5
    assert "Status: timeout" in decode_log_tail(response["LogResult"])


def test_given_reserved_concurrency_when_exceeded_then_the_next_invoke_is_throttled(stage: Harness, lam: Any) -> None:
    lam.put_function_concurrency(FunctionName="toy-local-hold", ReservedConcurrentExecutions=1)
    release.clear()
    first = threading.Thread(target=stage.emulator.invoke, args=("toy-local-hold", {}))
    first.start()
    try:
        deadline = time.monotonic() + 3
        while stage.emulator._functions["toy-local-hold"].in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(lam.exceptions.TooManyRequestsException):
            lam.invoke(FunctionName="toy-local-hold", Payload=b"{}")
        with pytest.raises(LambdaThrottledError):
            stage.emulator.invoke("toy-local-hold", {})
    finally:
        release.set()
        first.join(5)
    assert json.loads(lam.invoke(FunctionName="toy-local-hold", Payload=b"{}")["Payload"].read()) == "released"


def test_given_invocations_when_done_then_report_lines_and_metrics_are_recorded(stage: Harness) -> None:
    lam_api = stage.client("lambda")
    lam_api.update_function_configuration(FunctionName="toy-local-echo", MemorySize=256)
    result = stage.emulator.invoke("toy-local-echo", {"m": 1})
    report = result.log_lines[-1]
    fields = r"REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: 256 MB\tMax Memory Used: \d+ MB"
    assert re.match(fields, report), report
    assert "Init Duration:" in report  # a configuration change means a new (cold) environment
    assert result.billed_ms == int(-(-result.duration_ms // 1))
    warm = stage.emulator.invoke("toy-local-echo", {"m": 2})
    assert "Init Duration" not in warm.log_lines[-1]

    logs = stage.client("logs")
    events = logs.filter_log_events(logGroupName="/aws/lambda/toy-local-echo")["events"]
    assert any(e["message"].startswith("REPORT RequestId: " + result.request_id) for e in events)

    cloudwatch = stage.client("cloudwatch")
    now = datetime.now(UTC)
    for metric, stat in (("Invocations", "Sum"), ("Duration", "Average"), ("Errors", "Sum")):
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda",
            MetricName=metric,
            Dimensions=[{"Name": "FunctionName", "Value": "toy-local-echo"}],
            StartTime=now - timedelta(minutes=5),
            EndTime=now + timedelta(minutes=1),
            Period=60,
            Statistics=[stat],
        )["Datapoints"]
        assert points, metric
    names = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace="AWS/Lambda")["Metrics"]}
    assert {"Invocations", "Duration", "Errors", "Throttles", "ConcurrentExecutions"} <= names


def test_given_the_cpu_share_model_then_cpu_time_stretches_below_one_vcpu_only() -> None:
    assert modelled_duration_ms(100, 50, 1769) == 100
    assert modelled_duration_ms(100, 50, 3538) == 100
    assert modelled_duration_ms(100, 0, 128) == 100
    assert modelled_duration_ms(100, 50, 128) == pytest.approx(100 + 50 * (1769 / 128 - 1))


def test_given_a_state_machine_when_a_task_calls_a_function_then_the_real_handler_runs(
    stage: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto's interpreter calls Lambda at http://localhost:$MOTO_PORT (read per call).
    monkeypatch.setenv("MOTO_PORT", str(stage.aws.port))
    sfn = stage.client("stepfunctions")
    task = "arn:aws:lambda:us-east-1:123456789012:function:toy-local-echo"
    definition = {"StartAt": "Echo", "States": {"Echo": {"Type": "Task", "Resource": task, "End": True}}}
    machine = sfn.create_state_machine(
        name="toy-echo", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/toy-local"
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"n": 21}))["executionArn"]
    deadline = time.monotonic() + 10
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "execution did not finish"
        time.sleep(0.1)
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])["event"] == {"n": 21}


def test_given_invocations_one_after_another_then_handlers_run_on_a_kept_thread_not_one_left_behind(
    lam: Any,
) -> None:
    def where_it_ran(**event: Any) -> dict[str, Any]:
        response = lam.invoke(FunctionName="toy-local-where", Payload=json.dumps(event))
        return dict(json.loads(response["Payload"].read()))

    first, second = where_it_ran(), where_it_ran()
    # as Lambda's runtime does: one thread serves one invocation after another
    assert first["thread"] == second["thread"] and second["name"].startswith("lambda-toy-local-where-")
    # a handler left running by a timeout keeps its thread; the next invocation runs elsewhere
    lam.update_function_configuration(FunctionName="toy-local-where", Timeout=1)
    release.clear()
    timed_out = lam.invoke(FunctionName="toy-local-where", Payload=json.dumps({"hold": True}))
    assert timed_out["FunctionError"] == "Unhandled"
    try:
        after = where_it_ran()
    finally:
        release.set()
    assert held and after["thread"] != held[-1]
