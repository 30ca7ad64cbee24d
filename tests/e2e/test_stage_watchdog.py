"""The Express workflow's watchdog on a running local stage: an execution that dies leaves no order behind.

A stage of its own, with the fault switch (localstage/faults.py) failing every invocation of
``schedule_shipping`` and of ``compensate_order``: each order's execution holds the stock, charges the
card, then fails at ScheduleShipping, and its catch (CompensateOrder) fails too, so the execution ends
FAILED with the order PROCESSING, charged and its stock committed, which is what an execution that
hits its timeout leaves. Express sends no status-change event; only the watchdog can end the order.

Rather than wait out the workflow's five-minute timeout, the test moves the recorded deadline into the
past (time passing). Rather than wait up to a minute for the sweep's schedule, it fires the sweep's
rule now, with the stage's documented shortcut (a Scheduled Event put on the rule's bus,
``localstage/eventbridge.py``): the same rule, target, permission and invocation as the schedule's,
only sooner. That the stage's scheduler fires rules at their times is tested on its own
(``tests/integration/test_localstage_events.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import RunningStage
from tests.e2e.stage_process import separate_stage
from tests.e2e.support import ORDERS_TABLE, PAYMENTS_TABLE, PREFIX, StageShop, aws, wait_for

pytestmark = pytest.mark.e2e

SWEEP_WAIT_S = 60  # one sweep, at the stage's own pace on a loaded machine


@pytest.fixture(scope="module")
def dying_stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStage]:
    switch = {
        "LOCAL_FAULT_RATE": "1",
        "LOCAL_FAULT_MODE": "error",
        "LOCAL_FAULT_FUNCTIONS": "schedule_shipping,compensate_order",
        "LOCAL_LAMBDA_MEASURE_MEMORY": "0",
    }
    with separate_stage(tmp_path_factory.mktemp("watchdog"), switch) as stage:
        yield stage


def _execution_status(stage: RunningStage, order_id: str) -> str:
    sfn = aws(stage, "stepfunctions")
    machine = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"])
    arn = f"{machine.replace(':stateMachine:', ':execution:')}:{order_id}"
    try:
        return str(sfn.describe_execution(executionArn=arn)["status"])
    except sfn.exceptions.ExecutionDoesNotExist:
        return "NOT_STARTED"


def test_given_an_execution_that_died_when_its_deadline_passes_then_the_sweep_fails_the_order_and_undoes_it(
    dying_stage: RunningStage,
) -> None:
    shop = StageShop(dying_stage)
    product = shop.product(stock=5)
    dynamodb = aws(dying_stage, "dynamodb")
    # GIVEN an order whose execution charged, committed the stock, then died with its compensation
    order_id = shop.order(product, quantity=2)
    wait_for(lambda: _execution_status(dying_stage, order_id) == "FAILED", 90, poll=0.5)
    order = shop.http.get(f"/orders/{order_id}", headers=shop.buyer).json()
    assert order["status"] == "PROCESSING" and shop.stock(product) == 3
    payment = dynamodb.get_item(TableName=PAYMENTS_TABLE, Key={"order_id": {"S": order_id}})["Item"]
    assert payment["status"]["S"] == "success"
    # ... with the deadline its intake recorded: at least the workflow's timeout from now
    item = dynamodb.get_item(TableName=ORDERS_TABLE, Key={"order_id": {"S": order_id}}, ConsistentRead=True)["Item"]
    assert int(item["deadline_at"]["N"]) >= time.time() + 300 - 90
    # WHEN that deadline passes (moved into the past rather than waited for) and the sweep's schedule fires
    dynamodb.update_item(
        TableName=ORDERS_TABLE,
        Key={"order_id": {"S": order_id}},
        UpdateExpression="SET deadline_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    events = aws(dying_stage, "events")
    rule = events.describe_rule(Name=f"{PREFIX}-sweep_stalled_orders-event")["Arn"]
    entry = {"Source": "aws.events", "DetailType": "Scheduled Event", "Detail": "{}", "Resources": [rule]}
    assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0

    def settled() -> bool:
        # The sweep claims the order (FAILED) first, then compensates, and drops the deadline last:
        # a deadline still there means compensation is owed, so the checks wait for it to go.
        key = {"order_id": {"S": order_id}}
        return "deadline_at" not in dynamodb.get_item(TableName=ORDERS_TABLE, Key=key, ConsistentRead=True)["Item"]

    wait_for(settled, SWEEP_WAIT_S, poll=0.5)
    # THEN the order failed as a failed workflow fails it: WORKFLOW_FAILED, stock back, the charge refunded,
    # and it left the watchdog's index: nothing is owed any more
    order = shop.http.get(f"/orders/{order_id}", headers=shop.buyer).json()
    assert (order["status"], order.get("failure_reason")) == ("FAILED", "WORKFLOW_FAILED")
    assert shop.stock(product) == 5
    payment = dynamodb.get_item(TableName=PAYMENTS_TABLE, Key={"order_id": {"S": order_id}})["Item"]
    assert payment["status"]["S"] == "refunded" and int(payment["charges"]["N"]) == 1
