"""What AWS Lambda records about each invocation, written to the embedded AWS.

The emulator stands in for the Lambda service here, so it is the one that
publishes the ``AWS/Lambda`` metrics (dimension ``FunctionName``) and writes
the ``/aws/lambda/<name>`` log group, one stream per execution environment,
named the way Lambda names them: ``YYYY/MM/DD/[$LATEST]<32 hex>``.

Batched off the request path (``batch_window_s > 0``, the stage's setting): Lambda delivers logs
and metrics asynchronously too, seconds later, in batches. Each invocation's lines and metrics are
queued with the principal that writes them (the function's role, so IAM still decides), and a
writer thread sends them every ``batch_window_s``: one ``PutLogEvents`` per stream and one
``PutMetricData`` per namespace for everything that arrived in the window, instead of two or three
calls per invocation on the invocation's own thread. ``flush()`` sends what is queued now (the
stage calls it when it stops, and before answering a read of CloudWatch Logs or metrics, so a
reader sees every invocation that finished before its request). With ``batch_window_s == 0`` every
write is sent at once, on the caller's thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from localstage.emf import metric_data
from localstage.iam.principals import Acting, acting_as, current

log = logging.getLogger("localstage.telemetry")

NAMESPACE = "AWS/Lambda"
MAX_METRIC_DATA = 1_000  # values per PutMetricData call
MAX_LOG_EVENTS = 10_000  # events per PutLogEvents call
MAX_LOG_BYTES = 1_048_576  # bytes per PutLogEvents call, counting 26 bytes of overhead per event
LOG_EVENT_OVERHEAD = 26
# How long the stage's Lambda emulator gathers logs and metrics before writing them (AWS: seconds).
TELEMETRY_BATCH_S = 0.5
# Marks the telemetry writer's own requests, so the read hook (``flush_before_reads``) never waits on itself.
WRITER_HEADER = "X-Localstage-Telemetry"


@dataclass(frozen=True)
class _LogWrite:
    principal: Acting | None
    group: str
    stream: str
    events: list[dict[str, Any]]
    extract: bool  # publish the EMF metrics in the lines once they reached the group


@dataclass(frozen=True)
class _MetricWrite:
    namespace: str
    data: list[dict[str, Any]]


def log_batches(events: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    """``events`` in PutLogEvents-sized batches: at most 10,000 events and 1 MiB each."""
    batch: list[dict[str, Any]] = []
    size = 0
    for event in events:
        event_size = len(event["message"].encode()) + LOG_EVENT_OVERHEAD
        if batch and (len(batch) >= MAX_LOG_EVENTS or size + event_size > MAX_LOG_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(event)
        size += event_size
    if batch:
        yield batch


class Telemetry:
    """Writes log events and metric data with injected (or lazily built) clients, at once or batched."""

    def __init__(self, logs: Any = None, cloudwatch: Any = None, batch_window_s: float = 0.0) -> None:
        self._logs = logs
        self._cloudwatch = cloudwatch
        self._groups: set[str] = set()
        self._lock = threading.Lock()
        self.batch_window_s = batch_window_s
        self._queue: list[_LogWrite | _MetricWrite] = []
        self._queued = threading.Condition(threading.Lock())
        self._flushing = threading.Lock()  # one flush at a time, so writes reach the groups in order
        self._writer: threading.Thread | None = None
        self._closed = False

    @property
    def logs(self) -> Any:
        if self._logs is None:
            self._logs = writer_client("logs")
        return self._logs

    @property
    def cloudwatch(self) -> Any:
        if self._cloudwatch is None:
            self._cloudwatch = writer_client("cloudwatch")
        return self._cloudwatch

    def ensure_log_group(self, group: str) -> None:
        with self._lock:
            if group in self._groups:
                return
            with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
                self.logs.create_log_group(logGroupName=group)
            self._groups.add(group)

    def open_stream(self, group: str, stream: str) -> None:
        self.ensure_log_group(group)
        with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
            self.logs.create_log_stream(logGroupName=group, logStreamName=stream)

    def write_log(self, group: str, stream: str, lines: list[str]) -> None:
        """Write the lines, then publish their EMF metrics (only what reached the log group)."""
        self._write(group, stream, lines, extract=True)

    def put_log_lines(self, group: str, stream: str, lines: list[str]) -> bool:
        """Write the lines to the log group; ``False`` if they could not be (nothing was written).

        Batched, ``True`` means queued: a failure is logged by the writer when it sends them.
        """
        return self._write(group, stream, lines, extract=False)

    def _write(self, group: str, stream: str, lines: list[str], extract: bool) -> bool:
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": line} for line in lines if line]
        if not events:
            return False
        write = _LogWrite(current(), group, stream, events, extract)
        if self.batch_window_s > 0:
            self._enqueue(write)
            return True
        written = self._send_logs([write])
        if written and extract:
            self._send_metrics(self._emf_of(written))
        return bool(written)

    def extract_metrics(self, lines: list[str]) -> None:
        """Publish the metrics of EMF lines, standing in for CloudWatch Logs' own extraction."""
        writes = self._emf_of([_LogWrite(None, "", "", [{"message": line} for line in lines], True)])
        if self.batch_window_s > 0:
            for write in writes:
                self._enqueue(write)
        else:
            self._send_metrics(writes)

    def put_metrics(self, function_name: str, values: list[tuple[str, float, str]]) -> None:
        """``values``: (metric name, value, unit) for one invocation."""
        data = [
            {
                "MetricName": name,
                "Dimensions": [{"Name": "FunctionName", "Value": function_name}],
                "Value": value,
                "Unit": unit,
            }
            for name, value, unit in values
        ]
        write = _MetricWrite(NAMESPACE, data)
        if self.batch_window_s > 0:
            self._enqueue(write)
        else:
            self._send_metrics([write])

    # -- batching -------------------------------------------------------------------------------------

    def _enqueue(self, write: _LogWrite | _MetricWrite) -> None:
        with self._queued:
            closed = self._closed
            if not closed:
                self._queue.append(write)
                if self._writer is None:
                    self._writer = threading.Thread(target=self._run, name="telemetry-writer", daemon=True)
                    self._writer.start()
        if closed:  # after close: sent at once rather than lost
            self._flush_writes([write])

    def _run(self) -> None:
        while True:
            with self._queued:
                if self._closed:
                    return
                self._queued.wait(self.batch_window_s)
            self.flush()

    def flush(self) -> None:
        """Send everything queued so far (one PutLogEvents per stream, one PutMetricData per namespace)."""
        with self._flushing:
            with self._queued:
                writes, self._queue = self._queue, []
            if writes:
                self._flush_writes(writes)

    def close(self) -> None:
        """Send what is queued and stop the writer; later writes are sent at once."""
        with self._queued:
            self._closed = True
            self._queued.notify_all()
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.join(timeout=10)
        self.flush()

    def _flush_writes(self, writes: list[_LogWrite | _MetricWrite]) -> None:
        logs = [w for w in writes if isinstance(w, _LogWrite)]
        metrics = [w for w in writes if isinstance(w, _MetricWrite)]
        written = self._send_logs(logs)
        self._send_metrics(metrics + self._emf_of(written))

    # -- sending --------------------------------------------------------------------------------------

    def _send_logs(self, writes: list[_LogWrite]) -> list[_LogWrite]:
        """One PutLogEvents per (principal, group, stream), in batches; returns the writes that landed."""
        by_stream: dict[tuple[Acting | None, str, str], list[_LogWrite]] = {}
        for write in writes:
            by_stream.setdefault((write.principal, write.group, write.stream), []).append(write)
        landed: list[_LogWrite] = []
        for (principal, group, stream), same in by_stream.items():
            events = sorted((e for w in same for e in w.events), key=lambda e: e["timestamp"])
            try:
                with acting_as(principal):
                    for batch in log_batches(events):
                        self.logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
            except (BotoCoreError, ClientError) as exc:
                # Telemetry must never fail an invocation; say why it is missing instead.
                log.warning("could not write %d log lines to %s: %s", len(events), group, exc)
                continue
            landed += same
        return landed

    @staticmethod
    def _emf_of(writes: list[_LogWrite]) -> list[_MetricWrite]:
        """The EMF metrics in the lines of ``writes`` that ask for extraction, one write per namespace."""
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for write in writes:
            if write.extract:
                for event in write.events:
                    for namespace, data in metric_data(event["message"]):
                        by_namespace.setdefault(namespace, []).extend(data)
        return [_MetricWrite(namespace, data) for namespace, data in by_namespace.items()]

    def _send_metrics(self, writes: list[_MetricWrite]) -> None:
        """One PutMetricData per namespace (up to the API's 1,000 values a call)."""
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for write in writes:
            by_namespace.setdefault(write.namespace, []).extend(write.data)
        for namespace, data in by_namespace.items():
            for start in range(0, len(data), MAX_METRIC_DATA):
                try:
                    self.cloudwatch.put_metric_data(
                        Namespace=namespace, MetricData=data[start : start + MAX_METRIC_DATA]
                    )
                except (BotoCoreError, ClientError) as exc:
                    log.warning("could not publish metrics into %s: %s", namespace, exc)


def _mark_as_writer(request: Any, **_: Any) -> None:
    request.headers[WRITER_HEADER] = "1"


def writer_client(service: str) -> Any:
    """An SDK client whose requests are marked as the telemetry writer's (``flush_before_reads`` lets them by)."""
    import boto3

    client = boto3.client(service)  # boto3's default session: its loaded data is shared, not reloaded
    client.meta.events.register("before-sign", _mark_as_writer)
    return client


def flush_before_reads(app: Callable[..., Any], telemetry: Callable[[], Telemetry | None]) -> Callable[..., Any]:
    """WSGI middleware: a request to CloudWatch Logs or CloudWatch first flushes the queued telemetry.

    Lambda's logs and metrics reach CloudWatch seconds after an invocation on AWS; here they are
    batched for a fraction of a second. Flushing before a read makes every invocation that finished
    before the request visible to it, so tests and runbooks need not wait. The writer's own requests
    (marked with ``WRITER_HEADER``) pass straight through.
    """

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        target = telemetry()
        if target is not None and target.batch_window_s > 0 and "HTTP_X_LOCALSTAGE_TELEMETRY" not in environ:
            scope = environ.get("HTTP_AUTHORIZATION", "")
            if "/logs/aws4_request" in scope or "/monitoring/aws4_request" in scope:
                target.flush()
        return app(environ, start_response)

    return middleware
