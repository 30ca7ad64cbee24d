"""The exact cost model: price data, per-service billable units, Lambda costs, projections, memory curves.

Pure Python and ``Decimal`` throughout; no boto3, no pandas, so it is packaged with the functions.
"""

from chalicelib.cost.billing import CostModelError, billed_ms, chunks, tiered_cost
from chalicelib.cost.calls import CallKey, CostBreakdown, LineItem, Op, Service, ServiceCalls
from chalicelib.cost.model import (
    LambdaCost,
    ProvisionedConcurrencyCost,
    gb_seconds,
    lambda_cost,
    lambda_cost_of_durations,
    provisioned_concurrency_cost,
)
from chalicelib.cost.prices import US_EAST_1, Architecture, PriceBook, Tier
from chalicelib.cost.pricing import cost_of_calls, cost_per_million_orders, cost_per_order
from chalicelib.cost.projection import (
    DAYS_PER_MONTH,
    MonthlyProjection,
    ObservedLambdaUsage,
    monthly_projection,
    to_month,
)
from chalicelib.cost.tuning import MemoryPoint, memory_cost_curve

__all__ = [
    "DAYS_PER_MONTH",
    "US_EAST_1",
    "Architecture",
    "CallKey",
    "CostBreakdown",
    "CostModelError",
    "LambdaCost",
    "LineItem",
    "MemoryPoint",
    "MonthlyProjection",
    "ObservedLambdaUsage",
    "Op",
    "PriceBook",
    "ProvisionedConcurrencyCost",
    "Service",
    "ServiceCalls",
    "Tier",
    "billed_ms",
    "chunks",
    "cost_of_calls",
    "cost_per_million_orders",
    "cost_per_order",
    "gb_seconds",
    "lambda_cost",
    "lambda_cost_of_durations",
    "memory_cost_curve",
    "monthly_projection",
    "provisioned_concurrency_cost",
    "tiered_cost",
    "to_month",
]
