"""The Express workflow's watchdog on a running local stage: an execution that dies leaves no order behind.

A stage of its own, with the fault switch (localstage/faults.py) failing every invocation of
``schedule_shipping`` and of ``compensate_order``: each order's execution holds the stock, charges the
card, then fails at ScheduleShipping, and its catch (CompensateOrder) fails too, so the execution ends
FAILED with the order PROCESSING, charged and its stock committed, which is what an execution that
hits its timeout leaves. Express sends no status-change event; only the watchdog can end the order.

The stage sweeps every minute (``WATCHDOG_INTERVAL_MINUTES=1``). Rather than wait out the workflow's
five-minute timeout, the test moves the recorded deadline into the past (time passing); the sweep is
the stage's own schedule firing, not a direct invoke.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from tests.e2e.conftest import RunningStage
from tests.e2e.stage_process import separate_stage
from tests.e2e.test_stage_pipeline import Shop

pytestmark = pytest.mark.e2e

REGION, ACCOUNT = "us-east-1", "123456789012"
PREFIX = "ecommerce-backend-local"
ORDERS = "ecommerce-backend-orders-local"
PAYMENTS = "ecommerce-backend-payments-local"
SWEEP_WAIT_S = 150  # two sweeps at one a minute, and the stage's own pace on a loaded machine


@pytest.fixture(scope="module")
def dying_stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStage]:
    switch = {
        "LOCAL_FAULT_RATE": "1",
        "LOCAL_FAULT_MODE": "error",
        "LOCAL_FAULT_FUNCTIONS": "schedule_shipping,compensate_order",
        "WATCHDOG_INTERVAL_MINUTES": "1",
        "LOCAL_LAMBDA_MEASURE_MEMORY": "0",
    }
    with separate_stage(tmp_path_factory.mktemp("watchdog"), switch) as stage:
        yield stage


def _aws(stage: RunningStage, service: str) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=stage.aws_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout} s")


def sweep_a_stalled_order(aws: Callable[[str], Any], order_id: str) -> None:
    """The sweep, invoked, over an order put back where a dead execution leaves one (for the IAM ledger).

    ``test_iam.py``'s stage kills no execution, so a completed order is made PROCESSING again with a
    deadline passed (charged, stock committed); the sweep finds it through the index, claims it,
    refunds, releases, announces and alerts: every grant its policy holds.
    """
    aws("dynamodb").update_item(
        TableName=ORDERS,
        Key={"order_id": {"S": order_id}},
        UpdateExpression="SET #status = :processing, deadline_at = :past",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":processing": {"S": "PROCESSING"}, ":past": {"N": "1"}},
    )
    rule = aws("events").describe_rule(Name=f"{PREFIX}-sweep_stalled_orders-event")["Arn"]
    scheduled = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events"}
    scheduled |= {
        "account": ACCOUNT,
        "time": "2026-12-01T00:00:00Z",
        "region": REGION,
        "resources": [rule],
        "detail": {},
    }
    answer = aws("lambda").invoke(FunctionName=f"{PREFIX}-sweep_stalled_orders", Payload=json.dumps(scheduled))
    payload = answer["Payload"].read()
    assert "FunctionError" not in answer and order_id in json.loads(payload)["compensated"], payload


def _execution_status(stage: RunningStage, order_id: str) -> str:
    sfn = _aws(stage, "stepfunctions")
    machine = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"])
    arn = f"{machine.replace(':stateMachine:', ':execution:')}:{order_id}"
    try:
        return str(sfn.describe_execution(executionArn=arn)["status"])
    except sfn.exceptions.ExecutionDoesNotExist:
        return "NOT_STARTED"


def test_given_an_execution_that_died_when_its_deadline_passes_then_the_sweep_fails_the_order_and_undoes_it(
    dying_stage: RunningStage,
) -> None:
    shop = Shop(dying_stage)
    product = shop.product(stock=5)
    dynamodb = _aws(dying_stage, "dynamodb")
    # GIVEN an order whose execution charged, committed the stock, then died with its compensation
    order_id = shop.order(product, quantity=2)
    _wait_for(lambda: _execution_status(dying_stage, order_id) == "FAILED", 90, "the execution's death")
    order = shop.http.get(f"/orders/{order_id}", headers=shop.buyer).json()
    assert order["status"] == "PROCESSING" and shop.stock(product) == 3
    payment = dynamodb.get_item(TableName=PAYMENTS, Key={"order_id": {"S": order_id}})["Item"]
    assert payment["status"]["S"] == "success"
    # ... with the deadline its intake recorded: at least the workflow's timeout from now
    item = dynamodb.get_item(TableName=ORDERS, Key={"order_id": {"S": order_id}}, ConsistentRead=True)["Item"]
    assert int(item["deadline_at"]["N"]) >= time.time() + 300 - 90
    # WHEN that deadline passes (moved into the past rather than waited for) and the schedule fires
    dynamodb.update_item(
        TableName=ORDERS,
        Key={"order_id": {"S": order_id}},
        UpdateExpression="SET deadline_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )

    def ended() -> dict[str, Any] | None:
        found: dict[str, Any] = shop.http.get(f"/orders/{order_id}", headers=shop.buyer).json()
        return found if found["status"] != "PROCESSING" else None

    order = _wait_for(ended, SWEEP_WAIT_S, "the sweep")
    # THEN the order failed as a failed workflow fails it: WORKFLOW_FAILED, stock back, the charge refunded
    assert (order["status"], order.get("failure_reason")) == ("FAILED", "WORKFLOW_FAILED")
    assert shop.stock(product) == 5
    payment = dynamodb.get_item(TableName=PAYMENTS, Key={"order_id": {"S": order_id}})["Item"]
    assert payment["status"]["S"] == "refunded" and int(payment["charges"]["N"]) == 1
    # ... and it left the watchdog's index: nothing is owed any more
    item = dynamodb.get_item(TableName=ORDERS, Key={"order_id": {"S": order_id}}, ConsistentRead=True)["Item"]
    assert "deadline_at" not in item
