"""runbooks.workflow: pairing history events into a timeline, Parallel lanes, retries, paging, cost."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.cost import Service
from runbooks import workflow

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DEFINITION = json.loads((Path(__file__).resolve().parents[2] / "statemachine.json").read_text())
FN = "arn:aws:lambda:us-east-1:123456789012:function:ecommerce-backend-local-"


class History:
    """Builds a history the way Step Functions links it: each event points at the one it follows."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, kind: str, at_ms: int, previous: int | None = None, **details: Any) -> int:
        event_id = len(self.events) + 1
        event: dict[str, Any] = {
            "id": event_id,
            "type": kind,
            "timestamp": T0 + timedelta(milliseconds=at_ms),
            "previousEventId": event_id - 1 if previous is None else previous,
        }
        if details:
            event[f"{kind[0].lower()}{kind[1:]}EventDetails"] = details
        self.events.append(event)
        return event_id


def _history() -> list[dict[str, Any]]:
    h = History()
    h.add("ExecutionStarted", 0, input=json.dumps({"order_id": "ord_1"}))
    h.add("TaskStateEntered", 1, name="ProcessPayment")
    h.add("LambdaFunctionScheduled", 2, resource=FN + "process_payment")
    h.add("LambdaFunctionStarted", 3)
    h.add("LambdaFunctionFailed", 103, error="PaymentGatewayTimeout", cause="slow")
    h.add("LambdaFunctionScheduled", 2103, resource=FN + "process_payment")  # Retry after 2 s
    h.add("LambdaFunctionStarted", 2104)
    h.add("LambdaFunctionSucceeded", 2154, output="{}")
    h.add("TaskStateExited", 2160, name="ProcessPayment")
    started = h.add("ParallelStateEntered", 2161, name="FulfillOrder")
    started = h.add("ParallelStateStarted", 2162)
    a = h.add("TaskStateEntered", 2170, started, name="ReserveInventory")
    b = h.add("TaskStateEntered", 2171, started, name="SendConfirmation")
    a_sched = h.add("LambdaFunctionScheduled", 2172, a, resource=FN + "reserve_inventory")
    b_sched = h.add("LambdaFunctionScheduled", 2173, b, resource=FN + "send_confirmation")
    a_start = h.add("LambdaFunctionStarted", 2174, a_sched)
    b_start = h.add("LambdaFunctionStarted", 2175, b_sched)
    b_done = h.add("LambdaFunctionSucceeded", 2200, b_start, output="{}")
    h.add("TaskStateExited", 2201, b_done, name="SendConfirmation")
    a_fail = h.add("LambdaFunctionFailed", 2300, a_start, error="InsufficientInventory", cause="gone")
    h.add("ExecutionFailed", 2400, a_fail, error="InsufficientInventory", cause="gone")
    return h.events


EXECUTION = {"executionArn": "arn:aws:states:us-east-1:1:execution:wf:ord_1", "status": "FAILED", "startDate": T0}


def test_given_a_history_then_states_pair_into_spans_with_lanes() -> None:
    trace = workflow.parse_history(_history(), EXECUTION, workflow.lanes(DEFINITION))
    names = [(s.name, s.lane) for s in trace.spans]
    assert names == [
        ("ProcessPayment", "main"),
        ("FulfillOrder", "main"),
        ("ReserveInventory", "FulfillOrder[0]"),
        ("SendConfirmation", "FulfillOrder[1]"),
    ]
    assert trace.spans[0].duration_ms == 2159
    assert trace.order_id == "ord_1"


def test_given_a_retry_then_attempts_and_backoff_gap_are_attributed_to_the_state() -> None:
    trace = workflow.parse_history(_history(), EXECUTION)
    payment = trace.spans[0]
    assert payment.retries == 1 and payment.status == "SUCCEEDED"
    assert payment.backoff_gaps_ms == [2000.0]
    assert payment.attempts[0].error == "PaymentGatewayTimeout"


def test_given_a_failing_branch_then_its_span_failed_and_the_execution_error_is_kept() -> None:
    trace = workflow.parse_history(_history(), EXECUTION)
    reserve = next(s for s in trace.spans if s.name == "ReserveInventory")
    assert reserve.status == "FAILED" and reserve.exited is None
    assert next(s for s in trace.spans if s.name == "SendConfirmation").status == "SUCCEEDED"
    assert (trace.error, trace.cause) == ("InsufficientInventory", "gone")


def test_a_state_visited_twice_gives_two_spans() -> None:
    h = History()
    h.add("ExecutionStarted", 0, input="{}")
    for start in (10, 50):
        h.add("ChoiceStateEntered", start, name="PaymentChoice")
        h.add("ChoiceStateExited", start + 5, name="PaymentChoice")
    trace = workflow.parse_history(h.events, {**EXECUTION, "status": "SUCCEEDED"})
    assert [s.duration_ms for s in trace.spans] == [5.0, 5.0]


def test_transitions_count_states_and_retries_and_are_priced_with_lambda_time() -> None:
    trace = workflow.parse_history(_history(), EXECUTION)
    assert trace.transitions == 4 + 1
    memory = {"ecommerce-backend-local-process_payment": 512, "ecommerce-backend-local-send_confirmation": 128}
    cost = workflow.execution_cost(trace, memory)
    assert cost.units(Service.STEP_FUNCTIONS, "state transitions") == 5
    assert cost.units(Service.LAMBDA, "requests") == 3  # reserve_inventory has no known memory: not priced


class PagedSfn:
    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        self.pages = pages
        self.tokens: list[str | None] = []

    def describe_state_machine(self, stateMachineArn: str) -> dict[str, Any]:
        return {"stateMachineArn": stateMachineArn, "type": "STANDARD"}

    def list_executions(self, stateMachineArn: str, maxResults: int, nextToken: str | None = None) -> dict[str, Any]:
        self.tokens.append(nextToken)
        index = int(nextToken or 0)
        page: dict[str, Any] = {"executions": self.pages[index]}
        if index + 1 < len(self.pages):
            page["nextToken"] = str(index + 1)
        return page


def test_list_executions_follows_next_token_and_stops_before_the_window() -> None:
    def ex(minutes_ago: int) -> dict[str, Any]:
        return {"executionArn": f"e{minutes_ago}", "startDate": T0 - timedelta(minutes=minutes_ago)}

    sfn = PagedSfn([[ex(1), ex(2)], [ex(3), ex(9)], [ex(20)]])
    found = workflow.list_executions(sfn, "arn", since=T0 - timedelta(minutes=10))
    assert [e["executionArn"] for e in found] == ["e1", "e2", "e3", "e9"]
    assert sfn.tokens == [None, "1", "2"]


MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:orders"
EXPRESS_ARN = "arn:aws:states:us-east-1:123456789012:express:orders:ord_abc-check1:6f1c"
LOG_GROUP = "/aws/vendedlogs/states/orders"


def log_line(id: int, previous: int, kind: str, ms: int, **details: Any) -> dict[str, Any]:
    line = {"id": str(id), "previous_event_id": str(previous), "event_timestamp": str(1_733_000_000_000 + ms)}
    return {**line, "type": kind, "execution_arn": EXPRESS_ARN, "details": details or None}


class LoggedExpress:
    """An Express machine as AWS shows it: no history API, its executions in its log group."""

    def __init__(self, lines: list[dict[str, Any]]) -> None:
        self.pages = [lines[:3], lines[3:]]
        self.tokens: list[str | None] = []

    def describe_state_machine(self, stateMachineArn: str) -> dict[str, Any]:
        group = f"arn:aws:logs:us-east-1:123456789012:log-group:{LOG_GROUP}:*"
        return {
            "type": "EXPRESS",
            "loggingConfiguration": {"destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": group}}]},
        }

    def filter_log_events(self, logGroupName: str, nextToken: str | None = None, **window: Any) -> dict[str, Any]:
        assert logGroupName == LOG_GROUP
        self.tokens.append(nextToken)
        index = int(nextToken or 0)
        page: dict[str, Any] = {"events": [{"message": json.dumps(line)} for line in self.pages[index]]}
        if index + 1 < len(self.pages):
            page["nextToken"] = str(index + 1)
        return page

    def get_execution_history(self, **params: Any) -> dict[str, Any]:
        raise AssertionError("Express executions have no GetExecutionHistory")


def test_given_an_express_machine_when_listing_then_executions_and_steps_come_from_its_logs() -> None:
    # GIVEN the execution log of a payment re-check that retried its status check once, then completed
    lines = [
        log_line(1, 0, "ExecutionStarted", 0, roleArn="arn:role"),
        log_line(2, 1, "TaskStateEntered", 5, name="CheckPaymentStatus"),
        log_line(3, 2, "LambdaFunctionScheduled", 6, resource="arn:aws:lambda:us-east-1:1:function:check"),
        log_line(4, 3, "LambdaFunctionFailed", 60, error="States.TaskFailed", cause="boom"),
        log_line(5, 4, "LambdaFunctionScheduled", 1060, resource="arn:aws:lambda:us-east-1:1:function:check"),
        log_line(6, 5, "LambdaFunctionSucceeded", 1110),
        log_line(7, 6, "TaskStateExited", 1111, name="CheckPaymentStatus"),
        log_line(8, 7, "ExecutionSucceeded", 1250),
    ]
    aws = LoggedExpress(lines)
    # WHEN the runbook lists the machine's executions and reads one's history, as it does for a Standard one
    found = workflow.list_executions(aws, MACHINE_ARN, logs=aws)
    trace = workflow.parse_history(workflow.get_history(aws, EXPRESS_ARN), found[0])
    # THEN the execution, its status, its steps, the retry and the order come from the log, paged
    assert aws.tokens == [None, "1"]
    assert [(e["name"], e["status"]) for e in found] == [("ord_abc-check1", "SUCCEEDED")]
    assert [(s.name, s.retries, s.status) for s in trace.spans] == [("CheckPaymentStatus", 1, "SUCCEEDED")]
    assert trace.order_id == "ord_abc" and trace.express
    # and it is priced as Express: one request and 1.25 s of 64 MB, not transitions
    cost = workflow.execution_cost(trace, {"check": 512})
    assert cost.units(Service.STEP_FUNCTIONS, "express requests") == 1
    assert cost.units(Service.STEP_FUNCTIONS, "state transitions") == 0


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://127.0.0.1:4566", "http://127.0.0.1:4566"),
        ("https://states.eu-west-1.amazonaws.com", "https://logs.eu-west-1.amazonaws.com"),
    ],
)
def test_given_a_step_functions_client_when_its_logs_are_read_then_the_logs_client_points_where_it_points(
    endpoint: str, expected: str
) -> None:
    import boto3

    sfn = boto3.client(
        "stepfunctions",
        region_name="eu-west-1",
        endpoint_url=endpoint,
        aws_access_key_id="a",
        aws_secret_access_key="b",
    )
    assert workflow.logs_client_like(sfn).meta.endpoint_url == expected
