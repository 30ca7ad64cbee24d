"""Step Functions "Execution Status Change" events on the default bus, which moto does not emit.

On AWS every execution that changes status puts an event on the default bus
(https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html)::

    {"source": "aws.states", "detail-type": "Step Functions Execution Status Change",
     "resources": [executionArn],
     "detail": {"executionArn", "stateMachineArn", "name", "status", "startDate", "stopDate",
                "input", "output", "inputDetails", "outputDetails", "error", "cause"}}

with ``startDate``/``stopDate`` in epoch milliseconds. ``ExecutionStatusWatcher``
polls ``ListExecutions`` of every state machine (twice a second by default) and
puts one such event for each execution it sees in a terminal status
(``SUCCEEDED``, ``FAILED``, ``TIMED_OUT``, ``ABORTED``), so rules on the default
bus (``@app.on_cw_event({"source": ["aws.states"]})``) receive them.

Express workflows emit no such events on AWS ("Standard Workflows" only:
https://docs.aws.amazon.com/step-functions/latest/dg/eventbridge-integration.html), so
executions of an ``EXPRESS`` machine put none here either; their X-Ray segment is still closed.

*Differences*: no event for ``RUNNING``; events arrive up to one poll interval
late; executions that ended before the watcher started are reported too.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from localstage.background import PeriodicWorker
from localstage.xray import ServiceTracing

log = logging.getLogger("localstage.sfn_events")

DETAIL_TYPE = "Step Functions Execution Status Change"
SOURCE = "aws.states"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


def _millis(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def status_change_detail(execution: dict[str, Any]) -> dict[str, Any]:
    """The event's ``detail`` from a ``DescribeExecution`` answer (moto's has no ``name``: taken from the ARN)."""
    output = execution.get("output")
    return {
        "executionArn": execution["executionArn"],
        "stateMachineArn": execution["stateMachineArn"],
        "name": execution.get("name") or execution["executionArn"].rsplit(":", 1)[-1],
        "status": execution["status"],
        "startDate": _millis(execution.get("startDate")),
        "stopDate": _millis(execution.get("stopDate")),
        "input": execution.get("input"),
        "output": output,
        "inputDetails": {"included": True},
        "outputDetails": {"included": True} if output is not None else None,
        "error": execution.get("error"),
        "cause": execution.get("cause"),
    }


class ExecutionStatusWatcher(PeriodicWorker):
    """Turns terminal executions into status change events, each once."""

    thread_name = "sfn-status-events"

    def __init__(self, sfn: Any, events: Any, interval_s: float = 0.5, tracing: ServiceTracing | None = None) -> None:
        self._sfn = sfn
        self._events = events
        self._tracing = tracing  # closes the execution's X-Ray segment (localstage/xray.py)
        super().__init__(interval_s)
        self._reported: set[str] = set()

    def tick(self) -> None:
        self.poll_once()

    def _executions(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in self._sfn.get_paginator("list_state_machines").paginate():
            for machine in page["stateMachines"]:
                pages = self._sfn.get_paginator("list_executions").paginate(stateMachineArn=machine["stateMachineArn"])
                kind = machine.get("type", "STANDARD")
                found += [{**execution, "machineType": kind} for p in pages for execution in p["executions"]]
        return found

    def poll_once(self) -> int:
        """Put an event for each newly terminal execution; returns how many were put."""
        put = 0
        for summary in self._executions():
            arn = summary["executionArn"]
            if summary["status"] not in TERMINAL or arn in self._reported:
                continue
            execution = self._sfn.describe_execution(executionArn=arn)
            self._reported.add(arn)
            if summary["machineType"] == "EXPRESS":
                self._end_trace(arn, summary["status"], execution)
                continue
            entry = {
                "Source": SOURCE,
                "DetailType": DETAIL_TYPE,
                "Detail": json.dumps(status_change_detail(execution)),
                "Resources": [arn],
            }
            if execution.get("stopDate") is not None:
                entry["Time"] = execution["stopDate"]
            self._events.put_events(Entries=[entry])
            put += 1
            self._end_trace(arn, summary["status"], execution)
            log.info("execution %s %s: status change event put on the default bus", arn, summary["status"])
        return put

    def _end_trace(self, arn: str, status: str, execution: dict[str, Any]) -> None:
        if self._tracing is not None:
            stopped = execution.get("stopDate")
            self._tracing.end_execution(arn, status, stopped.timestamp() if stopped else None)
