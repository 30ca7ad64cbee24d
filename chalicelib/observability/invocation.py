"""One invocation, observed: bound log context, the seed's per-function metrics, one EMF flush.

``app.py``'s single ``@app.middleware("all")`` runs every handler through ``observe``. The
metrics are the seed's ``monitor_performance`` figures (FunctionExecutionTime, FunctionSuccess,
FunctionError by ErrorType) plus MaxMemoryUsed, which the cost optimizer reads, written as EMF log
lines at the end of the invocation: no ``put_metric_data`` call on the request path.
"""

from __future__ import annotations

import logging
import resource
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, TypeVar

from chalicelib.observability import logs, tracing
from chalicelib.observability.correlation import InvocationIds
from chalicelib.observability.metrics import MetricsRecorder, start_recording, stop_recording

T = TypeVar("T")
log = logging.getLogger("ecommerce.invocation")

_setup_lock = threading.Lock()
_set_up = False


def set_up_once(tracing_enabled: bool) -> None:
    """JSON logs and tracing, configured by the first invocation of the process (never at import)."""
    global _set_up
    if _set_up:
        return
    with _setup_lock:
        if not _set_up:
            logs.configure()
            tracing.configure(tracing_enabled)
            _set_up = True


def max_memory_used_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports ``ru_maxrss`` in KB).

    Close to Lambda's REPORT ``Max Memory Used`` (which also counts the runtime's own process):
    the cost optimizer's memory reasoning reads it, so it is an input there, not a bill.
    """
    kilobytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kilobytes / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def observe(
    ids: InvocationIds,
    call: Callable[[], T],
    failure_of: Callable[[T], str | None] = lambda _: None,
    stream: IO[str] | None = None,
) -> T:
    """Run ``call`` inside the invocation's log context and metrics; exceptions are recorded and re-raised.

    ``failure_of`` names a failure that is an answer rather than an exception (an HTTP 5xx).
    """
    recorder = MetricsRecorder(stream=stream)
    start = time.perf_counter()
    error_type: str | None = None
    # Tokens rather than ``with logs.bound(...)`` / ``with recording(...)``: the same scopes, without
    # two generator-based context managers on every request (see docs/benchmarks.md, warm rate).
    log_scope = logs.push(
        function=ids.function, request_id=ids.request_id, correlation_id=ids.correlation_id, order_id=ids.order_id
    )
    try:
        try:
            metrics_scope = start_recording(recorder)
            try:
                result = call()
            finally:
                stop_recording(metrics_scope)
            error_type = failure_of(result)
            return result
        except Exception as exc:
            error_type = type(exc).__name__
            log.warning("invocation failed: %s", exc, extra={"error_type": error_type})
            raise
        finally:
            _record(recorder, ids.function, (time.perf_counter() - start) * 1000, error_type)
            recorder.flush()
    finally:
        logs.pop(log_scope)


def _record(recorder: MetricsRecorder, function: str, elapsed_ms: float, error_type: str | None) -> None:
    per_function = {"FunctionName": function}
    timing = ("FunctionExecutionTime", round(elapsed_ms, 3), "Milliseconds")
    memory = ("MaxMemoryUsed", max_memory_used_mb(), "Megabytes")
    if error_type is None:
        recorder.add_all((timing, memory, ("FunctionSuccess", 1, "Count")), per_function)
    else:
        recorder.add_all((timing, memory), per_function)
        recorder.add("FunctionError", 1, "Count", {**per_function, "ErrorType": error_type})
