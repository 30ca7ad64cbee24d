"""The scheduled cost optimizer (the seed's ``cost_optimizer_function``), with the seed's defects fixed.

One run: list the stage's functions (every page, or the ones the event names), read each one's sums
for the window with batched GetMetricData, price them with ``chalicelib.cost`` (projected to a month
once), judge them (``cost_recommendations``), and write one report per scheduled run to the reports
bucket as ``cost-optimization-report-{timestamp}.json``, the timestamp being the schedule's, so a
retried run overwrites its own report instead of adding one.

Example (an operator's manual run, nothing written)::

    optimizer.run(CostRun(dry_run=True, function_names=("ecommerce-backend-dev-process_order",)))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from chalicelib.cost import US_EAST_1, Architecture, PriceBook, lambda_cost, monthly_projection
from chalicelib.cost.projection import ObservedLambdaUsage
from chalicelib.domain.errors import invalid
from chalicelib.domain.ports import FunctionCatalog, ReportStore, UsageMetrics
from chalicelib.domain.usage import FunctionConfig, FunctionUsage, TuningResult
from chalicelib.services.cost_recommendations import (
    EXPENSIVE_PER_INVOCATION,
    LONG_RUNNING_MS,
    MemoryAnalysis,
    Recommendation,
    arm64_saving,
    memory_from_tuning,
    memory_from_usage,
)

DEFAULT_WINDOW_DAYS = 14  # AWS Compute Optimizer's look-back for Lambda
MAX_WINDOW_DAYS = 455  # CloudWatch keeps hourly (and so daily) data this long
REPORT_VERSION = 1


@dataclass(frozen=True)
class CostRun:
    """What one run analyses. ``at`` is the scheduled time: it names the report."""

    at: datetime
    days: int = DEFAULT_WINDOW_DAYS
    function_names: tuple[str, ...] = ()
    dry_run: bool = False

    @classmethod
    def from_event(cls, event: Mapping[str, Any], now: datetime | None = None) -> CostRun:
        """From a scheduled event; options in ``detail`` (or at the top, as the seed read them).

        ``{"detail": {"function_names": ["..."], "days": 7, "dry_run": true}}``
        """
        options = {**{k: v for k, v in event.items() if k != "detail"}, **(event.get("detail") or {})}
        names = options.get("function_names") or []
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise invalid("function_names", "must be a list of function names")
        days = options.get("days", DEFAULT_WINDOW_DAYS)
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_WINDOW_DAYS:
            raise invalid("days", f"must be a whole number of days from 1 to {MAX_WINDOW_DAYS}")
        return cls(
            at=_parse_time(event.get("time")) or now or datetime.now(UTC),
            days=days,
            function_names=tuple(names),
            dry_run=options.get("dry_run") is True,
        )


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def report_key(at: datetime) -> str:
    """The seed's key pattern."""
    return f"cost-optimization-report-{at.astimezone(UTC):%Y%m%d-%H%M%S}.json"


def _usd(value: Decimal | None) -> float | None:
    return None if value is None else float(value.quantize(Decimal("1e-10")))


def _ms(value: Decimal | None) -> float | None:
    return None if value is None else float(round(value, 3))


def _recommendation(function: str, rec: Recommendation) -> dict[str, Any]:
    return {
        "function": function,
        "type": rec.kind,
        "action": rec.action,
        "reason": rec.reason,
        "confidence": rec.confidence,
        "monthly_saving_usd": {"min": _usd(rec.monthly_saving_min), "max": _usd(rec.monthly_saving_max)},
        **rec.details,
    }


class CostOptimizer:
    def __init__(
        self,
        functions: FunctionCatalog,
        metrics: UsageMetrics,
        reports: ReportStore,
        stage_function_prefix: str,
        prices: PriceBook = US_EAST_1,
    ) -> None:
        self._functions = functions
        self._metrics = metrics
        self._reports = reports
        self._prefix = stage_function_prefix  # "<app>-<stage>": the API handler, and "<app>-<stage>-<name>"
        self._prices = prices

    def run(self, request: CostRun) -> dict[str, Any]:
        """Build the report; write it unless ``dry_run``. Returns where it went and its summary."""
        report = self.report(request)
        if request.dry_run:
            return {"dry_run": True, "report": report}
        location = self._reports.save(report_key(request.at), report)
        return {"message": "Cost optimization report generated", "report_location": location, **report["summary"]}

    def report(self, request: CostRun) -> dict[str, Any]:
        end = request.at.astimezone(UTC).replace(second=0, microsecond=0)
        start = end - timedelta(days=request.days)
        configs = self._stage_functions(request.function_names)
        usage = self._metrics.usage([c.name for c in configs], start, end) if configs else {}
        tuning = self._reports.tuning_results() if configs else {}
        functions: dict[str, Any] = {}
        recommendations: list[dict[str, Any]] = []
        no_data = not any(u.invocations for u in usage.values())
        for config in configs:
            entry, recs = self._analyse(config, usage.get(config.name, FunctionUsage()), tuning, request.days, no_data)
            functions[config.name] = entry
            recommendations.extend(_recommendation(config.name, r) for r in recs)
        report: dict[str, Any] = {
            "report_version": REPORT_VERSION,
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "scheduled_at": request.at.astimezone(UTC).isoformat(timespec="seconds"),
            "window": {"start": start.isoformat(), "end": end.isoformat(), "days": request.days},
            "status": "no_data" if no_data else "ok",
            "prices": {
                "region": self._prices.region,
                "currency": self._prices.currency,
                "taken_on": self._prices.taken_on.isoformat(),
                "basis": "first-tier rates, no free tier; billed time = Duration Sum + 1 ms per invocation at most",
            },
            "total_functions_analyzed": len(configs),
            "functions": functions,
            "unused_functions": [] if no_data else [n for n, f in functions.items() if f["invocations"] == 0],
            "optimization_recommendations": recommendations,
            "summary": self._summary(functions, recommendations),
        }
        if no_data:
            report["message"] = (
                f"No invocations recorded in the last {request.days} days: nothing to analyse yet "
                "(a new stage, or metrics not reaching CloudWatch)."
            )
        return report

    def _stage_functions(self, names: Sequence[str]) -> list[FunctionConfig]:
        if names:
            return self._functions.named(names)
        return [
            f
            for f in self._functions.functions(self._prefix)
            if f.name == self._prefix or f.name.startswith(self._prefix + "-")
        ]

    def _analyse(
        self,
        config: FunctionConfig,
        usage: FunctionUsage,
        tuning: Mapping[str, TuningResult],
        days: int,
        no_data: bool,
    ) -> tuple[dict[str, Any], list[Recommendation]]:
        billed = usage.billed_ms_upper_bound
        arch = config.architecture
        memory_mb, architecture, ephemeral_mb = config.memory_mb, Architecture(arch), config.ephemeral_mb
        window_cost = lambda_cost(
            usage.invocations,
            total_billed_ms=billed,
            memory_mb=memory_mb,
            architecture=architecture,
            ephemeral_mb=ephemeral_mb,
            prices=self._prices.lambda_,
        )
        month = monthly_projection(
            ObservedLambdaUsage(usage.invocations, billed),
            days,
            memory_mb=memory_mb,
            architecture=architecture,
            ephemeral_mb=ephemeral_mb,
            prices=self._prices.lambda_,
        )
        per_invocation = window_cost.total / usage.invocations if usage.invocations else None
        recs: list[Recommendation] = []
        memory = MemoryAnalysis("insufficient_data", "no invocations in the window")
        if usage.invocations:
            measured = tuning.get(config.name)
            if measured is not None and measured.architecture == arch:
                memory = memory_from_tuning(config, usage, measured, days, self._prices)
            else:
                memory = memory_from_usage(config, usage, days, self._prices)
            recs.extend(self._rules(config, usage, per_invocation, days))
            if memory.recommendation is not None:
                recs.append(memory.recommendation)
        elif not no_data:
            recs.append(Recommendation("unused", "consider removing it", f"no invocations in {days} days", "high"))
        entry = {
            "memory_mb": config.memory_mb,
            "architecture": arch,
            "invocations": int(usage.invocations),
            "errors": int(usage.errors),
            "throttles": int(usage.throttles),
            "total_duration_ms": _ms(usage.duration_ms),
            "avg_duration_ms": _ms(usage.average_duration_ms),
            "total_billed_ms_estimate": _ms(billed),
            "max_memory_used_mb": None if usage.max_memory_used_mb is None else float(usage.max_memory_used_mb),
            "cost_usd": _usd(window_cost.total),
            "cost_per_invocation_usd": _usd(per_invocation),
            "monthly_projection": {
                "invocations": _ms(month.usage.invocations),
                "cost_usd": _usd(month.cost.total),
            },
            "memory_analysis": {"status": memory.status, "basis": memory.basis},
            "recommendations": [_recommendation(config.name, r) for r in recs],
        }
        return entry, recs

    def _rules(
        self, config: FunctionConfig, usage: FunctionUsage, per_invocation: Decimal | None, days: int
    ) -> list[Recommendation]:
        recs = []
        average = usage.average_duration_ms
        if average is not None and average > LONG_RUNNING_MS:
            recs.append(
                Recommendation(
                    "performance",
                    "break the function down or optimise its code",
                    f"average duration {average:.0f} ms is over {LONG_RUNNING_MS} ms",
                    "high",
                    details={"avg_duration_ms": _ms(average)},
                )
            )
        if per_invocation is not None and per_invocation > EXPENSIVE_PER_INVOCATION:
            recs.append(
                Recommendation(
                    "cost",
                    "review memory and duration",
                    f"{per_invocation:.6f} USD per invocation is over {EXPENSIVE_PER_INVOCATION}",
                    "high",
                )
            )
        if config.architecture == "x86_64":
            recs.append(arm64_saving(config, usage, days, self._prices))
        return recs

    def _summary(self, functions: Mapping[str, Any], recommendations: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        invocations = sum(f["invocations"] for f in functions.values())
        cost = sum((Decimal(str(f["cost_usd"])) for f in functions.values()), Decimal(0))
        monthly = sum((Decimal(str(f["monthly_projection"]["cost_usd"])) for f in functions.values()), Decimal(0))
        savings = [r for r in recommendations if r["type"] in ("memory", "architecture")]
        best_by_function: dict[str, Decimal] = {}
        for rec in savings:  # memory and architecture savings overlap: count each function's best one
            value = Decimal(str(rec["monthly_saving_usd"]["max"] or 0))
            best_by_function[rec["function"]] = max(best_by_function.get(rec["function"], Decimal(0)), value)
        highest = max(functions.items(), key=lambda item: item[1]["cost_usd"] or 0)[0] if functions else None
        return {
            "total_invocations": invocations,
            "total_cost_usd": _usd(cost),
            "total_monthly_cost_estimate_usd": _usd(monthly),  # already monthly: never multiplied again
            "highest_cost_function": highest if invocations else None,
            "avg_cost_per_invocation_usd": _usd(cost / invocations) if invocations else None,
            "potential_monthly_savings_usd": _usd(sum(best_by_function.values(), Decimal(0))),
            "recommendation_count": len(recommendations),
        }
