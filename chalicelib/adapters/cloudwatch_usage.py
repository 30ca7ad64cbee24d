"""Function usage from CloudWatch with GetMetricData: up to 500 metric queries per call.

The seed called GetMetricStatistics once per metric per function (and counted datapoints as
invocations). Here each function needs five queries, so one call covers 100 functions; every
answer is a series of daily ``Sum`` (or ``Maximum``) datapoints, added up, never counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from chalicelib.domain.usage import FunctionUsage
from chalicelib.observability.metrics import NAMESPACE

MAX_QUERIES_PER_CALL = 500  # GetMetricData's limit
PERIOD_SECONDS = 86_400  # a multiple of 300 and 3600, as CloudWatch requires for windows past 15 and 63 days

# Query key -> (namespace, metric, statistic). MaxMemoryUsed is written by the invocation middleware (EMF).
QUERIES: dict[str, tuple[str, str, str]] = {
    "inv": ("AWS/Lambda", "Invocations", "Sum"),
    "dur": ("AWS/Lambda", "Duration", "Sum"),
    "err": ("AWS/Lambda", "Errors", "Sum"),
    "thr": ("AWS/Lambda", "Throttles", "Sum"),
    "mem": (NAMESPACE, "MaxMemoryUsed", "Maximum"),
}


def _queries(function_names: Sequence[str]) -> list[dict[str, Any]]:
    queries = []
    for index, name in enumerate(function_names):
        for key, (namespace, metric, stat) in QUERIES.items():
            queries.append(
                {
                    "Id": f"{key}{index}",  # ids must match ^[a-z][a-zA-Z0-9_]*$
                    "MetricStat": {
                        "Metric": {
                            "Namespace": namespace,
                            "MetricName": metric,
                            "Dimensions": [{"Name": "FunctionName", "Value": name}],
                        },
                        "Period": PERIOD_SECONDS,
                        "Stat": stat,
                    },
                    "ReturnData": True,
                }
            )
    return queries


class CloudWatchUsage:
    """``UsageMetrics`` on GetMetricData; ``calls`` counts the API calls made (the report shows it)."""

    def __init__(self, client: Any) -> None:
        self._cloudwatch = client
        self.calls = 0

    def usage(self, function_names: Sequence[str], start: datetime, end: datetime) -> dict[str, FunctionUsage]:
        values: dict[str, list[float]] = {}
        queries = _queries(function_names)
        for first in range(0, len(queries), MAX_QUERIES_PER_CALL):
            chunk = queries[first : first + MAX_QUERIES_PER_CALL]
            token: str | None = None
            while True:
                args: dict[str, Any] = {"MetricDataQueries": chunk, "StartTime": start, "EndTime": end}
                if token:
                    args["NextToken"] = token
                answer = self._cloudwatch.get_metric_data(**args)
                self.calls += 1
                for result in answer.get("MetricDataResults", []):
                    values.setdefault(result["Id"], []).extend(result.get("Values", []))
                token = answer.get("NextToken")
                if not token:
                    break
        return {name: _usage(values, index) for index, name in enumerate(function_names)}


def _total(values: list[float]) -> Decimal:
    # Decimal(str(x)): CloudWatch answers floats; the cost model refuses them, and str keeps what was sent.
    return sum((Decimal(str(v)) for v in values), Decimal(0))


def _usage(values: dict[str, list[float]], index: int) -> FunctionUsage:
    memory = values.get(f"mem{index}") or []
    return FunctionUsage(
        invocations=_total(values.get(f"inv{index}", [])),
        duration_ms=_total(values.get(f"dur{index}", [])),
        errors=_total(values.get(f"err{index}", [])),
        throttles=_total(values.get(f"thr{index}", [])),
        max_memory_used_mb=max(Decimal(str(v)) for v in memory) if memory else None,
    )
