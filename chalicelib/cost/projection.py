"""Project usage observed over a window to an average month, once, and price the monthly total.

>>> observed = ObservedLambdaUsage.from_sums(invocation_sums=[4_000, 3_000], billed_ms_sums=[400_000, 300_000])
>>> monthly_projection(observed, window_days=7, memory_mb=512).usage.invocations
Decimal('30437.5000')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from chalicelib.cost.billing import CostModelError, Number, non_negative
from chalicelib.cost.model import LambdaCost, price_lambda_usage
from chalicelib.cost.prices import US_EAST_1, Architecture, LambdaPrices

DAYS_PER_MONTH = Decimal("30.4375")  # 365.25 / 12: the average calendar month


def _sum(values: Iterable[Number], name: str) -> Decimal:
    return sum((non_negative(value, name) for value in values), Decimal(0))


@dataclass(frozen=True)
class ObservedLambdaUsage:
    """One function's usage over an observation window, as totals.

    ``invocations`` is the Sum of the ``Invocations`` metric (never the number of datapoints);
    ``billed_ms`` the sum of billed duration, e.g. Logs Insights ``sum(@billedDuration)``, which
    rounds each invocation up and, since 1 Aug 2025, includes INIT. The ``Duration`` metric's Sum is
    raw time: it understates billed time by up to 1 ms per invocation.
    """

    invocations: Decimal
    billed_ms: Decimal
    cold_starts: Decimal = Decimal(0)
    init_billed_ms: Decimal = Decimal(0)  # only when ``billed_ms`` excludes INIT

    @classmethod
    def from_sums(
        cls,
        invocation_sums: Iterable[Number],
        billed_ms_sums: Iterable[Number],
        cold_start_sums: Iterable[Number] = (),
        init_billed_ms_sums: Iterable[Number] = (),
    ) -> ObservedLambdaUsage:
        """Totals from per-period ``Sum`` datapoints: periods without traffic have no datapoint,
        so only the sums carry information, not how many datapoints there are."""
        return cls(
            invocations=_sum(invocation_sums, "invocations"),
            billed_ms=_sum(billed_ms_sums, "billed ms"),
            cold_starts=_sum(cold_start_sums, "cold starts"),
            init_billed_ms=_sum(init_billed_ms_sums, "init billed ms"),
        )


def to_month(value: Number, window_days: Number) -> Decimal:
    """``value`` seen over ``window_days`` scaled to an average month: ``value * 30.4375 / window_days``.

    Multiplying before dividing keeps every exact case exact (7,000 over 7 days -> 30,437.5).
    """
    days = non_negative(window_days, "window days")
    if days == 0:
        raise CostModelError("the observation window must be longer than zero days")
    return non_negative(value, "value") * DAYS_PER_MONTH / days


@dataclass(frozen=True)
class MonthlyProjection:
    window_days: Decimal
    usage: ObservedLambdaUsage  # per month
    cost: LambdaCost  # of that month, tiers and (optionally) free tier applied to the monthly total


def monthly_projection(
    observed: ObservedLambdaUsage,
    window_days: Number,
    *,
    memory_mb: int,
    architecture: Architecture = Architecture.X86_64,
    ephemeral_mb: int = 512,
    free_tier: bool = False,
    monthly_gb_seconds_before: Number = 0,
    prices: LambdaPrices = US_EAST_1.lambda_,
) -> MonthlyProjection:
    """Scale the window's totals to one month ONCE, then price the month (tiers apply to the total).

    Never multiply the result by 30 again: it already is a monthly figure.
    """
    days = non_negative(window_days, "window days")
    monthly = ObservedLambdaUsage(
        invocations=to_month(observed.invocations, days),
        billed_ms=to_month(observed.billed_ms, days),
        cold_starts=to_month(observed.cold_starts, days),
        init_billed_ms=to_month(observed.init_billed_ms, days),
    )
    cost = price_lambda_usage(
        monthly.invocations,
        monthly.billed_ms,
        monthly.init_billed_ms,
        memory_mb=memory_mb,
        architecture=architecture,
        ephemeral_mb=ephemeral_mb,
        free_tier=free_tier,
        monthly_gb_seconds_before=monthly_gb_seconds_before,
        prices=prices,
    )
    return MonthlyProjection(window_days=days, usage=monthly, cost=cost)
