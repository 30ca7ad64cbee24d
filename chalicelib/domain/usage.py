"""What the cost optimizer reads about a function: its configuration, its usage sums, tuning measurements.

Plain data, no I/O. Usage figures are sums over the observation window (the ``Sum`` statistic
added over its datapoints), never a number of datapoints and never an average of averages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from chalicelib.domain.errors import invalid

TUNING_PREFIX = "memory-tuning/"
TUNING_LATEST = "latest.json"


def tuning_key(function_name: str) -> str:
    """Where the memory-tuning runbook saves a function's latest results in the reports bucket."""
    return f"{TUNING_PREFIX}{function_name}/{TUNING_LATEST}"


@dataclass(frozen=True)
class FunctionConfig:
    name: str
    memory_mb: int
    architecture: str = "x86_64"
    timeout_seconds: int = 3
    ephemeral_mb: int = 512


@dataclass(frozen=True)
class FunctionUsage:
    """One function's window, as totals: ``duration_ms`` is the Sum of the raw ``Duration`` metric."""

    invocations: Decimal = Decimal(0)
    duration_ms: Decimal = Decimal(0)
    errors: Decimal = Decimal(0)
    throttles: Decimal = Decimal(0)
    max_memory_used_mb: Decimal | None = None  # Maximum of the EMF ``MaxMemoryUsed``; None if never reported

    @property
    def billed_ms_upper_bound(self) -> Decimal:
        """Billed time: each invocation is rounded up to 1 ms, so raw time plus at most 1 ms per invocation."""
        return self.duration_ms + self.invocations

    @property
    def average_duration_ms(self) -> Decimal | None:
        """Sum of durations over Sum of invocations: weighted by traffic, unlike an average of hourly averages."""
        return self.duration_ms / self.invocations if self.invocations else None


@dataclass(frozen=True)
class TuningResult:
    """Durations measured per memory size by the memory-tuning runbook (see docs/observability.md).

    ``{"function_name": "...", "architecture": "x86_64", "measured_at": "2026-11-27T10:00:00Z",
    "invocations_per_size": 50, "results": [{"memory_mb": 128, "billed_ms_avg": 812.4}, ...]}``
    """

    function_name: str
    architecture: str
    measured_at: str
    billed_ms_by_memory: dict[int, Decimal] = field(default_factory=dict)
    invocations_per_size: int | None = None
    source: str = ""

    @classmethod
    def from_json(cls, document: Mapping[str, Any], source: str = "") -> TuningResult:
        """``ValidationError`` for a document the runbook did not write (missing results, bad sizes)."""
        results = document.get("results")
        if not isinstance(results, list) or not results:
            raise invalid("results", "must list at least one measured memory size")
        measured: dict[int, Decimal] = {}
        for entry in results:
            try:
                memory = int(entry["memory_mb"])
                billed = Decimal(str(entry["billed_ms_avg"]))
            except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
                raise invalid("results", "each entry needs memory_mb and billed_ms_avg") from exc
            if not 128 <= memory <= 10_240 or billed < 0:
                raise invalid("results", f"memory {memory} MB or duration {billed} ms is out of range")
            measured[memory] = billed
        count = document.get("invocations_per_size")
        return cls(
            function_name=str(document.get("function_name", "")),
            architecture=str(document.get("architecture", "x86_64")),
            measured_at=str(document.get("measured_at", "")),
            billed_ms_by_memory=measured,
            invocations_per_size=int(count) if isinstance(count, int) else None,
            source=source,
        )
