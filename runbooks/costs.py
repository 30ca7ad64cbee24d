"""Cost analysis over ``chalicelib.cost`` and the scheduled optimizer's own service, so the figures agree.

The per-function figures are the optimizer's (``CostOptimizer.report`` run as a dry run, with the
same adapters the deployed function uses); this module splits them into requests and GB-seconds,
checks that the split adds up to the optimizer's cost, and adds what the optimizer does not do:
cost per order across services and a monthly projection at a chosen order volume.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from chalicelib.adapters.cloudwatch_usage import CloudWatchUsage
from chalicelib.adapters.cost_reports import S3ReportStore
from chalicelib.adapters.lambda_functions import LambdaFunctionCatalog
from chalicelib.cost import Architecture, Service, ServiceCalls, cost_of_calls, lambda_cost
from chalicelib.cost.workflow import (
    ASSUMED_EXPRESS_DURATION_MS,
    EXPRESS,
    STANDARD,
    WorkflowUsage,
    edge_calls,
    traced_share,
)
from chalicelib.services.cost_optimizer import CostOptimizer, CostRun
from infra.pipeline import WORKFLOW_TYPE

PROJECT_DIR = Path(__file__).resolve().parents[1]
REPORT_PREFIX = "cost-optimization-report-"
AGREEMENT_USD = Decimal("1e-9")  # the report rounds money to 1e-10


def stage_optimizer(lambda_client: Any, cloudwatch: Any, s3: Any, reports_bucket: str, prefix: str) -> CostOptimizer:
    """The optimizer wired as ``chalicelib.bootstrap`` wires it, on the caller's clients."""
    return CostOptimizer(
        LambdaFunctionCatalog(lambda_client),
        CloudWatchUsage(cloudwatch),
        S3ReportStore(s3, reports_bucket),
        stage_function_prefix=prefix,
    )


def optimizer_report(
    optimizer: CostOptimizer, at: datetime, days: int, functions: Sequence[str] = ()
) -> dict[str, Any]:
    """The optimizer's report for the window ending at ``at``, not written anywhere."""
    return optimizer.report(CostRun(at=at, days=days, function_names=tuple(functions), dry_run=True))


def function_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per function: the optimizer's figures, split into requests and GB-seconds by ``lambda_cost``.

    ``agrees`` says whether the split adds up to the optimizer's ``cost_usd``.
    """
    rows = []
    for name, entry in sorted(report.get("functions", {}).items()):
        cost = lambda_cost(
            int(entry["invocations"]),
            total_billed_ms=Decimal(str(entry["total_billed_ms_estimate"] or 0)),
            memory_mb=int(entry["memory_mb"]),
            architecture=Architecture(entry["architecture"]),
        )
        reported = Decimal(str(entry["cost_usd"] or 0))
        rows.append(
            {
                "function": name,
                "architecture": entry["architecture"],
                "memory_mb": entry["memory_mb"],
                "invocations": entry["invocations"],
                "errors": entry["errors"],
                "avg_duration_ms": entry["avg_duration_ms"],
                "billed_ms": entry["total_billed_ms_estimate"],
                "gb_seconds": cost.gb_seconds,
                "request_cost_usd": cost.requests,
                "duration_cost_usd": cost.duration + cost.ephemeral,
                "cost_usd": reported,
                "monthly_cost_usd": entry["monthly_projection"]["cost_usd"],
                "agrees": abs(cost.total - reported) <= AGREEMENT_USD,
            }
        )
    return rows


def by_architecture(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    totals: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = totals.setdefault(
            row["architecture"],
            {"architecture": row["architecture"], "functions": 0, "invocations": 0, "gb_seconds": Decimal(0)},
        )
        entry["functions"] += 1
        entry["invocations"] += row["invocations"]
        entry["gb_seconds"] += row["gb_seconds"]
        for key in ("request_cost_usd", "duration_cost_usd", "cost_usd"):
            entry[key] = entry.get(key, Decimal(0)) + row[key]
    return list(totals.values())


def top_savings(report: Mapping[str, Any], limit: int = 10) -> list[dict[str, Any]]:
    """Memory, architecture and unused-function advice, largest possible monthly saving first."""
    kinds = ("memory", "architecture", "unused")
    recs = [r for r in report.get("optimization_recommendations", []) if r["type"] in kinds]
    return sorted(recs, key=lambda r: -(r["monthly_saving_usd"]["max"] or 0))[:limit]


@dataclass(frozen=True)
class OrderCost:
    """Cost per order across services, and its parts (USD per order)."""

    orders: int
    lambda_per_order: Decimal
    step_functions_per_order: Decimal
    request_path_per_order: Decimal  # DynamoDB, SQS, SNS, EventBridge calls of POST /orders, its REST request and trace
    transitions_per_order: Decimal
    workflow_type: str = WORKFLOW_TYPE

    @property
    def total(self) -> Decimal:
        return self.lambda_per_order + self.step_functions_per_order + self.request_path_per_order


def workflow_usage(transitions_per_order: Decimal, workflow_type: str = WORKFLOW_TYPE) -> WorkflowUsage:
    """The workflow one order pays for, in ``chalicelib.cost.workflow``'s model (as ``make bench`` prices it).

    ``transitions_per_order`` counts the states the order's executions entered (and their retries). As
    Standard they are the bill; as Express the bill is one request and the duration, and the states
    give the execution log's lines (entered and exited, about two task events each).
    """
    lines = 4 * transitions_per_order + 2
    if workflow_type == EXPRESS:
        return WorkflowUsage(EXPRESS, duration_ms=Decimal(ASSUMED_EXPRESS_DURATION_MS), log_lines=lines)
    return WorkflowUsage(STANDARD, transitions=transitions_per_order, log_lines=lines)


def cost_per_order(
    rows: Sequence[Mapping[str, Any]],
    orders: int,
    transitions_per_order: Decimal,
    request_path: ServiceCalls,
    workflow_type: str = WORKFLOW_TYPE,
) -> OrderCost | None:
    """Every function's cost in the window spread over the orders of the window (None without orders)."""
    if orders <= 0:
        return None
    lambda_total = sum((Decimal(str(r["cost_usd"])) for r in rows), Decimal(0))
    workflow = workflow_usage(transitions_per_order, workflow_type).calls()
    non_lambda = ServiceCalls.of({k: n for k, n in request_path.counts.items() if k.service is not Service.LAMBDA})
    return OrderCost(
        orders=orders,
        lambda_per_order=lambda_total / orders,
        step_functions_per_order=cost_of_calls(workflow).total,
        request_path_per_order=cost_of_calls(non_lambda + edge_calls(traced_share(1))).total,
        transitions_per_order=transitions_per_order,
        workflow_type=workflow_type,
    )


def monthly_at_volume(
    rows: Sequence[Mapping[str, Any]],
    orders_in_window: int,
    monthly_orders: int,
    order_cost: OrderCost,
    request_path: ServiceCalls,
    *,
    free_tier: bool = False,
) -> dict[str, Any]:
    """Each function's invocations per order scaled to ``monthly_orders``, priced as one month (tiers apply)."""
    factor = Decimal(monthly_orders) / Decimal(orders_in_window)
    lines = []
    for row in rows:
        invocations = Decimal(row["invocations"]) * factor
        if not invocations:
            continue
        cost = lambda_cost(
            invocations,
            total_billed_ms=Decimal(str(row["billed_ms"] or 0)) * factor,
            memory_mb=int(row["memory_mb"]),
            architecture=Architecture(row["architecture"]),
            free_tier=free_tier,
        )
        lines.append({"function": row["function"], "invocations": invocations, "cost_usd": cost.total})
    workflow = workflow_usage(order_cost.transitions_per_order, order_cost.workflow_type)
    calls = workflow.calls().scaled(monthly_orders) + edge_calls(traced_share(monthly_orders)).scaled(monthly_orders)
    calls += ServiceCalls.of(
        {k: n for k, n in request_path.scaled(monthly_orders).counts.items() if k.service is not Service.LAMBDA}
    )
    services = cost_of_calls(calls, free_tier=free_tier).by_service()
    lambda_total = sum((line["cost_usd"] for line in lines), Decimal(0))
    return {
        "monthly_orders": monthly_orders,
        "free_tier": free_tier,
        "lambda_usd": lambda_total,
        "by_service_usd": {service.value: cost for service, cost in services.items()},
        "total_usd": lambda_total + sum(services.values(), Decimal(0)),
        "functions": lines,
    }


def latest_optimizer_report(s3: Any, bucket: str) -> tuple[str, dict[str, Any]] | None:
    """The newest ``cost-optimization-report-*.json`` (keys sort by their timestamp), or None."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=REPORT_PREFIX):
        keys.extend(str(entry["Key"]) for entry in page.get("Contents", []))
    if not keys:
        return None
    key = max(keys)
    return key, json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
