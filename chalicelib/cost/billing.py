"""Billing primitives shared by every service: exact numbers, rounding up, chunks, tiers, free allowances.

>>> billed_ms("27.55")
28
>>> chunks(65_537, 64 * 1024)
2
>>> tiered_cost(flat(Decimal("2")), start=0, amount=5, free=3)
Decimal('4')
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from chalicelib.cost.prices import Tiers, flat

__all__ = [
    "CostModelError",
    "Number",
    "billed_ms",
    "chunks",
    "flat",
    "non_negative",
    "round_up_to",
    "tiered_cost",
    "to_decimal",
]

Number = Decimal | int | str


class CostModelError(ValueError):
    """An input the cost model cannot price (a float, a negative count, an unknown operation)."""


def to_decimal(value: Number) -> Decimal:
    """Exact ``Decimal`` from ``Decimal``, ``int`` or a numeric string; floats are refused (they drift)."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise CostModelError(f"expected Decimal, int or str, got {type(value).__name__}: {value!r}")
    number = Decimal(value)
    if not number.is_finite():
        raise CostModelError(f"not a finite number: {value!r}")
    return number


def non_negative(value: Number, name: str) -> Decimal:
    number = to_decimal(value)
    if number < 0:
        raise CostModelError(f"{name} must not be negative, got {value!r}")
    return number


def billed_ms(raw_ms: Number, increment_ms: int = 1) -> int:
    """One invocation's raw duration rounded UP to the billing increment (1 ms for Lambda, 100 ms for Express).

    >>> billed_ms("1.2"), billed_ms(3), billed_ms("101", 100)
    (2, 3, 200)
    """
    raw = non_negative(raw_ms, "duration")
    steps = (raw / increment_ms).to_integral_value(rounding=ROUND_CEILING)
    return int(steps) * increment_ms


def round_up_to(value: int, increment: int) -> int:
    """``value`` rounded up to a multiple of ``increment`` (64 MB memory chunks, 5-minute periods)."""
    return -(-value // increment) * increment


def chunks(size_bytes: int, chunk_bytes: int) -> int:
    """Billable requests for one payload: each started chunk counts, and an empty payload is still one request."""
    if size_bytes < 0:
        raise CostModelError(f"size must not be negative, got {size_bytes}")
    return max(1, -(-size_bytes // chunk_bytes))


def tiered_cost(tiers: Tiers, start: Number, amount: Number, free: Number = 0) -> Decimal:
    """Cost of ``amount`` units used after ``start`` units already used this month.

    Tiers are cumulative: the usage occupies the interval ``[start, start + amount)`` of the month's
    total, each part priced by the tier it falls in. A free allowance covers ``[0, free)``.
    """
    begin = max(non_negative(start, "start"), non_negative(free, "free allowance"))
    end = non_negative(start, "start") + non_negative(amount, "amount")
    total = Decimal(0)
    lower = Decimal(0)
    for tier in tiers:
        upper = end if tier.up_to is None else min(tier.up_to, end)
        lo = max(lower, begin)
        if upper > lo:
            total += (upper - lo) * tier.unit_price
        if tier.up_to is None or tier.up_to >= end:
            break
        lower = tier.up_to
    return total
