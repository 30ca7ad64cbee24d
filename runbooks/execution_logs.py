"""Express executions read back from their CloudWatch Logs, in the shape of ``GetExecutionHistory``.

Express workflows keep no history in the Step Functions API (no ``ListExecutions``,
``DescribeExecution`` or ``GetExecutionHistory``); what there is, is the execution log the state
machine's ``LoggingConfiguration`` sends to its log group. Each log line is one history event
(https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html)::

    {"id": "3", "previous_event_id": "2", "event_timestamp": "1733080000123",
     "type": "TaskStateEntered", "execution_arn": "arn:aws:states:...:express:<machine>:<name>:<id>",
     "details": {"name": "ValidateOrder"}}

``history_event`` turns a line into the event ``GetExecutionHistory`` would have given
(``id``, ``previousEventId``, ``timestamp``, ``type`` and its ``...EventDetails``), so
``runbooks.workflow.parse_history`` reads both. The stage logs at level ``ALL`` without execution
data: the states, the tasks' attempts and errors are there, inputs and outputs are not; the order
id is the execution's name (``ord_...``, or ``ord_...-check2`` for a payment re-check).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

ENDED = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionTimedOut": "TIMED_OUT",
    "ExecutionAborted": "ABORTED",
}
MAX_PAGES = 1000


def details_key(kind: str) -> str:
    """The history event's details field: ``TaskStateEntered`` -> ``stateEnteredEventDetails``."""
    for suffix in ("StateEntered", "StateExited"):
        if kind.endswith(suffix) and kind != suffix:
            return f"state{suffix.removeprefix('State')}EventDetails"
    return kind[:1].lower() + kind[1:] + "EventDetails"


def timestamp(value: Any) -> datetime:
    """AWS writes epoch milliseconds as a string; an ISO 8601 text is read too."""
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def history_event(line: Mapping[str, Any]) -> dict[str, Any]:
    kind = str(line["type"])
    event: dict[str, Any] = {
        "id": int(line["id"]),
        "previousEventId": int(line.get("previous_event_id") or 0),
        "type": kind,
        "timestamp": timestamp(line["event_timestamp"]),
    }
    if line.get("details"):
        event[details_key(kind)] = dict(line["details"])
    return event


def execution_name(execution_arn: str) -> str:
    """The name in a Standard (``...:execution:<machine>:<name>``) or Express (``...:<name>:<id>``) ARN."""
    parts = execution_arn.split(":")
    return parts[7] if len(parts) > 8 and parts[5] == "express" else parts[-1]


def read_lines(logs: Any, log_group: str, since: datetime | None, until: datetime | None) -> list[dict[str, Any]]:
    """Every execution log line of the group in ``[since, until)`` (``FilterLogEvents``, paged)."""
    params: dict[str, Any] = {"logGroupName": log_group}
    if since is not None:
        params["startTime"] = int(since.timestamp() * 1000)
    if until is not None:
        params["endTime"] = int(until.timestamp() * 1000)
    lines: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(MAX_PAGES):
        page = logs.filter_log_events(**params, **({"nextToken": token} if token else {}))
        for entry in page.get("events", []):
            try:
                line = json.loads(entry["message"])
            except ValueError:
                continue  # a line that is not an execution event (CloudWatch's own test line)
            if isinstance(line, dict) and "execution_arn" in line and "type" in line:
                lines.append(line)
        token = page.get("nextToken")
        if not token:
            return lines
    raise RuntimeError(f"more than {MAX_PAGES} pages of {log_group}: narrow the window")


def executions_from(lines: Iterable[Mapping[str, Any]], state_machine_arn: str) -> dict[str, dict[str, Any]]:
    """Execution ARN -> ``{"summary": <ListExecutions-like item>, "events": <history events>}``."""
    found: dict[str, dict[str, Any]] = {}
    for line in lines:
        arn = str(line["execution_arn"])
        entry = found.setdefault(arn, {"events": []})
        entry["events"].append(history_event(line))
    for arn, entry in found.items():
        events = sorted(entry["events"], key=lambda e: e["id"])
        entry["events"] = events
        started = next((e["timestamp"] for e in events if e["type"] == "ExecutionStarted"), events[0]["timestamp"])
        end = next((e for e in reversed(events) if e["type"] in ENDED), None)
        entry["summary"] = {
            "executionArn": arn,
            "stateMachineArn": state_machine_arn,
            "name": execution_name(arn),
            "status": ENDED[end["type"]] if end else "RUNNING",
            "type": "EXPRESS",
            "startDate": started,
            **({"stopDate": end["timestamp"]} if end else {}),
        }
    return found
