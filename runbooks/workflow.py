"""Step Functions executions and their histories: listing with paging, timelines, retries, cost.

A history is a flat list of events linked by ``previousEventId``. States are paired entered/exited
by name in order (a state visited twice, like ``PaymentChoice`` after a pending payment, gives two
spans); each Lambda event is attributed to the state instance it belongs to by walking
``previousEventId`` back to a ``...StateEntered`` event, which also holds for Parallel branches and
for retries (a retry's ``LambdaFunctionScheduled`` points at the failure before it). Lanes come from
the definition: each state inside a Parallel gets ``<parallel>[<branch>]``, so branches can be drawn
side by side.

AWS pages both ListExecutions and GetExecutionHistory with ``nextToken`` (moto ignores it); every
call here follows it, within a page bound.

The order workflow is Express, which keeps no history in the Step Functions API: for an Express
state machine ``list_executions`` reads the executions from the machine's CloudWatch Logs log group
(``runbooks.execution_logs``) and keeps their events for ``get_history``, so the notebook calls the
same two functions for either type.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from chalicelib.cost import CostBreakdown, Op, Service, ServiceCalls, cost_of_calls
from runbooks import execution_logs

MAX_PAGES = 1000
LAMBDA_END = {"LambdaFunctionSucceeded", "LambdaFunctionFailed", "LambdaFunctionTimedOut"}
LAMBDA_FAILED = {"LambdaFunctionFailed", "LambdaFunctionTimedOut", "LambdaFunctionStartFailed"}


def paged(call: Any, key: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Every item of a paged Step Functions call, following ``nextToken`` until it is absent."""
    token: str | None = None
    for _ in range(MAX_PAGES):
        page = call(**params, **({"nextToken": token} if token else {}))
        yield from page.get(key, [])
        token = page.get("nextToken")
        if not token:
            return
    raise RuntimeError(f"more than {MAX_PAGES} pages of {key}: narrow the window")


# Express executions' events, read from their logs by ``list_executions``, for ``get_history``.
_LOGGED: dict[str, list[dict[str, Any]]] = {}


def express_log_group(sfn: Any, state_machine_arn: str) -> str | None:
    """The log group of an Express state machine that logs its executions; None for a Standard one."""
    machine = sfn.describe_state_machine(stateMachineArn=state_machine_arn)
    if machine.get("type") != "EXPRESS":
        return None
    for destination in machine.get("loggingConfiguration", {}).get("destinations", []):
        arn = destination.get("cloudWatchLogsLogGroup", {}).get("logGroupArn", "")
        if arn:
            return str(arn.split(":log-group:", 1)[-1].removesuffix(":*"))
    raise LookupError(f"{state_machine_arn} is Express and logs nowhere: its executions cannot be inspected")


def logs_client_like(sfn: Any) -> Any:
    """A CloudWatch Logs client where ``sfn`` points: the local stage's endpoint, or AWS's own for the region."""
    from urllib.parse import urlparse

    from runbooks import aws

    endpoint = str(sfn.meta.endpoint_url)
    on_aws = (urlparse(endpoint).hostname or "").endswith(".amazonaws.com")  # the Step Functions endpoint itself
    return aws.clients("" if on_aws else endpoint, sfn.meta.region_name, "logs")[0]


def list_executions(
    sfn: Any,
    state_machine_arn: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    logs: Any = None,
) -> list[dict[str, Any]]:
    """Executions started in ``[since, until)``, newest first, at most ``limit``.

    AWS lists the most recent first, so paging stops at the first execution older than ``since``.
    An Express machine's executions come from its execution logs (``logs``, or a client made like ``sfn``).
    """
    log_group = express_log_group(sfn, state_machine_arn)
    if log_group is not None:
        lines = execution_logs.read_lines(logs or logs_client_like(sfn), log_group, since, until)
        logged = execution_logs.executions_from(lines, state_machine_arn)
        for arn, entry in logged.items():
            _LOGGED[arn] = entry["events"]
        summaries = sorted((e["summary"] for e in logged.values()), key=lambda e: e["startDate"], reverse=True)
        return summaries[:limit]
    found: list[dict[str, Any]] = []
    for execution in paged(sfn.list_executions, "executions", stateMachineArn=state_machine_arn, maxResults=100):
        started = execution["startDate"]
        if since is not None and started < since:
            break
        if until is not None and started >= until:
            continue
        found.append(execution)
        if len(found) >= limit:
            break
    return sorted(found, key=lambda e: e["startDate"], reverse=True)


def get_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """The execution's events: from its logs if ``list_executions`` read it there, else ``GetExecutionHistory``."""
    if execution_arn in _LOGGED:
        return list(_LOGGED[execution_arn])
    return list(paged(sfn.get_execution_history, "events", executionArn=execution_arn, maxResults=1000))


def lanes(definition: Mapping[str, Any]) -> dict[str, str]:
    """State name -> lane: ``main`` or ``<Parallel>[<branch index>]`` (nested Parallels nest the label)."""
    found: dict[str, str] = {}

    def walk(states: Mapping[str, Any], lane: str) -> None:
        for name, state in states.items():
            found[name] = lane
            for index, branch in enumerate(state.get("Branches", []) if state.get("Type") == "Parallel" else []):
                walk(branch.get("States", {}), f"{name}[{index}]" if lane == "main" else f"{lane}/{name}[{index}]")
            if state.get("Type") == "Map":
                processor = state.get("ItemProcessor") or state.get("Iterator") or {}
                walk(processor.get("States", {}), f"{name}[map]")

    walk(definition.get("States", {}), "main")
    return found


@dataclass
class Attempt:
    function: str
    scheduled: datetime
    started: datetime | None = None
    ended: datetime | None = None
    outcome: str = "RUNNING"  # SUCCEEDED, FAILED, TIMED_OUT
    error: str | None = None
    cause: str | None = None

    @property
    def duration_ms(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return (self.ended - self.started).total_seconds() * 1000


@dataclass
class StateSpan:
    name: str
    state_type: str
    lane: str
    entered: datetime
    exited: datetime | None = None
    entered_id: int = 0
    status: str = "SUCCEEDED"  # or FAILED (failed attempts exhausted, or never exited in a failed execution)
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def duration_ms(self) -> float | None:
        return None if self.exited is None else (self.exited - self.entered).total_seconds() * 1000

    @property
    def retries(self) -> int:
        return max(0, len(self.attempts) - 1)

    @property
    def backoff_gaps_ms(self) -> list[float]:
        """From each failed attempt's end to the next attempt's scheduling: the Retry's wait as it happened."""
        gaps = []
        for before, after in zip(self.attempts, self.attempts[1:], strict=False):
            if before.ended is not None:
                gaps.append((after.scheduled - before.ended).total_seconds() * 1000)
        return gaps

    def row(self) -> dict[str, Any]:
        errors = [a.error for a in self.attempts if a.error]
        return {
            "state": self.name,
            "type": self.state_type,
            "lane": self.lane,
            "entered": self.entered,
            "exited": self.exited,
            "duration_ms": self.duration_ms,
            "status": self.status,
            "attempts": len(self.attempts),
            "retries": self.retries,
            "backoff_gaps_ms": [round(g, 1) for g in self.backoff_gaps_ms],
            "errors": errors,
        }


@dataclass
class ExecutionTrace:
    arn: str
    status: str
    started: datetime
    stopped: datetime | None
    spans: list[StateSpan]
    input: dict[str, Any]
    error: str | None = None
    cause: str | None = None
    express: bool = False  # billed per execution and 100 ms, not per transition

    @property
    def transitions(self) -> int:
        """Billed state transitions: every state entered, plus every retry (AWS bills retries as transitions)."""
        return len(self.spans) + sum(span.retries for span in self.spans)

    @property
    def order_id(self) -> str | None:
        """From the input when the log carries it, else the execution's name (``ord_...``, ``ord_...-check2``)."""
        value = self.input.get("order_id")
        if value:
            return str(value)
        name = execution_logs.execution_name(self.arn)
        return name.split("-", 1)[0] if name.startswith("ord_") else None

    @property
    def attempts(self) -> list[Attempt]:
        return [attempt for span in self.spans for attempt in span.attempts]


def _details(event: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def _entered_of(event: Mapping[str, Any], by_id: Mapping[int, Mapping[str, Any]]) -> int | None:
    """The id of the ``...StateEntered`` event this event descends from (None if it reaches the start)."""
    seen = 0
    current = by_id.get(int(event.get("previousEventId", 0)))
    while current is not None and seen < len(by_id):
        if str(current["type"]).endswith("StateEntered"):
            return int(current["id"])
        current = by_id.get(int(current.get("previousEventId", 0)))
        seen += 1
    return None


def parse_history(
    events: Sequence[Mapping[str, Any]], execution: Mapping[str, Any], lane_of: Mapping[str, str] | None = None
) -> ExecutionTrace:
    """One execution's spans, attempts, failure and input from its history events."""
    lane_of = lane_of or {}
    by_id = {int(e["id"]): e for e in events}
    open_spans: dict[str, deque[StateSpan]] = {}
    spans_by_entered: dict[int, StateSpan] = {}
    spans: list[StateSpan] = []
    trace_input: dict[str, Any] = {}
    error = cause = None
    for event in sorted(events, key=lambda e: int(e["id"])):
        kind, details, at = str(event["type"]), _details(event), event["timestamp"]
        if kind == "ExecutionStarted":
            trace_input = json.loads(details.get("input") or "{}")
        elif kind.endswith("StateEntered"):
            name = str(details["name"])
            span = StateSpan(
                name, kind.removesuffix("StateEntered"), lane_of.get(name, "main"), at, None, int(event["id"])
            )
            spans.append(span)
            spans_by_entered[span.entered_id] = span
            open_spans.setdefault(name, deque()).append(span)
        elif kind.endswith("StateExited"):
            queue = open_spans.get(str(details["name"]))
            if queue:
                queue.popleft().exited = at
        elif kind.startswith("LambdaFunction"):
            entered = _entered_of(event, by_id)
            owner = spans_by_entered.get(entered) if entered is not None else None
            if owner is not None:
                _apply_lambda_event(owner, kind, details, at)
        elif kind in ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"):
            error, cause = details.get("error", kind), details.get("cause")
    for span in spans:
        failed_last = bool(span.attempts) and span.attempts[-1].outcome != "SUCCEEDED"
        if span.exited is None or failed_last:
            span.status = "FAILED"
    return ExecutionTrace(
        arn=str(execution["executionArn"]),
        status=str(execution["status"]),
        started=execution["startDate"],
        stopped=execution.get("stopDate"),
        spans=spans,
        input=trace_input,
        error=error or execution.get("error"),
        cause=cause or execution.get("cause"),
        express=execution.get("type") == "EXPRESS",
    )


def _apply_lambda_event(span: StateSpan, kind: str, details: Mapping[str, Any], at: datetime) -> None:
    if kind == "LambdaFunctionScheduled":
        function = str(details.get("resource", "")).rsplit(":", 1)[-1]
        span.attempts.append(Attempt(function, at))
        return
    if not span.attempts:
        return
    attempt = span.attempts[-1]
    if kind == "LambdaFunctionStarted":
        attempt.started = at
    elif kind in LAMBDA_END or kind in LAMBDA_FAILED:
        attempt.ended = at
        attempt.outcome = {"LambdaFunctionSucceeded": "SUCCEEDED", "LambdaFunctionTimedOut": "TIMED_OUT"}.get(
            kind, "FAILED"
        )
        attempt.error, attempt.cause = details.get("error"), details.get("cause")


def execution_calls(trace: ExecutionTrace, memory_by_function: Mapping[str, int]) -> ServiceCalls:
    """The billable calls of one execution: its transitions (Standard) or its request and duration at the
    64 MB minimum (Express), and each task attempt as a Lambda invocation.

    A task's duration is taken from ``LambdaFunctionStarted`` to its end event, which includes the
    service's overhead: an upper bound on the billed duration.
    """
    if trace.express:
        ms = (trace.stopped - trace.started).total_seconds() * 1000 if trace.stopped else 0
        calls = ServiceCalls().add(
            Service.STEP_FUNCTIONS, Op.EXPRESS_EXECUTION, duration_ms=Decimal(str(round(ms, 3))), memory_mb=64
        )
    else:
        calls = ServiceCalls().add(Service.STEP_FUNCTIONS, Op.STATE_TRANSITION, trace.transitions)
    for attempt in trace.attempts:
        attempt_ms = attempt.duration_ms
        memory = memory_by_function.get(attempt.function)
        if attempt_ms is not None and memory:
            calls.add(Service.LAMBDA, Op.INVOKE, duration_ms=Decimal(str(round(attempt_ms, 3))), memory_mb=memory)
    return calls


def execution_cost(trace: ExecutionTrace, memory_by_function: Mapping[str, int]) -> CostBreakdown:
    """Priced at first-tier rates without free tier: the marginal cost of one more execution."""
    return cost_of_calls(execution_calls(trace, memory_by_function))


def span_rows(traces: Sequence[ExecutionTrace]) -> list[dict[str, Any]]:
    return [{"execution": t.arn.rsplit(":", 1)[-1], **span.row()} for t in traces for span in t.spans]
