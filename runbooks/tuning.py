"""Memory tuning in the manner of AWS Lambda Power Tuning, measured from REPORT lines, and beyond it.

For each memory size: set it, invoke the function N times with the payload(s), and read each
invocation's REPORT line from the log tail (``LogType=Tail``). Beyond Power Tuning: the request
charge is in the cost (``chalicelib.cost.memory_cost_curve``), cold and warm starts are kept apart,
p50/p90/p99 come with bootstrap intervals, Max Memory Used is shown against the size, and the
original configuration is restored in a ``finally`` whatever happens.

Strategies and their tie-breaking are Power Tuning's (``lambda/utils.js``, ``optimizer.js``):
``cost`` sorts by average cost, ties by duration; ``speed`` by duration, ties by cost; ``balanced``
minimises ``w * cost / max(cost) + (1 - w) * duration / max(duration)`` with a stable sort, so a tie
keeps the smaller memory (sizes are tried in ascending order).
"""

from __future__ import annotations

import base64
import json
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from chalicelib.cost import Architecture, memory_cost_curve
from runbooks import stats

MIN_MEMORY_MB, MAX_MEMORY_MB = 128, 10_240
STRATEGIES = ("cost", "speed", "balanced")
_FIELD = re.compile(r"(?P<key>[A-Za-z][A-Za-z ]*?): (?P<value>[^\t]+)")


class TuningError(RuntimeError):
    """The tuning could not be carried out (configuration change failed, no REPORT line)."""


@dataclass(frozen=True)
class Report:
    """One REPORT line. ``duration_ms`` is what AWS reports (on the local stage: the CPU-share model)."""

    request_id: str
    duration_ms: float
    billed_ms: int
    memory_mb: int
    max_memory_used_mb: int
    init_ms: float | None = None
    status: str = ""
    measured_ms: float | None = None  # the local stage's wall clock; absent on AWS

    @property
    def cold(self) -> bool:
        return self.init_ms is not None


def parse_report(line: str) -> Report:
    """Parse ``REPORT RequestId: ...\\tDuration: 1.23 ms\\tBilled Duration: 2 ms\\t...``.

    >>> parse_report("REPORT RequestId: r1\\tDuration: 1.20 ms\\tBilled Duration: 2 ms\\t"
    ...              "Memory Size: 128 MB\\tMax Memory Used: 40 MB").billed_ms
    2
    """
    if not line.startswith("REPORT "):
        raise ValueError(f"not a REPORT line: {line[:60]!r}")
    fields = {m["key"].strip(): m["value"].strip() for m in _FIELD.finditer(line[len("REPORT ") :])}

    def number(key: str) -> float:
        return float(fields[key].split()[0])

    try:
        return Report(
            request_id=fields["RequestId"],
            duration_ms=number("Duration"),
            billed_ms=int(number("Billed Duration")),
            memory_mb=int(number("Memory Size")),
            max_memory_used_mb=int(number("Max Memory Used")),
            init_ms=number("Init Duration") if "Init Duration" in fields else None,
            status=fields.get("Status", ""),
            measured_ms=number("Measured Duration") if "Measured Duration" in fields else None,
        )
    except (KeyError, ValueError) as exc:
        raise ValueError(f"incomplete REPORT line: {line!r}") from exc


def report_from_tail(log_result: str) -> Report:
    """The REPORT line of a base64 ``LogResult`` (the last 4 KB of the invocation's log)."""
    text = base64.b64decode(log_result).decode("utf-8", "replace")
    lines = [line for line in text.splitlines() if line.startswith("REPORT ")]
    if not lines:
        raise TuningError("the log tail has no REPORT line")
    return parse_report(lines[-1])


@dataclass(frozen=True)
class WeightedPayload:
    payload: Any
    weight: float = 1.0


def payload_sequence(payloads: Sequence[WeightedPayload], count: int, seed: int = 0) -> list[Any]:
    """``count`` payloads in proportion to their weights (largest remainder), in a seeded shuffle.

    Unlike drawing at random, every size gets the same mix, so sizes are compared on equal work.
    """
    total = sum(p.weight for p in payloads)
    if not payloads or total <= 0:
        raise ValueError("need at least one payload with a positive weight")
    exact = [p.weight / total * count for p in payloads]
    counts = [int(x) for x in exact]
    for index in sorted(range(len(payloads)), key=lambda i: exact[i] - counts[i], reverse=True)[: count - sum(counts)]:
        counts[index] += 1
    sequence = [p.payload for p, n in zip(payloads, counts, strict=True) for _ in range(n)]
    random.Random(seed).shuffle(sequence)  # noqa: S311  (a reproducible order, not a secret)
    return sequence


@dataclass
class SizeResult:
    """What was measured at one memory size, and what it costs per invocation."""

    memory_mb: int
    reports: list[Report] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cost_per_invocation: Decimal = Decimal(0)
    duration_for_choice_ms: float = 0.0  # warm trimmed mean of Duration: what strategies compare

    @property
    def warm(self) -> list[Report]:
        return [r for r in self.reports if not r.cold] or list(self.reports)

    @property
    def cold(self) -> list[Report]:
        return [r for r in self.reports if r.cold]

    def billed_trimmed_mean(self) -> float:
        return stats.trimmed_mean([r.billed_ms for r in self.warm])

    def summary(self, resamples: int = 1000) -> dict[str, Any]:
        warm = [r.duration_ms for r in self.warm]
        row: dict[str, Any] = {
            "memory_mb": self.memory_mb,
            "invocations": len(self.reports),
            "errors": len(self.errors),
            "warm": len(self.warm),
            "cold": len(self.cold),
            "duration_ms_trimmed_mean": stats.trimmed_mean(warm),
            "duration_ms_mean": sum(warm) / len(warm),
            "billed_ms_trimmed_mean": self.billed_trimmed_mean(),
            "cold_duration_ms_mean": _mean([r.duration_ms for r in self.cold]),
            "init_ms_mean": _mean([r.init_ms or 0.0 for r in self.cold]),
            "max_memory_used_mb": max(r.max_memory_used_mb for r in self.reports),
            "memory_used_share": max(r.max_memory_used_mb for r in self.reports) / self.memory_mb,
            "cost_per_invocation": self.cost_per_invocation,
        }
        for p in (50, 90, 99):
            interval = stats.bootstrap_interval(warm, _percentile_of(p), resamples=resamples)
            row[f"duration_ms_p{p}"] = interval.estimate
            row[f"duration_ms_p{p}_ci95"] = [interval.low, interval.high]
        mean = stats.bootstrap_interval(warm, stats.trimmed_mean, resamples=resamples)
        row["duration_ms_trimmed_mean_ci95"] = [mean.low, mean.high]
        return row


def _percentile_of(p: float) -> Callable[[Sequence[float]], float]:
    def statistic(samples: Sequence[float]) -> float:
        return stats.percentile(samples, p)

    return statistic


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def price_sizes(results: Sequence[SizeResult], architecture: Architecture) -> None:
    """Cost per invocation at each size from the warm trimmed mean of billed ms, request charge included."""
    measured = {r.memory_mb: Decimal(str(r.billed_trimmed_mean())) for r in results if r.reports}
    curve = {p.memory_mb: p for p in memory_cost_curve(measured, architecture=architecture)}
    for result in results:
        if result.memory_mb in curve:
            result.cost_per_invocation = curve[result.memory_mb].cost_per_invocation
            result.duration_for_choice_ms = stats.trimmed_mean([r.duration_ms for r in result.warm])


@dataclass(frozen=True)
class Candidate:
    memory_mb: int
    cost: float
    duration_ms: float


def choose(candidates: Sequence[Candidate], strategy: str, balanced_weight: float = 0.5) -> Candidate:
    """Power Tuning's choice, tie-breaks included. ``candidates`` must be in ascending memory order."""
    if not candidates:
        raise ValueError("nothing to choose from")
    if strategy == "cost":
        return sorted(candidates, key=lambda c: (c.cost, c.duration_ms))[0]
    if strategy == "speed":
        return sorted(candidates, key=lambda c: (c.duration_ms, c.cost))[0]
    if strategy == "balanced":
        if not 0 <= balanced_weight <= 1:
            raise ValueError("balanced weight must be between 0 and 1")
        max_cost = max(c.cost for c in candidates) or 1.0
        max_duration = max(c.duration_ms for c in candidates) or 1.0

        def value(c: Candidate) -> float:
            return balanced_weight * c.cost / max_cost + (1 - balanced_weight) * c.duration_ms / max_duration

        return sorted(candidates, key=value)[0]  # stable: ties keep the smaller memory
    raise ValueError(f"strategy must be one of {STRATEGIES}")


def candidates(results: Sequence[SizeResult]) -> list[Candidate]:
    return [
        Candidate(r.memory_mb, float(r.cost_per_invocation), r.duration_for_choice_ms)
        for r in sorted(results, key=lambda r: r.memory_mb)
        if r.reports and not r.errors
    ]


class LambdaTuner:
    """Sets a function's memory, invokes it, reads REPORT lines; restores the configuration at the end."""

    def __init__(self, client: Any, function_name: str, *, settle_timeout_s: float = 60.0) -> None:
        self._lambda = client
        self.function_name = function_name
        self._settle_timeout_s = settle_timeout_s

    def configuration(self) -> dict[str, Any]:
        return dict(self._lambda.get_function_configuration(FunctionName=self.function_name))

    def set_memory(self, memory_mb: int) -> None:
        if not MIN_MEMORY_MB <= memory_mb <= MAX_MEMORY_MB:
            raise TuningError(f"memory must be {MIN_MEMORY_MB}..{MAX_MEMORY_MB} MB, got {memory_mb}")
        self._lambda.update_function_configuration(FunctionName=self.function_name, MemorySize=memory_mb)
        self._wait_updated()

    def _wait_updated(self) -> None:
        """AWS applies a configuration change asynchronously: invoking before it settles measures the old size."""
        deadline = time.monotonic() + self._settle_timeout_s
        while time.monotonic() < deadline:
            status = self.configuration().get("LastUpdateStatus", "Successful")
            if status == "Successful":
                return
            if status == "Failed":
                raise TuningError(f"the configuration update of {self.function_name} failed")
            time.sleep(0.5)
        raise TuningError(f"{self.function_name} did not settle within {self._settle_timeout_s} s")

    def invoke(self, payload: Any) -> tuple[Report, str | None]:
        answer = self._lambda.invoke(
            FunctionName=self.function_name, Payload=json.dumps(payload).encode(), LogType="Tail"
        )
        error = None
        if answer.get("FunctionError"):
            body = answer["Payload"].read().decode("utf-8", "replace")
            error = f"{answer['FunctionError']}: {body[:300]}"
        return report_from_tail(answer["LogResult"]), error

    def measure(
        self,
        sizes: Sequence[int],
        payloads: Sequence[WeightedPayload],
        invocations: int,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[list[SizeResult], dict[str, Any]]:
        """Measure every size; the original memory is restored in ``finally``, even after a failure."""
        original = self.configuration()
        results: list[SizeResult] = []
        try:
            for memory_mb in sorted(set(sizes)):
                self.set_memory(memory_mb)
                result = SizeResult(memory_mb)
                for payload in payload_sequence(payloads, invocations, seed=memory_mb):
                    report, error = self.invoke(payload)
                    result.reports.append(report)
                    if error:
                        result.errors.append(error)
                    if progress is not None:
                        progress(1)
                results.append(result)
        finally:
            self.restore(original)
        return results, original

    def restore(self, original: Mapping[str, Any]) -> None:
        if self.configuration().get("MemorySize") != original["MemorySize"]:
            self.set_memory(int(original["MemorySize"]))


def optimizer_document(
    function_name: str,
    architecture: str,
    results: Sequence[SizeResult],
    invocations_per_size: int,
    measured_at: str,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The document the cost optimizer reads (docs/observability.md, ``TuningResult.from_json``).

    ``billed_ms_avg`` is the warm trimmed mean of billed duration: the figure the strategies used.
    """
    return {
        "function_name": function_name,
        "architecture": architecture,
        "measured_at": measured_at,
        "invocations_per_size": invocations_per_size,
        "results": [
            {
                "memory_mb": r.memory_mb,
                "billed_ms_avg": round(r.billed_trimmed_mean(), 3),
                "duration_ms_p50": stats.percentile([x.duration_ms for x in r.warm], 50),
                "duration_ms_mean": sum(x.duration_ms for x in r.warm) / len(r.warm),
                "cost_per_invocation": float(r.cost_per_invocation),
            }
            for r in sorted(results, key=lambda r: r.memory_mb)
            if r.reports
        ],
        **(extra or {}),
    }
