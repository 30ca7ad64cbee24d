"""The cost optimizer's judgements for one function, each with its reason and its confidence.

Memory advice comes from measurements: the memory-tuning runbook's durations per memory size when
they exist (high confidence: duration was measured at each size), otherwise Max Memory Used and
duration at the current size, in the spirit of AWS Compute Optimizer (at least 50 invocations, keep
headroom above the peak). Duration changes with memory (CPU is proportional to it), so a saving
estimated without measurements is a range: up to "duration unchanged", down to nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Any

from chalicelib.cost import (
    Architecture,
    ObservedLambdaUsage,
    PriceBook,
    memory_cost_curve,
    monthly_projection,
    to_month,
)
from chalicelib.domain.usage import FunctionConfig, FunctionUsage, TuningResult

MIN_INVOCATIONS_FOR_MEMORY = 50  # AWS Compute Optimizer's minimum for a Lambda recommendation
LONG_RUNNING_MS = Decimal(5000)  # the seed's threshold
EXPENSIVE_PER_INVOCATION = Decimal("0.001")  # the seed's threshold, USD
HEADROOM = Decimal("0.8")  # keep the peak at or under 80 % of the allocation
UNDER_PROVISIONED = Decimal("0.9")  # a peak above 90 % risks running out of memory
CPU_BOUND_HINT_MS = Decimal(1000)  # long invocations are more likely to be CPU-bound
MEMORY_STEP_MB = 64


@dataclass(frozen=True)
class Recommendation:
    kind: str  # unused, performance, cost, memory, architecture
    action: str
    reason: str
    confidence: str  # high, medium, low
    monthly_saving_max: Decimal | None = None
    monthly_saving_min: Decimal | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MemoryAnalysis:
    status: str  # measured, estimated, optimized, insufficient_data
    basis: str
    recommendation: Recommendation | None = None


def monthly_cost(
    config: FunctionConfig,
    usage: FunctionUsage,
    window_days: int,
    prices: PriceBook,
    memory_mb: int | None = None,
    architecture: str | None = None,
    billed_ms: Decimal | None = None,
) -> Decimal:
    """The window projected to an average month once, priced at first-tier rates without free tier."""
    observed = ObservedLambdaUsage(usage.invocations, usage.billed_ms_upper_bound if billed_ms is None else billed_ms)
    projection = monthly_projection(
        observed,
        window_days,
        memory_mb=memory_mb or config.memory_mb,
        architecture=Architecture(architecture or config.architecture),
        ephemeral_mb=config.ephemeral_mb,
        prices=prices.lambda_,
    )
    return projection.cost.total


def size_for_peak(peak_mb: Decimal) -> int:
    """The smallest 64 MB multiple (at least 128 MB) that keeps ``peak_mb`` under the headroom."""
    steps = (peak_mb / HEADROOM / MEMORY_STEP_MB).to_integral_value(rounding=ROUND_CEILING)
    return max(128, int(steps) * MEMORY_STEP_MB)


def memory_from_tuning(
    config: FunctionConfig, usage: FunctionUsage, tuning: TuningResult, window_days: int, prices: PriceBook
) -> MemoryAnalysis:
    """The cheapest measured size per invocation (request charge included), against the current one."""
    arch = Architecture(config.architecture)
    curve = memory_cost_curve(
        tuning.billed_ms_by_memory, architecture=arch, ephemeral_mb=config.ephemeral_mb, prices=prices.lambda_
    )
    best = min(curve, key=lambda p: (p.cost_per_invocation, p.memory_mb))
    current = next((p for p in curve if p.memory_mb == config.memory_mb), None)
    basis = f"memory-tuning results {tuning.source or tuning.function_name} measured {tuning.measured_at}"
    if current is None and usage.invocations:
        observed_ms = usage.billed_ms_upper_bound / usage.invocations
        current = memory_cost_curve(
            {config.memory_mb: observed_ms}, architecture=arch, ephemeral_mb=config.ephemeral_mb, prices=prices.lambda_
        )[0]
    if current is None or best.memory_mb == config.memory_mb or best.cost_per_invocation >= current.cost_per_invocation:
        return MemoryAnalysis("optimized" if current is not None else "measured", basis)
    saving = (current.cost_per_invocation - best.cost_per_invocation) * to_month(usage.invocations, window_days)
    curve_details = [
        {"memory_mb": p.memory_mb, "billed_ms": float(p.billed_ms), "cost_per_invocation": float(p.cost_per_invocation)}
        for p in curve
    ]
    return MemoryAnalysis(
        "measured",
        basis,
        Recommendation(
            kind="memory",
            action=f"set memory to {best.memory_mb} MB (now {config.memory_mb} MB)",
            reason=(
                f"measured: {best.memory_mb} MB takes {best.billed_ms} ms and costs {best.cost_per_invocation:.3e} USD "
                f"per invocation, against {current.billed_ms} ms and {current.cost_per_invocation:.3e} USD "
                f"at {config.memory_mb} MB"
            ),
            confidence="high",
            monthly_saving_max=saving,
            monthly_saving_min=saving,
            details={"recommended_memory_mb": best.memory_mb, "curve": curve_details, "source": tuning.source},
        ),
    )


def memory_from_usage(
    config: FunctionConfig, usage: FunctionUsage, window_days: int, prices: PriceBook
) -> MemoryAnalysis:
    """Compute Optimizer-style reasoning from the peak memory and the duration at the current size."""
    peak = usage.max_memory_used_mb
    if peak is None or usage.invocations < MIN_INVOCATIONS_FOR_MEMORY:
        return MemoryAnalysis(
            "insufficient_data",
            f"needs MaxMemoryUsed and at least {MIN_INVOCATIONS_FOR_MEMORY} invocations "
            f"(has {int(usage.invocations)}); or run the memory-tuning runbook",
        )
    basis = f"Max Memory Used {peak} MB over {int(usage.invocations)} invocations at {config.memory_mb} MB"
    target = size_for_peak(peak)
    now = monthly_cost(config, usage, window_days, prices)
    at_target = monthly_cost(config, usage, window_days, prices, memory_mb=target)
    details = {"recommended_memory_mb": target, "max_memory_used_mb": float(peak)}
    if peak >= UNDER_PROVISIONED * config.memory_mb:
        return MemoryAnalysis(
            "estimated",
            basis,
            Recommendation(
                kind="memory",
                action=f"raise memory to {target} MB (now {config.memory_mb} MB)",
                reason=f"the peak of {peak} MB is over {UNDER_PROVISIONED:.0%} of the allocation: out-of-memory risk",
                confidence="medium",
                # Duration unchanged is the worst case; more CPU usually shortens it and pays some back.
                monthly_saving_max=Decimal(0),
                monthly_saving_min=now - at_target,
                details=details,
            ),
        )
    if target >= config.memory_mb:
        return MemoryAnalysis("optimized", basis)
    average = usage.average_duration_ms or Decimal(0)
    return MemoryAnalysis(
        "estimated",
        basis,
        Recommendation(
            kind="memory",
            action=f"consider {target} MB (now {config.memory_mb} MB); measure first with the memory-tuning runbook",
            reason=(
                f"the peak of {peak} MB fits in {target} MB with {1 - HEADROOM:.0%} headroom; the saving assumes "
                "the duration stays as it is, which holds for I/O-bound code only: with less memory a function "
                "gets less CPU, and a CPU-bound one slows down until nothing is saved"
            ),
            confidence="low" if average > CPU_BOUND_HINT_MS else "medium",
            monthly_saving_max=now - at_target,
            monthly_saving_min=Decimal(0),
            details=details,
        ),
    )


def arm64_saving(config: FunctionConfig, usage: FunctionUsage, window_days: int, prices: PriceBook) -> Recommendation:
    """arm64's lower GB-second price at the same duration (x86_64 functions with traffic only)."""
    now = monthly_cost(config, usage, window_days, prices)
    on_arm = monthly_cost(config, usage, window_days, prices, architecture=Architecture.ARM64.value)
    return Recommendation(
        kind="architecture",
        action="move to arm64 (Graviton)",
        reason=(
            "arm64 GB-seconds cost 20 % less; assumes the same duration (pure-Python code usually runs as fast) "
            "and a package without x86-only native code (this one is pure Python: PyJWT)"
        ),
        confidence="medium",
        monthly_saving_max=now - on_arm,
        monthly_saving_min=now - on_arm,
    )
