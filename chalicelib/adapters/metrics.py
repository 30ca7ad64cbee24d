"""``MetricsSink`` adapters: into the running invocation's EMF recorder, or into a list (tests)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.observability.metrics import current

log = logging.getLogger(__name__)


class InvocationMetrics:
    """Adds to the recorder that the invocation's middleware flushes as EMF when the handler returns.

    Outside an invocation (a script, a benchmark) there is no recorder: the value is dropped, with
    a debug line, because a metric must never fail the business operation that produced it.
    """

    def __init__(self, default_dimensions: Mapping[str, str] | None = None) -> None:
        self._defaults = dict(default_dimensions or {})

    def add(self, name: str, value: float, unit: str = "Count", dimensions: Mapping[str, str] | None = None) -> None:
        recorder = current()
        if recorder is None:
            log.debug("metric %s=%s outside an invocation: not recorded", name, value)
            return
        recorder.add(name, value, unit, {**self._defaults, **(dimensions or {})})


@dataclass(frozen=True)
class RecordedMetric:
    name: str
    value: float
    unit: str
    dimensions: dict[str, str]


class RecordingMetrics:
    """In-memory ``MetricsSink`` that keeps every value, for tests and the in-memory container."""

    def __init__(self) -> None:
        self.recorded: list[RecordedMetric] = []
        self._lock = threading.Lock()

    def add(self, name: str, value: float, unit: str = "Count", dimensions: Mapping[str, str] | None = None) -> None:
        with self._lock:
            self.recorded.append(RecordedMetric(name, float(value), unit, dict(dimensions or {})))

    def total(self, name: str) -> float:
        return sum(m.value for m in self.recorded if m.name == name)
