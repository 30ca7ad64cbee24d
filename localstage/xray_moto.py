"""What moto's SQS, Step Functions and X-Ray lack for a trace to follow an order (see ``localstage/xray.py``).

- **SQS**: AWS keeps the ``X-Amzn-Trace-Id`` header of a ``SendMessage`` request as the message's
  ``AWSTraceHeader`` system attribute; moto only takes an explicit ``MessageSystemAttributes``.
- **Step Functions**: an execution continues the trace of its ``StartExecution`` request, writes a
  segment, and passes the header to its Lambda tasks; moto's interpreter does none of it.
- **X-Ray**: ``GetTraceSummaries`` with a ``FilterExpression`` is a 500 in moto ("not implemented"),
  and its summaries carry no annotations. Finding an order's trace is
  ``annotation.order_id = "ord_..."``, so the annotation comparisons (``annotation.KEY = "VALUE"``,
  joined by ``AND``) are implemented here; any other expression is a 400 that says so. X-Ray keeps
  traces 30 days; moto keeps them in memory for ever, so the local stage keeps the latest
  ``LOCAL_XRAY_MAX_TRACES`` (2,000; about 60 documents each) and forgets older ones.

Installed by ``install`` through the checked layer (``localstage.patches``), undone with it; each
wrapper calls moto's own method.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

from moto.core.exceptions import AWSError

from localstage.patches import Patches, require
from localstage.threads import detach_from_served_calls
from localstage.xray import HEADER, ServiceTracing, invocation_header

# .header: X-Amzn-Trace-Id of the SQS, SNS or EventBridge request being served on this thread
_request = detach_from_served_calls(threading.local())

MAX_TRACES = 2_000
_TERM = re.compile(r'^\s*annotation\.([A-Za-z0-9_]+)\s*=\s*"([^"]*)"\s*$')


class UnsupportedFilterError(AWSError):  # an AWSError: moto's X-Ray answers others with a 500
    TYPE = "InvalidRequestException"
    STATUS = 400

    def __init__(self, expression: str) -> None:
        super().__init__(
            f"the local stage's X-Ray supports filter expressions of the form "
            f'annotation.KEY = "VALUE" [AND ...], not: {expression}'
        )


def parse_filter(expression: str) -> dict[str, str]:
    """``annotation.order_id = "ord_1" AND annotation.x = "y"`` -> ``{"order_id": "ord_1", "x": "y"}``."""
    wanted: dict[str, str] = {}
    for term in re.split(r"\s+AND\s+", expression.strip(), flags=re.IGNORECASE):
        match = _TERM.match(term)
        if match is None:
            raise UnsupportedFilterError(expression)
        wanted[match.group(1)] = match.group(2)
    return wanted


def _annotations(document: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    yield from (document.get("annotations") or {}).items()
    for child in document.get("subsegments") or []:
        yield from _annotations(child)


def trace_annotations(segments: list[Any]) -> dict[str, list[Any]]:
    """Every annotation of a trace's documents (nested subsegments included), as key -> values."""
    found: dict[str, list[Any]] = {}
    for segment in segments:
        for key, value in _annotations(json.loads(segment.raw)):
            if value not in found.setdefault(key, []):
                found[key].append(value)
    return found


def _annotation_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BooleanValue": value}
    if isinstance(value, int | float):
        return {"NumberValue": value}
    return {"StringValue": str(value)}


def _summary(original: Callable[..., Any]) -> Callable[..., Any]:
    def summary(self: Any, start_time: Any, end_time: Any, filter_expression: Any = None) -> dict[str, Any]:
        wanted = parse_filter(filter_expression) if filter_expression else {}
        result: dict[str, Any] = original(self, start_time, end_time, None)
        kept = []
        for item in result["TraceSummaries"]:
            annotations = trace_annotations(self._traces[item["Id"]]["segments"])
            if all(str(value) in map(str, annotations.get(key, [])) for key, value in wanted.items()):
                item["Annotations"] = {
                    key: [{"AnnotationValue": _annotation_value(v), "ServiceIds": []} for v in values]
                    for key, values in annotations.items()
                }
                kept.append(item)
        result["TraceSummaries"] = kept
        result["TracesProcessedCount"] = len(kept)
        return result

    return summary


def _bounded(original: Callable[..., Any], limit: int) -> Callable[..., Any]:
    def put_segment(self: Any, segment: Any) -> None:
        original(self, segment)
        while len(self._traces) > limit:  # oldest first: dicts keep insertion order
            del self._traces[next(iter(self._traces))]

    return put_segment


class BackendXRay:
    """``PutTraceSegments`` for the stage's own X-Ray daemon, handed to moto's X-Ray backend directly.

    The daemon forwards every function's documents (IAM does not check it: docs/local-stage.md), so
    its calls need no SDK request, signature, HTTP parse or response: under load those were about a
    fifteenth of the stage's busy time. moto's backend does what its ``PutTraceSegments`` handler
    does for each document (parse, store, trim to ``LOCAL_XRAY_MAX_TRACES``), and a bad document is
    answered as moto answers it, in ``UnprocessedTraceSegments``.
    """

    def __init__(self, account: str, region: str) -> None:
        self.account, self.region = account, region

    def put_trace_segments(self, TraceSegmentDocuments: list[str]) -> dict[str, Any]:  # the API's keyword
        from moto.xray.exceptions import BadSegmentException
        from moto.xray.models import xray_backends

        require("moto")
        backend = xray_backends[self.account][self.region]
        unprocessed = []
        for document in TraceSegmentDocuments:
            try:
                backend.process_segment(document)
            except BadSegmentException as bad:
                unprocessed.append(bad.to_dict())
        return {"UnprocessedTraceSegments": unprocessed}


def request_trace_header() -> str | None:
    """The trace header of the SQS, SNS or EventBridge request this thread serves, if it carried one."""
    return getattr(_request, "header", None)


def _traced_request(original: Callable[..., Any]) -> Callable[..., Any]:
    """Keep the request's header for the deliveries moto makes while serving it."""

    def handle(self: Any) -> Any:
        # Restored, not cleared: served in process, a delivery can make a call of its own on this thread.
        outer = getattr(_request, "header", None)
        _request.header = self.headers.get(HEADER) if self.headers else None
        try:
            return original(self)
        finally:
            _request.header = outer

    return handle


def _sqs_backend_send(original: Callable[..., Any]) -> Callable[..., Any]:
    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        header = getattr(_request, "header", None)
        if header:
            system = dict(kwargs.get("system_attributes") or {})
            system.setdefault("AWSTraceHeader", {"StringValue": header, "DataType": "String"})
            kwargs["system_attributes"] = system
        return original(self, *args, **kwargs)

    return send_message


def _start_execution(tracing: ServiceTracing) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        def start_execution(self: Any) -> Any:
            header = self.headers.get(HEADER) if self.headers else None
            machine, name = self._get_param("stateMachineArn"), self._get_param("name")
            # Registered before the execution runs, so its first task already carries the header.
            if name:
                tracing.begin_execution(f"{machine.replace(':stateMachine:', ':execution:', 1)}:{name}", header)
            return original(self)

        return start_execution

    return wrap


def _task_invocation(tracing: ServiceTracing) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        def execute(env: Any, *args: Any, **kwargs: Any) -> Any:
            execution = env.states.context_object.context_object_data["Execution"]["Id"]
            with invocation_header(tracing.execution_header(execution)):
                return original(env, *args, **kwargs)

        return execute

    return wrap


def _client_with_header(original: Callable[..., Any]) -> Callable[..., Any]:
    from localstage.xray import current_header

    def add_header(request: Any, **_: Any) -> None:
        # The SDK, when it traces the interpreter's call, has already set one naming its subsegment.
        header = current_header()
        if header and HEADER not in request.headers:
            request.headers[HEADER] = header

    clients: dict[tuple[str, str, str], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # moto builds a new client for every task (about 5 ms of CPU each); one per region, service and
        # port serves them all. moto 5.2.5 ignores ``state_credentials`` (fixed keys); requests are
        # signed per call as the acting execution role instead (localstage/iam/principals.py).
        key = (region, service, os.environ.get("MOTO_PORT", ""))
        with lock:
            client = clients.get(key)
            if client is None:
                client = original(region, service, state_credentials)
                client.meta.events.register("before-send.lambda.Invoke", add_header)
                clients[key] = client
        return client

    return boto_client_for


def install(patches: Patches, tracing: ServiceTracing, max_traces: int = MAX_TRACES) -> None:
    """Install the hooks (undone with ``patches``); ``tracing`` receives the Step Functions executions."""
    from moto.events.responses import EventsHandler
    from moto.sns.responses import SNSResponse
    from moto.sqs.models import SQSBackend
    from moto.sqs.responses import SQSResponse
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.responses import StepFunctionResponse
    from moto.xray.models import SegmentCollection

    patches.wrap("moto", SegmentCollection, "summary", _summary)
    patches.wrap("moto", SegmentCollection, "put_segment", lambda original: _bounded(original, max_traces))
    patches.wrap("moto", SQSResponse, "send_message", _traced_request)
    patches.wrap("moto", SQSResponse, "send_message_batch", _traced_request)
    patches.wrap("moto", SNSResponse, "publish", _traced_request)
    patches.wrap("moto", SNSResponse, "publish_batch", _traced_request)
    patches.wrap("moto", EventsHandler, "put_events", _traced_request)
    patches.wrap("moto", SQSBackend, "send_message", _sqs_backend_send)
    patches.wrap("moto", StepFunctionResponse, "start_execution", _start_execution(tracing))
    patches.wrap("moto", lambda_eval_utils, "execute_lambda_function_integration", _task_invocation(tracing))
    patches.wrap("moto", lambda_eval_utils, "boto_client_for", _client_with_header)
