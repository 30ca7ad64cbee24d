"""The product catalog: the only source of prices."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from chalicelib.domain.money import to_json_number
from chalicelib.domain.validation import Fields

MAX_STOCK = 1_000_000
_CATEGORY = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")
PRODUCT_FIELDS = {"name", "category", "price", "stock", "description"}


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    category: str
    price: Decimal
    stock: int
    description: str = ""
    created_at: str = ""
    updated_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "name": self.name,
            "category": self.category,
            "price": to_json_number(self.price),
            "stock": self.stock,
            "description": self.description,
        }


@dataclass(frozen=True)
class ProductChanges:
    """A validated partial update; ``None`` means "leave as it is"."""

    name: str | None = None
    category: str | None = None
    price: Decimal | None = None
    stock: int | None = None
    description: str | None = None

    def apply(self, product: Product, now: str) -> Product:
        changes = {k: v for k, v in self.__dict__.items() if v is not None}
        return replace(product, **changes, updated_at=now)


def _category(f: Fields, required: bool) -> str | None:
    category = f.text("category", required=required, max_len=50)
    if category is not None:
        category = category.lower()
        if not _CATEGORY.match(category):
            f.fail("category", "must be lowercase letters, digits and dashes")
            return None
    return category


def parse_new_product(data: Any) -> ProductChanges:
    f = Fields(data)
    f.reject_unknown(PRODUCT_FIELDS)
    changes = ProductChanges(
        name=f.text("name", max_len=200),
        category=_category(f, required=True),
        price=f.money("price"),
        stock=f.integer("stock", minimum=0, maximum=MAX_STOCK),
        description=f.text("description", required=False, min_len=0, max_len=2000),
    )
    f.raise_if_any("The product is invalid")
    return changes


def parse_product_changes(data: Any) -> ProductChanges:
    f = Fields(data)
    f.reject_unknown(PRODUCT_FIELDS)
    changes = ProductChanges(
        name=f.text("name", required=False, max_len=200),
        category=_category(f, required=False),
        price=f.money("price", required=False),
        stock=f.integer("stock", required=False, minimum=0, maximum=MAX_STOCK),
        description=f.text("description", required=False, min_len=0, max_len=2000),
    )
    if not f.errors and all(v is None for v in changes.__dict__.values()):
        f.fail("body", "must change at least one of " + ", ".join(sorted(PRODUCT_FIELDS)))
    f.raise_if_any("The product change is invalid")
    return changes


def new_product(product_id: str, spec: ProductChanges, now: str) -> Product:
    assert spec.name is not None and spec.category is not None
    assert spec.price is not None and spec.stock is not None
    return Product(
        product_id=product_id,
        name=spec.name,
        category=spec.category,
        price=spec.price,
        stock=spec.stock,
        description=spec.description or "",
        created_at=now,
        updated_at=now,
    )
