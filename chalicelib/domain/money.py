"""Exact money. Amounts are ``Decimal`` inside and JSON numbers with two decimals outside."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

CURRENCY = "USD"
CENT = Decimal("0.01")


def to_cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


def to_json_number(amount: Decimal) -> int | float:
    """``Decimal('12.50')`` -> ``12.5``: a JSON number with at most two decimals.

    A float prints its shortest round-tripping form, so a value already rounded
    to cents never grows extra digits in JSON.
    """
    cents = to_cents(amount)
    if cents == cents.to_integral_value():
        return int(cents)
    return float(cents)
