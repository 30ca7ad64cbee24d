"""The stage's own template provisioned in moto, in process: what the AWS adapter tests run against.

Shared by test_aws_adapters.py (identity, signing keys) and test_aws_adapters_dispatch.py (the order's
hand-offs, events, uploads); each module's ``stage`` fixture opens one per test. ``make_order`` is the
order those and test_deadlines_dynamodb.py store.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from moto import mock_aws

from chalicelib.domain.orders import Order, OrderLine, ShippingAddress
from infra.template import stage_template
from localstage.provision import Provisioner
from tests.integration.repository_support import without_monitoring

REGION = "us-east-1"


@dataclass
class Stage:
    provisioner: Provisioner
    outputs: dict[str, str]

    def client(self, service: str) -> Any:
        return self.provisioner.client(service)


@contextmanager
def provisioned_stage(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stage]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        provisioner = Provisioner(region=REGION)
        provisioner.apply(without_monitoring(stage_template("test")))  # they read no alarm
        yield Stage(provisioner, provisioner.result.outputs)


def make_order(order_id: str = "ord_1") -> Order:
    return Order(
        order_id=order_id,
        customer_id="user-1",
        items=(
            OrderLine("prod-1", "Mug", 2, Decimal("12.50")),
            OrderLine("prod-2", "Pot", 1, Decimal("3.00")),
        ),
        shipping_address=ShippingAddress("Ada", "12 St James's Sq", "London", "SW1Y 4JH", "GB"),
        payment_token="tok_success",
        total_amount=Decimal("28.00"),
        created_at="2024-01-01T00:00:00.000000Z",
        updated_at="2024-01-01T00:00:00.000000Z",
        correlation_id="corr-1",
    )
