"""The pipeline's message handlers on in-memory adapters: order intake, batches, notifications, status events."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from chalicelib.adapters.pipeline_messaging import RecordingDeadLetters, RecordingTopic, RecordingWorkflow
from chalicelib.bootstrap import Container, use_container
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.orders import FailureReason, OrderStatus
from chalicelib.services.batches import QueueRecord
from tests.conftest import memory_settings
from tests.pipeline_helpers import add_product, place, stock

pytestmark = pytest.mark.unit

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:orders"


@pytest.fixture
def shop() -> Iterator[Container]:
    built = Container(memory_settings(PAYMENT_WAIT_SECONDS="2", STATE_MACHINE_ARN=MACHINE))
    use_container(built)
    yield built
    use_container(None)


def record(body: str, message_id: str = "m1", receives: int = 1) -> QueueRecord:
    return QueueRecord(message_id, body, receives)


def message(order_id: str) -> str:
    return json.dumps({"order_id": order_id, "customer_id": "u", "total_amount": 1, "items": []})


def test_given_a_pending_order_when_its_message_arrives_twice_then_one_execution_and_processing(
    shop: Container,
) -> None:
    order = place(shop, (add_product(shop, stock=3), 1))
    first = shop.order_intake.process([record(message(order.order_id))])
    second = shop.order_intake.process([record(message(order.order_id), "m2")])
    workflow = shop.workflow_engine
    assert isinstance(workflow, RecordingWorkflow)
    assert first == second == {"batchItemFailures": []}
    expected = {
        "order_id": order.order_id,
        "correlation_id": order.correlation_id,
        "payment_wait_seconds": 2,
        "payment_round": 0,
        "resume": "start",
    }
    assert workflow.executions == {order.order_id: expected}
    found = shop.order_progress.get(order.order_id)
    assert found is not None and found.status == OrderStatus.PROCESSING


def test_given_a_batch_with_one_bad_message_when_processed_then_only_that_message_is_reported(
    shop: Container,
) -> None:
    order = place(shop, (add_product(shop, stock=3), 1))
    answer = shop.order_intake.process([record("{not json", "bad"), record(message(order.order_id), "good")])
    assert answer == {"batchItemFailures": [{"itemIdentifier": "bad"}]}


def test_given_a_poison_message_on_its_third_receive_when_it_fails_then_it_is_dead_lettered_with_its_reason(
    shop: Container,
) -> None:
    body = message("ord_" + "0" * 32)
    assert shop.order_intake.process([record(body, receives=2)]) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert shop.order_intake.process([record(body, receives=3)]) == {"batchItemFailures": []}
    dead = shop.order_dead_letters
    assert isinstance(dead, RecordingDeadLetters)
    assert [m[:2] for m in dead.messages] == [(body, "OrderNotFoundError")]


def test_given_a_workflow_that_cannot_start_when_the_message_is_given_up_then_the_order_fails(
    shop: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = place(shop, (add_product(shop, stock=3), 1))

    def refuse(name: str, payload: object) -> bool:
        raise RuntimeError("Step Functions is unreachable")

    monkeypatch.setattr(shop.workflow_engine, "start", refuse)
    shop.order_intake.process([record(message(order.order_id), receives=3)])
    found = shop.order_progress.get(order.order_id)
    assert found is not None and (found.status, found.failure_reason) == (
        OrderStatus.FAILED,
        FailureReason.WORKFLOW_FAILED,
    )


@pytest.mark.parametrize(
    ("detail_type", "detail", "expected"),
    [
        ("Order Created", {}, "order_confirmation"),
        ("Payment Processed", {"status": "success"}, "payment_notification"),
        ("Inventory Reserved", {"status": "failed"}, "out_of_stock"),
        ("Inventory Reserved", {"status": "reserved"}, None),
        ("Order Completed", {}, None),
    ],
)
def test_given_an_event_envelope_when_routed_then_the_seeds_notification_is_published(
    shop: Container, detail_type: str, detail: dict[str, str], expected: str | None
) -> None:
    envelope = {"detail-type": detail_type, "source": "ecommerce.orders", "detail": {"order_id": "ord_1", **detail}}
    kind = shop.notification_service.route_event(json.dumps(envelope))
    topic = shop.notification_topic
    assert isinstance(topic, RecordingTopic)
    assert (kind.value if kind else None) == expected
    assert [m["type"] for _, m in topic.messages] == ([expected] if expected else [])


def test_given_a_body_that_is_no_event_when_routed_then_validation_error(shop: Container) -> None:
    with pytest.raises(ValidationError):
        shop.notification_service.route_event(json.dumps({"order_id": "ord_1"}))


def test_given_a_notification_delivered_twice_when_recorded_then_the_order_shows_it_once(shop: Container) -> None:
    order = place(shop, (add_product(shop, stock=3), 1))
    note = json.dumps({"type": "payment_notification", "order_id": order.order_id})
    assert shop.notification_service.deliver(note) is True
    assert shop.notification_service.deliver(note) is False
    found = shop.order_progress.get(order.order_id)
    assert found is not None and found.to_dict()["notifications"] == ["payment_notification"]


def status_event(order_id: str, status: str, machine: str = MACHINE) -> dict[str, str]:
    return {"name": order_id, "status": status, "stateMachineArn": machine, "executionArn": f"{machine}:{order_id}"}


def test_given_an_aborted_execution_holding_stock_and_money_when_reported_then_compensated_and_alerted(
    shop: Container,
) -> None:
    product = add_product(shop, stock=3)
    order = place(shop, (product, 2))
    shop.order_intake.start(order.order_id)
    shop.workflow_steps.check_inventory(order.order_id)
    shop.workflow_steps.process_payment(order.order_id)
    outcome = shop.workflow_monitor.handle(status_event(order.order_id, "ABORTED"))
    alerts = shop.alerts_topic
    assert isinstance(alerts, RecordingTopic)
    assert outcome["action"] == "alerted" and outcome["payment"] == "refunded"
    assert stock(shop, product) == 3
    assert [m["order_id"] for _, m in alerts.messages] == [order.order_id]


def test_given_an_order_failed_for_a_business_reason_when_its_execution_fails_then_no_alert(
    shop: Container,
) -> None:
    order = place(shop, (add_product(shop, stock=0), 1))
    shop.order_intake.start(order.order_id)
    shop.compensations.notify_out_of_stock(order.order_id)
    outcome = shop.workflow_monitor.handle(status_event(order.order_id, "FAILED"))
    alerts = shop.alerts_topic
    assert isinstance(alerts, RecordingTopic)
    assert outcome["failure_reason"] == "OUT_OF_STOCK" and alerts.messages == []


@pytest.mark.parametrize(("status", "machine"), [("SUCCEEDED", MACHINE), ("TIMED_OUT", MACHINE + "-other")])
def test_given_a_success_or_another_machine_when_reported_then_ignored(
    shop: Container, status: str, machine: str
) -> None:
    order = place(shop, (add_product(shop, stock=3), 1))
    outcome = shop.workflow_monitor.handle(status_event(order.order_id, status, machine))
    assert outcome["action"] == "ignored"
    found = shop.order_progress.get(order.order_id)
    assert found is not None and found.status == OrderStatus.PENDING
