"""Step Functions "Execution Status Change" events on the default bus, which moto does not emit.

On AWS every execution that changes status puts an event on the default bus
(https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html)::

    {"source": "aws.states", "detail-type": "Step Functions Execution Status Change",
     "resources": [executionArn],
     "detail": {"executionArn", "stateMachineArn", "name", "status", "startDate", "stopDate",
                "input", "output", "inputDetails", "outputDetails", "error", "cause"}}

with ``startDate``/``stopDate`` in epoch milliseconds. ``install_status_events`` hooks the end
of every execution in moto's interpreter (``BaseExecutionWorkerCommunication.terminated``, through
the checked layer) and puts one such event for each execution that ends (``SUCCEEDED``,
``FAILED``, ``TIMED_OUT``, ``ABORTED``), so rules on the default bus
(``@app.on_cw_event({"source": ["aws.states"]})``) receive them. An earlier version polled
``ListExecutions`` of every machine twice a second: its cost grew with every execution ever run,
about a quarter of an idle stage's CPU after a test module's worth of orders.

Express workflows emit no such events on AWS ("Standard Workflows" only:
https://docs.aws.amazon.com/step-functions/latest/dg/eventbridge-integration.html), so
executions of an ``EXPRESS`` machine put none here either; their X-Ray segment is still closed.

*Differences*: no event for ``RUNNING``; the event is put as the execution ends, on the
interpreter's thread, where AWS delivers it asynchronously.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from localstage.patches import Patches
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


def status_change_entry(execution: dict[str, Any]) -> dict[str, Any]:
    """The ``PutEvents`` entry of a terminal execution (a ``DescribeExecution`` answer)."""
    entry: dict[str, Any] = {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(status_change_detail(execution)),
        "Resources": [execution["executionArn"]],
    }
    if execution.get("stopDate") is not None:
        entry["Time"] = execution["stopDate"]
    return entry


def install_status_events(patches: Patches, events: Callable[[], Any], tracing: ServiceTracing | None = None) -> None:
    """Put each ending execution's status change event (Standard machines) and close its X-Ray segment.

    ``events`` gives the EventBridge client (built on first use). Undone with ``patches``.
    """
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    patches.wrap("moto", BaseExecutionWorkerCommunication, "terminated", _reporting(events, tracing))


def _reporting(events: Callable[[], Any], tracing: ServiceTracing | None) -> Callable[[Any], Any]:
    def wrap(original: Callable[[Any], None]) -> Callable[[Any], None]:
        def terminated(communication: Any) -> None:
            original(communication)  # moto records the status, output, error and stop date
            execution = communication.execution
            try:
                # moto 5.2.5 keeps the machine's type in ``state_machine.type``; ``sm_type`` is always STANDARD.
                machine_type = str(getattr(execution.state_machine, "type", None) or "STANDARD")
                report(dict(execution.to_describe_output()), machine_type, events, tracing)
            except Exception:  # the execution has ended either way; say why its event is missing
                log.exception("no status change event for %s", getattr(execution, "exec_arn", "?"))

        return terminated

    return wrap


def report(
    execution: dict[str, Any], machine_type: str, events: Callable[[], Any], tracing: ServiceTracing | None
) -> None:
    """What AWS does when an execution ends: a status change event for Standard, and the trace closed."""
    arn, status = execution["executionArn"], execution["status"]
    if status not in TERMINAL:
        return
    if machine_type.upper() != "EXPRESS":  # Express machines emit no status change events on AWS
        events().put_events(Entries=[status_change_entry(execution)])
        log.info("execution %s %s: status change event put on the default bus", arn, status)
    if tracing is not None:
        stopped = execution.get("stopDate")
        tracing.end_execution(arn, status, stopped.timestamp() if isinstance(stopped, datetime) else None)
