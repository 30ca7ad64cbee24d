"""What the repository contract tests share: the two implementations side by side, the DynamoDB one on
the stage's own tables in moto, and builders for the domain values they store.

The fixtures ``repos`` (run once per implementation) and ``moto_stage`` are in tests/integration/conftest.py,
so that every contract module (test_repository_contracts.py, test_repository_contracts_orders.py) gets them.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.domain.catalog import Product
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.orders import Order, OrderLine, ShippingAddress
from chalicelib.domain.ports import (
    IdempotencyRecord,
    OrderRepository,
    Page,
    ProductRepository,
    UserRepository,
)
from chalicelib.domain.users import UserProfile

REGION = "us-east-1"


@dataclass
class Repositories:
    users: UserRepository
    products: ProductRepository
    orders: OrderRepository


@dataclass
class MotoStage:
    client: Any
    outputs: dict[str, str]


def tables_only(template: dict[str, Any]) -> dict[str, Any]:
    """The stage's DynamoDB tables and the outputs naming them: what the repositories use, as the stage
    declares it (the whole stage, a user pool and 66 alarms included, took about 1.3 s per test)."""
    tables = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::DynamoDB::Table"}
    outputs = {k: o for k, o in template["Outputs"].items() if o["Value"] in ({"Ref": t} for t in tables)}
    return {"Resources": tables, "Outputs": outputs}


MONITORING = frozenset({"AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard"})


def without_monitoring(template: dict[str, Any]) -> dict[str, Any]:
    """The stage without its alarms and dashboard (76 of its 104 resources, a third of the time it takes
    to provision in moto): for tests of the API and the pipeline, which read neither."""
    kept = {k: r for k, r in template["Resources"].items() if r["Type"] not in MONITORING}
    dropped = set(template["Resources"]) - set(kept)
    outputs = {k: o for k, o in template.get("Outputs", {}).items() if not _refers_to(o, dropped)}
    return {**template, "Resources": kept, "Outputs": outputs}


def _refers_to(value: Any, names: set[str]) -> bool:
    if isinstance(value, dict):
        if value.get("Ref") in names or (value.get("Fn::GetAtt") or [None])[0] in names:
            return True
        return any(_refers_to(v, names) for v in value.values())
    if isinstance(value, list):
        return any(_refers_to(v, names) for v in value)
    return False


def a_user(user_id: str = "usr_1", email: str = "ada@example.com") -> UserProfile:
    return UserProfile(
        user_id=user_id,
        email=email,
        name="Ada Lovelace",
        created_at="2024-05-01T10:00:00.000000Z",
        roles=("user",),
        preferences={"notifications": True, "marketing_emails": False, "digest": {"day": 3}},
    )


def a_product(product_id: str, category: str = "mugs", price: str = "19.90", stock: int = 5) -> Product:
    return Product(
        product_id=product_id,
        name=f"Product {product_id}",
        category=category,
        price=Decimal(price),
        stock=stock,
        description="Stoneware, 350 ml",
        created_at="2024-05-01T10:00:00.000000Z",
        updated_at="2024-05-01T10:00:00.000000Z",
    )


def an_order(order_id: str, customer_id: str = "usr_alice", created_at: str = "2024-05-01T10:00:00.000000Z") -> Order:
    return Order(
        order_id=order_id,
        customer_id=customer_id,
        items=(
            OrderLine("prod_mug", "Mug", 2, Decimal("12.50")),
            OrderLine("prod_tea", "Green tea", 1, Decimal("0.10")),
        ),
        shipping_address=ShippingAddress("Ada Lovelace", "1 Analytical Way", "London", "N1 9GU", "GB"),
        payment_token="tok_success",
        total_amount=Decimal("25.10"),
        created_at=created_at,
        updated_at=created_at,
        correlation_id=f"corr-{order_id}",
    )


def a_record(key: str, order_id: str, expires_in: int = 3600) -> IdempotencyRecord:
    return IdempotencyRecord(key, "fingerprint-1", order_id, int(time.time()) + expires_in)


def token_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def walk_products(repo: ProductRepository, category: str | None, limit: int) -> list[Page[Product]]:
    pages = [repo.list(category, limit, None)]
    while pages[-1].next_token is not None:
        assert len(pages) < 100, "pagination does not terminate"
        pages.append(repo.list(category, limit, pages[-1].next_token))
    return pages


def walk_orders(repo: OrderRepository, customer_id: str, limit: int) -> list[Page[Order]]:
    pages = [repo.list_for_customer(customer_id, limit, None)]
    while pages[-1].next_token is not None:
        assert len(pages) < 100, "pagination does not terminate"
        pages.append(repo.list_for_customer(customer_id, limit, pages[-1].next_token))
    return pages


def assert_rejected_token(error: pytest.ExceptionInfo[ValidationError]) -> None:
    assert [detail.field for detail in error.value.details] == ["next_token"]


BAD_TOKENS = [
    pytest.param("not a token!", id="not-base64"),
    pytest.param("x" * 5000, id="too-long"),
    pytest.param("abcde", id="bad-base64-length"),
    pytest.param(base64.urlsafe_b64encode(b"\xff\xfe").decode(), id="not-utf8"),
    pytest.param(token_of("product_id")[:-2] + "__", id="truncated"),
    pytest.param(token_of(["prod_1"]), id="json-list"),
    pytest.param(token_of({}), id="empty-key"),
    pytest.param(token_of({"product_id": 5}), id="number-value"),
    pytest.param(token_of({"product_id": ""}), id="empty-value"),
    pytest.param(token_of({"product_id": {"S": "prod_1"}}), id="raw-dynamodb-value"),
    pytest.param(token_of({"product_id": "prod_1", "extra": "x"}), id="extra-attribute"),
    pytest.param(token_of({"order_id": "ord_1"}), id="other-table-key"),
    pytest.param(base64.urlsafe_b64encode(b"[" * 1500).decode().rstrip("="), id="deeply-nested"),
]
