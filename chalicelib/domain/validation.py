"""A small collector of field errors, so one response can list every problem.

Written by hand rather than with pydantic or jsonschema: those add megabytes
and tens of milliseconds of import time to every cold start, and the rules here
are few (see docs/architecture.md, "Validation").
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

from chalicelib.domain.errors import FieldError, ValidationError


class Fields:
    """Reads typed values out of a JSON object, recording an error per bad field.

    >>> f = Fields({"name": " Mug ", "stock": -1}, prefix="")
    >>> f.text("name", max_len=10), f.integer("stock", minimum=0)
    ('Mug', None)
    >>> [e.field for e in f.errors]
    ['stock']
    """

    def __init__(
        self,
        data: Any,
        prefix: str = "",
        errors: list[FieldError] | None = None,
    ) -> None:
        self.errors: list[FieldError] = errors if errors is not None else []
        self.prefix = prefix
        if isinstance(data, Mapping):
            self.data: Mapping[str, Any] = data
        else:
            self.data = {}
            self.errors.append(FieldError(prefix.rstrip(".") or "body", "must be a JSON object"))

    def name(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def fail(self, key: str, message: str) -> None:
        self.errors.append(FieldError(self.name(key), message))

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def _get(self, key: str, required: bool) -> Any:
        if not self.has(key):
            if required:
                self.fail(key, "is required")
            return None
        return self.data[key]

    def text(self, key: str, *, required: bool = True, min_len: int = 1, max_len: int = 200) -> str | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(key, "must be a string")
            return None
        value = value.strip()
        if len(value) < min_len:
            self.fail(key, "must not be empty" if min_len == 1 else f"must have at least {min_len} characters")
            return None
        if len(value) > max_len:
            self.fail(key, f"must have at most {max_len} characters")
            return None
        return value

    def integer(
        self, key: str, *, required: bool = True, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        value = self._get(key, required)
        if value is None:
            return None
        # JSON numbers arrive as int or Decimal (we parse floats as Decimal); bool is an int in Python.
        if isinstance(value, Decimal) and value == value.to_integral_value():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, "must be an integer")
            return None
        if minimum is not None and value < minimum:
            self.fail(key, f"must be at least {minimum}")
            return None
        if maximum is not None and value > maximum:
            self.fail(key, f"must be at most {maximum}")
            return None
        return value

    def money(self, key: str, *, required: bool = True, maximum: Decimal = Decimal("1000000")) -> Decimal | None:
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            self.fail(key, "must be a number")
            return None
        try:
            amount = Decimal(value)
        except InvalidOperation:  # pragma: no cover - int and Decimal always convert
            self.fail(key, "must be a number")
            return None
        if not amount.is_finite() or amount <= 0:
            self.fail(key, "must be greater than 0")
            return None
        if amount > maximum:
            self.fail(key, f"must be at most {maximum}")
            return None
        exponent = amount.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -2 and amount != amount.quantize(Decimal("0.01")):
            self.fail(key, "must have at most two decimals")
            return None
        return amount.quantize(Decimal("0.01"))

    def boolean(self, key: str, *, default: bool) -> bool:
        value = self._get(key, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(key, "must be true or false")
            return default
        return value

    def obj(self, key: str) -> Fields | None:
        value = self._get(key, True)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.fail(key, "must be a JSON object")
            return None
        return Fields(value, prefix=f"{self.name(key)}.", errors=self.errors)

    def array(self, key: str, *, min_items: int = 1, max_items: int = 100) -> list[Any] | None:
        value = self._get(key, True)
        if value is None:
            return None
        if not isinstance(value, list):
            self.fail(key, "must be an array")
            return None
        if len(value) < min_items:
            self.fail(key, f"must have at least {min_items} item{'s' if min_items > 1 else ''}")
            return None
        if len(value) > max_items:
            self.fail(key, f"must have at most {max_items} items")
            return None
        return value

    def reject_unknown(self, allowed: set[str]) -> None:
        for key in self.data:
            if key not in allowed:
                self.fail(key, "is not a recognised field")

    def raise_if_any(self, message: str = "The request is invalid") -> None:
        if self.errors:
            raise ValidationError(message, self.errors)
