"""The product catalog: anyone browses, admins change it."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.catalog import Product, new_product, parse_new_product, parse_product_changes
from chalicelib.domain.errors import ForbiddenError, NotFoundError
from chalicelib.domain.ids import Clock, IdFactory, iso, new_id, utc_now
from chalicelib.domain.ports import Page, ProductRepository
from chalicelib.domain.users import Principal


def require_admin(caller: Principal) -> None:
    if not caller.is_admin:
        raise ForbiddenError("This action needs the admin role")


class CatalogService:
    def __init__(self, products: ProductRepository, clock: Clock = utc_now, ids: IdFactory = new_id) -> None:
        self._products = products
        self._clock = clock
        self._ids = ids

    def list(self, category: str | None, limit: int, next_token: str | None) -> Page[Product]:
        """One page of products, of one category (by index) or of all."""
        return self._products.list(category, limit, next_token)

    def get(self, product_id: str) -> Product:
        product = self._products.get(product_id)
        if product is None:
            raise NotFoundError(f"Product {product_id} not found")
        return product

    def create(self, caller: Principal, data: Any) -> Product:
        """Admins only; the role is checked before the body, so others learn nothing from a 400."""
        require_admin(caller)
        spec = parse_new_product(data)
        product = new_product(self._ids("prod"), spec, iso(self._clock()))
        self._products.add(product)
        return product

    def update(self, caller: Principal, product_id: str, data: Any) -> Product:
        require_admin(caller)
        return self._products.update(product_id, parse_product_changes(data), iso(self._clock()))
