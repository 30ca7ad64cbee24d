"""The deadlines of orders in flight on moto, on the Orders table the stage template defines (``DeadlineIndex``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.adapters.deadlines_dynamodb import DEADLINE_INDEX, DynamoOrderDeadlines
from chalicelib.adapters.dynamodb import DynamoOrderRepository
from chalicelib.adapters.pipeline_dynamodb import DynamoOrderProgress
from chalicelib.domain.deadlines import OverdueOrder
from chalicelib.domain.orders import FailureReason, OrderStatus
from infra.template import stage_template
from localstage.provision import Provisioner
from tests.integration.adapter_stage import make_order

pytestmark = pytest.mark.integration

REGION = "us-east-1"
NOW = 1_800_000_000


@dataclass
class Orders:
    client: Any
    table: str
    progress: DynamoOrderProgress
    deadlines: DynamoOrderDeadlines

    def add(self, order_id: str, status: OrderStatus = OrderStatus.PROCESSING) -> str:
        DynamoOrderRepository(self.client, self.table, "unused").add(replace(make_order(order_id), status=status))
        return order_id


@pytest.fixture
def orders(monkeypatch: pytest.MonkeyPatch) -> Iterator[Orders]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        provisioner = Provisioner(region=REGION)
        template = stage_template("test")
        provisioner.apply(template)
        table = template["Resources"]["OrdersTable"]["Properties"]["TableName"]
        client = boto3.client("dynamodb", region_name=REGION)
        yield Orders(client, table, DynamoOrderProgress(client, table), DynamoOrderDeadlines(client, table))


def queried(client: Any) -> list[dict[str, Any]]:
    """Every Query and Scan request the client makes from now on."""
    calls: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.dynamodb.*", lambda params, model, **_: calls.append({"operation": model.name, **params})
    )
    return calls


def test_given_orders_in_flight_and_finished_when_queried_then_only_the_late_ones_by_the_index(orders: Orders) -> None:
    # GIVEN one order past its deadline, one before it, one without, and one the workflow completed
    late = orders.add("ord_late")
    early = orders.add("ord_early")
    orders.add("ord_nodeadline")
    done = orders.add("ord_done")
    assert orders.deadlines.extend(late, NOW - 1)
    assert orders.deadlines.extend(early, NOW + 1)
    assert orders.deadlines.extend(done, NOW - 5)
    orders.progress.advance(done, OrderStatus.COMPLETED)
    calls = queried(orders.client)
    # WHEN the watchdog asks for overdue orders
    found = orders.deadlines.overdue(NOW, 10)
    # THEN only the late one, found with index queries, never a scan
    assert found == [OverdueOrder(late, "PROCESSING", NOW - 1)]
    assert {c["operation"] for c in calls} == {"Query"}
    assert {c["IndexName"] for c in calls} == {DEADLINE_INDEX}
    # ... and the completed order left the index: its deadline was removed with the terminal move
    item = orders.client.get_item(TableName=orders.table, Key={"order_id": {"S": done}})["Item"]
    assert "deadline_at" not in item


def test_given_a_deadline_when_extended_earlier_or_on_a_finished_order_then_unchanged(orders: Orders) -> None:
    order = orders.add("ord_1")
    assert orders.deadlines.extend(order, NOW + 100) is True
    # WHEN a late or duplicated delivery asks for an earlier deadline
    assert orders.deadlines.extend(order, NOW + 10) is False
    # THEN the later one stands; an order not PROCESSING gets none
    assert orders.deadlines.overdue(NOW + 99, 10) == []
    assert orders.deadlines.overdue(NOW + 100, 10) == [OverdueOrder(order, "PROCESSING", NOW + 100)]
    pending = orders.add("ord_pending", OrderStatus.PENDING)
    assert orders.deadlines.extend(pending, NOW) is False


def test_given_a_late_order_when_claimed_then_failed_once_and_owed_until_settled(orders: Orders) -> None:
    order = orders.add("ord_1")
    orders.deadlines.extend(order, NOW)
    # WHEN claimed before its deadline, then after it, twice
    assert orders.deadlines.claim(order, NOW - 1) is False
    assert orders.deadlines.claim(order, NOW) is True
    assert orders.deadlines.claim(order, NOW) is False
    # THEN it is FAILED/WORKFLOW_FAILED, still listed (compensation owed) until settled
    found = orders.progress.get(order)
    assert found is not None and (found.status, found.failure_reason) == (
        OrderStatus.FAILED,
        FailureReason.WORKFLOW_FAILED,
    )
    assert orders.deadlines.overdue(0, 10) == [OverdueOrder(order, "FAILED", NOW)]
    orders.deadlines.settle(order)
    assert orders.deadlines.overdue(NOW + 10**6, 10) == []


def test_given_an_order_completed_meanwhile_when_claimed_then_refused(orders: Orders) -> None:
    order = orders.add("ord_1")
    orders.deadlines.extend(order, NOW)
    orders.progress.advance(order, OrderStatus.COMPLETED)  # the slow execution won the race
    assert orders.deadlines.claim(order, NOW + 1) is False
    found = orders.progress.get(order)
    assert found is not None and found.status == OrderStatus.COMPLETED
