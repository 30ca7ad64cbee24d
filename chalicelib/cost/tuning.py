"""Memory/cost curve for Lambda: what one invocation costs at each measured memory size.

AWS Lambda Power Tuning leaves the request charge out of its cost figures; at short durations the
request is a large share of the cost, so it is included here.

>>> [p.cost_per_invocation for p in memory_cost_curve({1024: 10})]
[Decimal('3.66667E-7')]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from chalicelib.cost.billing import Number, non_negative
from chalicelib.cost.model import price_lambda_usage
from chalicelib.cost.prices import US_EAST_1, Architecture, LambdaPrices


@dataclass(frozen=True)
class MemoryPoint:
    memory_mb: int
    billed_ms: Decimal  # measured billed duration per invocation at this memory size
    request: Decimal
    duration: Decimal
    ephemeral: Decimal

    @property
    def cost_per_invocation(self) -> Decimal:
        return self.request + self.duration + self.ephemeral


def memory_cost_curve(
    measurements: Mapping[int, Number],
    *,
    architecture: Architecture = Architecture.X86_64,
    ephemeral_mb: int = 512,
    prices: LambdaPrices = US_EAST_1.lambda_,
) -> tuple[MemoryPoint, ...]:
    """Cost of one invocation at each measured memory size, request charge INCLUDED, by memory ascending.

    Durations must be measured at each size: duration changes with memory (CPU scales with it).
    Priced at the first tier, without free tier: the marginal cost of one more invocation.

    >>> [(p.memory_mb, p.cost_per_invocation) for p in memory_cost_curve({256: 40, 128: 100})]
    [(128, Decimal('4.0833375E-7')), (256, Decimal('3.66667E-7'))]
    """
    points = []
    for memory_mb in sorted(measurements):
        ms = non_negative(measurements[memory_mb], "measured duration")
        one = price_lambda_usage(
            Decimal(1),
            ms,
            Decimal(0),
            memory_mb=memory_mb,
            architecture=architecture,
            ephemeral_mb=ephemeral_mb,
            free_tier=False,
            prices=prices,
        )
        points.append(MemoryPoint(memory_mb, ms, one.requests, one.duration, one.ephemeral))
    return tuple(points)
