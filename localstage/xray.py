"""X-Ray on the local stage: a daemon that forwards to the embedded X-Ray API, and the services' segments.

Deployed, three parties write a trace. The functions' X-Ray SDK sends subsegments (every AWS call,
the business subsegments of ``chalicelib/observability/tracing.py``) over UDP to the X-Ray daemon,
which batches them into ``PutTraceSegments``. The services write their own segments and pass the
trace header on: API Gateway (a stage segment, ``X-Amzn-Trace-Id`` to the integration and back to
the caller), Lambda (an ``AWS::Lambda`` and an ``AWS::Lambda::Function`` segment per invocation,
the header in ``_X_AMZN_TRACE_ID``), SQS (the sender's header kept as the ``AWSTraceHeader``
attribute, which the consumer's invocation continues) and Step Functions (an execution segment,
the header passed to each Lambda task). So one order is one trace, from ``POST /orders`` to the
last workflow task.

Here:

- ``XRayDaemon`` listens on UDP ``127.0.0.1:<free port>`` (``AWS_XRAY_DAEMON_ADDRESS``) and
  forwards what it receives to the embedded AWS's ``PutTraceSegments`` in batches, as the daemon
  does (UDP: a lost datagram is a lost subsegment, on AWS too);
- ``ServiceTracing`` writes the services' segments and hands the headers on: the HTTP gateway,
  the Lambda emulator, the SQS poller and Step Functions (``localstage/xray_moto.py``) call it;
- ``install_sdk_context`` gives the SDK a Lambda context that reads the invocation's header from
  the invocation's thread. The Lambda runtime sets ``_X_AMZN_TRACE_ID`` per invocation, one
  process per environment; here every function runs on threads of one process, where one
  environment variable cannot hold a header per invocation.

Every invocation is sampled (``Sampled=1``): the local stage is for looking at traces.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aws_xray_sdk.core.models.trace_header import TraceHeader
from aws_xray_sdk.core.models.traceid import TraceId

from localstage.patches import Patches
from localstage.threads import detach_from_served_calls

log = logging.getLogger("localstage.xray")

HEADER = "X-Amzn-Trace-Id"
DAEMON_PREFIX = b'{"format": "json", "version": 1}\n'
MAX_DATAGRAM = 65_507
# .header: the trace header of the invocation running on this thread (what the SDK sees);
# .upstream: the header a service (the HTTP gateway) hands to the invocations it makes from this thread.
_thread = detach_from_served_calls(threading.local())


def new_segment_id() -> str:
    return os.urandom(8).hex()


def new_trace_id() -> str:
    return str(TraceId().to_id())


def child_header(root: str, parent: str) -> str:
    """The header a service hands on: same trace, ``parent`` the segment it wrote, sampled."""
    return f"Root={root};Parent={parent};Sampled=1"


def parse_header(value: str | None) -> TraceHeader | None:
    """A header with a trace id, or None (absent, malformed, or not sampled: a new trace starts)."""
    if not value:
        return None
    header = TraceHeader.from_header_str(value)
    if not header.root or header.sampled == 0:
        return None
    return header


def current_header() -> str | None:
    """The trace header of the invocation running on this thread (what ``_X_AMZN_TRACE_ID`` holds on AWS)."""
    return getattr(_thread, "header", None)


def _current_parsed() -> TraceHeader | None:
    return getattr(_thread, "parsed", None)


@contextmanager
def invocation_header(header: str | None) -> Iterator[None]:
    previous = current_header(), _current_parsed()
    # Parsed once here: the SDK asks for the context several times per AWS call.
    _thread.header, _thread.parsed = header, parse_header(header)
    try:
        yield
    finally:
        _thread.header, _thread.parsed = previous


def upstream_header() -> str | None:
    """The header the service serving this thread hands to the functions it invokes."""
    return getattr(_thread, "upstream", None)


@contextmanager
def handing_on(header: str | None) -> Iterator[None]:
    """Within the block, invocations made from this thread continue ``header``.

    Kept apart from ``invocation_header``: the service's own AWS calls on this thread (the
    emulator's logs and metrics) are not part of anyone's trace.
    """
    previous = upstream_header()
    _thread.upstream = header
    try:
        yield
    finally:
        _thread.upstream = previous


class XRayDaemon:
    """UDP on ``host:port`` -> ``PutTraceSegments`` of the embedded AWS, batched every ``flush_s``."""

    def __init__(self, xray: Any, host: str = "127.0.0.1", port: int = 0, flush_s: float = 0.2) -> None:
        self._xray = xray
        self._flush_s = flush_s
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind((host, port))
        self._socket.settimeout(flush_s)
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.forwarded = 0
        self.rejected = 0

    @property
    def address(self) -> str:
        host, port = self._socket.getsockname()
        return f"{host}:{port}"

    def start(self) -> XRayDaemon:
        self._thread = threading.Thread(target=self._run, name="xray-daemon", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(5)
        self.flush()
        self._socket.close()

    def submit(self, document: dict[str, Any]) -> None:
        """A document written by a service (not over UDP: the services call the API themselves)."""
        with self._lock:
            self._pending.append(json.dumps(document))

    def _run(self) -> None:
        last_flush = time.monotonic()
        while not self._stopped.is_set():
            try:
                datagram = self._socket.recv(MAX_DATAGRAM)
            except TimeoutError:
                datagram = b""
            except OSError:
                return  # closed by stop()
            if datagram:
                self._accept(datagram)
            if time.monotonic() - last_flush >= self._flush_s:
                self.flush()
                last_flush = time.monotonic()

    def _accept(self, datagram: bytes) -> None:
        # The SDK's framing: a JSON header line, then one segment or subsegment document.
        header, _, body = datagram.partition(b"\n")
        if not body or not header.startswith(b"{"):
            log.warning("dropped a datagram that is not an X-Ray daemon document (%d bytes)", len(datagram))
            return
        with self._lock:
            self._pending.append(body.decode())

    def flush(self) -> None:
        with self._lock:
            documents, self._pending = self._pending, []
        for start in range(0, len(documents), 50):
            batch = documents[start : start + 50]
            try:
                answer = self._xray.put_trace_segments(TraceSegmentDocuments=batch)
            except Exception:  # the daemon drops what it cannot send and carries on, as X-Ray's does
                log.exception("PutTraceSegments failed; %d documents dropped", len(batch))
                self.rejected += len(batch)
                continue
            unprocessed = answer.get("UnprocessedTraceSegments") or []
            for item in unprocessed:
                log.warning("segment %s rejected: %s", item.get("Id"), item.get("Message"))
            self.rejected += len(unprocessed)
            self.forwarded += len(batch) - len(unprocessed)


@dataclass
class Span:
    """A service segment being written: its trace, its id, and the header it hands on."""

    trace_id: str
    segment_id: str
    parent_id: str | None
    started: float = field(default_factory=time.time)

    @property
    def header(self) -> str:
        return child_header(self.trace_id, self.segment_id)


@dataclass
class LambdaSpan:
    service: Span  # AWS::Lambda, the service's view (includes throttling and queueing)
    function: Span  # AWS::Lambda::Function, the runtime's view; the handler's subsegments hang here

    @property
    def header(self) -> str:
        return self.function.header


class ServiceTracing:
    """The segments API Gateway, Lambda and Step Functions write, and the headers they pass on."""

    def __init__(self, daemon: XRayDaemon, region: str, account: str) -> None:
        self._daemon = daemon
        self._region = region
        self._account = account
        self._executions: dict[str, Span] = {}
        self._lock = threading.Lock()

    @staticmethod
    def begin(upstream: str | None) -> Span:
        """A segment continuing ``upstream`` (a trace header), or starting a new trace."""
        parent = parse_header(upstream)
        if parent is None:
            return Span(new_trace_id(), new_segment_id(), None)
        return Span(str(parent.root), new_segment_id(), parent.parent)

    def _emit(self, span: Span, name: str, origin: str, ended: float | None = None, **fields: Any) -> None:
        document: dict[str, Any] = {
            "name": name,
            "id": span.segment_id,
            "trace_id": span.trace_id,
            "start_time": span.started,
            "end_time": ended or time.time(),
            "origin": origin,
            **{key: value for key, value in fields.items() if value is not None},
        }
        if span.parent_id:
            document["parent_id"] = span.parent_id
        self._daemon.submit(document)

    # -- API Gateway --------------------------------------------------------------------------

    def end_api(self, span: Span, api: str, stage: str, method: str, url: str, status: int) -> None:
        self._emit(
            span,
            f"{api}/{stage}",
            "AWS::ApiGateway::Stage",
            http={"request": {"method": method, "url": url}, "response": {"status": status}},
            aws={"api_gateway": {"stage": stage}},
            error=True if 400 <= status < 500 else None,
            fault=True if status >= 500 else None,
            throttle=True if status == 429 else None,
        )

    # -- Lambda ---------------------------------------------------------------------------------

    def begin_lambda(self, upstream: str | None) -> LambdaSpan:
        service = self.begin(upstream)
        function = Span(service.trace_id, new_segment_id(), service.segment_id)
        return LambdaSpan(service, function)

    def end_lambda(self, span: LambdaSpan, function_name: str, request_id: str, failed: bool) -> None:
        """Both segments of the invocation; ``failed``: the function errored, timed out or ran out of memory."""
        ended = time.time()
        fault = {"fault": True} if failed else {}
        self._emit(
            span.service,
            function_name,
            "AWS::Lambda",
            ended,
            aws={"request_id": request_id},
            http={"response": {"status": 200}},
            **fault,
        )
        arn = f"arn:aws:lambda:{self._region}:{self._account}:function:{function_name}"
        self._emit(span.function, function_name, "AWS::Lambda::Function", ended, aws={"function_arn": arn}, **fault)

    # -- Step Functions -----------------------------------------------------------------------

    def begin_execution(self, execution_arn: str, upstream: str | None) -> None:
        """StartExecution: the execution continues the caller's trace (a repeated start keeps the first)."""
        with self._lock:
            self._executions.setdefault(execution_arn, self.begin(upstream))

    def execution_header(self, execution_arn: str) -> str | None:
        """The header Step Functions passes to the execution's Lambda tasks."""
        with self._lock:
            span = self._executions.get(execution_arn)
        return span.header if span else None

    def end_execution(self, execution_arn: str, status: str, ended: float | None = None) -> None:
        with self._lock:
            span = self._executions.pop(execution_arn, None)
        if span is None:
            return
        machine = execution_arn.split(":")[6]
        self._emit(
            span,
            machine,
            "AWS::StepFunctions::StateMachine",
            ended,
            aws={"execution_arn": execution_arn},
            fault=True if status != "SUCCEEDED" else None,
        )


def install_sdk_context(patches: Patches, daemon_address: str) -> None:
    """Point the in-process X-Ray SDK at the daemon, with a per-thread Lambda context (undone with ``patches``).

    The SDK is a development requirement (requirements-dev.txt), so the stage always has it. Rather than
    ``xray_recorder.configure``, which cannot be undone, each setting is replaced through ``patches``.
    """
    from aws_xray_sdk import global_sdk_config
    from aws_xray_sdk.core import xray_recorder
    from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter
    from aws_xray_sdk.core.lambda_launcher import LambdaContext
    from aws_xray_sdk.core.models.dummy_entities import DummySegment
    from aws_xray_sdk.core.models.facade_segment import FacadeSegment

    class ThreadLambdaContext(LambdaContext):
        """The SDK's Lambda context, with the header read from the invocation's thread, not the environment."""

        def _refresh_context(self) -> None:
            parsed = _current_parsed()
            segment = getattr(self._local, "segment", None)
            if parsed is None or not parsed.parent or not global_sdk_config.sdk_enabled():
                if not isinstance(segment, DummySegment):
                    self._local.segment, self._local.entities = DummySegment(), []
                return
            if segment is not None and (segment.trace_id, segment.id) == (parsed.root, parsed.parent):
                return
            self._local.segment = FacadeSegment(
                name="facade", traceid=parsed.root, entityid=parsed.parent, sampled=True
            )
            self._local.entities = []

        def put_subsegment(self, subsegment: Any) -> None:
            entity = self.get_trace_entity()
            if not self._is_subsegment(entity) and isinstance(entity, DummySegment):
                return  # outside an invocation (the stage's own clients): nothing to record, nothing to say
            entity.add_subsegment(subsegment)
            self._local.entities.append(subsegment)

    context = ThreadLambdaContext()
    context.context_missing = "IGNORE_ERROR"
    detach_from_served_calls(context._local)  # the invocation's segment and entities
    patches.set("aws-xray-sdk", xray_recorder, "context", context)
    patches.set("aws-xray-sdk", xray_recorder, "emitter", UDPEmitter(daemon_address))
    patches.set("aws-xray-sdk", xray_recorder, "streaming_threshold", 0)  # as in Lambda: sent when closed
    patches.wrap("aws-xray-sdk", xray_recorder, "record_subsegment", _outside_invocations_untraced)


def _outside_invocations_untraced(traced_call: Callable[..., Any]) -> Callable[..., Any]:
    def record_subsegment(wrapped: Any, instance: Any, args: Any, kwargs: Any, *more: Any, **options: Any) -> Any:
        # Calls made outside an invocation (the stage's own pollers, log and metric delivery, moto's
        # interpreter) go straight through: the SDK would only build a dummy subsegment for them,
        # at about 0.6 ms a call, on the same interpreter lock as the functions.
        if _current_parsed() is None:
            return wrapped(*args, **kwargs)
        return traced_call(wrapped, instance, args, kwargs, *more, **options)

    return record_subsegment
