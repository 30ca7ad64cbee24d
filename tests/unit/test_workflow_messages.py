"""The pipeline's message handlers on in-memory adapters: order intake, batches, notifications, status events."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from chalicelib.adapters.pipeline_messaging import RecordingDeadLetters, RecordingTopic, RecordingWorkflow
from chalicelib.bootstrap import Container, use_container
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.events import ExecutionStatusChange
from chalicelib.domain.orders import FailureReason, OrderStatus
from chalicelib.entrypoints import pipeline as entry
from chalicelib.entrypoints.sqs import BatchResponse
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


def record(body: str, message_id: str = "m1", receives: int = 1) -> dict[str, object]:
    """One entry of Lambda's SQS event, as the entry layer receives it."""
    return {"messageId": message_id, "body": body, "attributes": {"ApproximateReceiveCount": str(receives)}}


def consume(shop: Container, *records: dict[str, object]) -> BatchResponse:
    """The order queue's consumer, as ``app.process_order`` runs it."""
    return entry.order_queue(records, shop.order_intake, shop.order_dead_letters)


def message(order_id: str) -> str:
    return json.dumps({"order_id": order_id, "customer_id": "u", "total_amount": 1, "items": []})


def test_given_a_pending_order_when_its_message_arrives_twice_then_one_execution_and_processing(
    shop: Container,
) -> None:
    order = place(shop, (add_product(shop, stock=3), 1))
    first = consume(shop, record(message(order.order_id)))
    second = consume(shop, record(message(order.order_id), "m2"))
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
    answer = consume(shop, record("{not json", "bad"), record(message(order.order_id), "good"))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "bad"}]}


def test_given_a_poison_message_on_its_third_receive_when_it_fails_then_it_is_dead_lettered_with_its_reason(
    shop: Container,
) -> None:
    body = message("ord_" + "0" * 32)
    assert consume(shop, record(body, receives=2)) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert consume(shop, record(body, receives=3)) == {"batchItemFailures": []}
    dead = shop.order_dead_letters
    assert isinstance(dead, RecordingDeadLetters)
    assert [(m[0], m[1], m[3]) for m in dead.messages] == [(body, "OrderNotFoundError", 3)]


def test_given_a_workflow_that_cannot_start_when_the_message_is_given_up_then_the_order_fails(
    shop: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = place(shop, (add_product(shop, stock=3), 1))

    def refuse(name: str, payload: object) -> bool:
        raise RuntimeError("Step Functions is unreachable")

    monkeypatch.setattr(shop.workflow_engine, "start", refuse)
    consume(shop, record(message(order.order_id), receives=3))
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
    kind = shop.notification_service.route_event(entry.pipeline_event(json.dumps(envelope)))
    topic = shop.notification_topic
    assert isinstance(topic, RecordingTopic)
    assert (kind.value if kind else None) == expected
    assert [m["type"] for _, m in topic.messages] == ([expected] if expected else [])


@pytest.mark.parametrize("body", [json.dumps({"order_id": "ord_1"}), "{not json", "[]", json.dumps({"detail": {}})])
def test_given_a_body_that_is_no_event_when_read_then_validation_error(body: str) -> None:
    with pytest.raises(ValidationError):
        entry.pipeline_event(body)


def test_given_a_bad_event_in_a_batch_when_its_last_receive_fails_then_it_is_dead_lettered_and_the_rest_routed(
    shop: Container,
) -> None:
    good = json.dumps({"detail-type": "Order Created", "detail": {"order_id": "ord_1"}})
    records = [record("{not json", "bad", receives=3), record(good, "good")]
    answer = entry.notification_events(records, shop.notification_service, shop.notification_dead_letters)
    dead, topic = shop.notification_dead_letters, shop.notification_topic
    assert isinstance(dead, RecordingDeadLetters) and isinstance(topic, RecordingTopic)
    assert answer == {"batchItemFailures": []}
    assert [(m[0], m[1], m[3]) for m in dead.messages] == [("{not json", "ValidationError", 3)]
    assert [m["type"] for _, m in topic.messages] == ["order_confirmation"]


def test_given_a_notification_delivered_twice_when_recorded_then_the_order_shows_it_once(shop: Container) -> None:
    order = place(shop, (add_product(shop, stock=3), 1))
    note = entry.customer_notification(json.dumps({"type": "payment_notification", "order_id": order.order_id}))
    assert shop.notification_service.deliver(note) is True
    assert shop.notification_service.deliver(note) is False
    found = shop.order_progress.get(order.order_id)
    assert found is not None and found.to_dict()["notifications"] == ["payment_notification"]


@pytest.mark.parametrize(
    "message", ["{}", "[]", json.dumps({"type": "postcard", "order_id": "ord_1"}), json.dumps({"type": "out_of_stock"})]
)
def test_given_a_topic_message_naming_no_known_type_or_no_order_when_read_then_validation_error(message: str) -> None:
    with pytest.raises(ValidationError):
        entry.customer_notification(message)


def status_event(order_id: str, status: str, machine: str = MACHINE) -> ExecutionStatusChange:
    detail = {"name": order_id, "status": status, "stateMachineArn": machine, "executionArn": f"{machine}:{order_id}"}
    return entry.execution_status_change(detail)


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ({"name": "ord_1-check2", "input": json.dumps({"order_id": "ord_1"})}, "ord_1"),
        ({"name": "manual-run", "input": json.dumps({"order_id": "ord_2"})}, "ord_2"),
        ({"name": "ord_1-check2"}, "ord_1"),
        ({"name": "ord_1", "input": None}, "ord_1"),
        ({"name": "manual-run", "input": "not json"}, None),
        ({"name": "manual-run", "input": json.dumps(["ord_3"])}, None),
        ({}, None),
    ],
)
def test_given_a_status_event_when_read_then_the_order_is_its_inputs_else_its_names(
    detail: dict[str, str | None], expected: str | None
) -> None:
    change = entry.execution_status_change({"status": "FAILED", **detail})
    assert change.status == "FAILED" and change.order_id == expected


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ({"name": "ord_1-check2", "input": json.dumps({"order_id": "ord_1", "payment_round": 2})}, 2),
        ({"name": "manual-run", "input": json.dumps({"order_id": "ord_1", "payment_round": 0})}, 0),
        ({"name": "ord_1-check3"}, 3),
        ({"name": "ord_1"}, 0),
        ({"name": "ord_1-rerun"}, None),
        ({"name": "manual-run", "input": json.dumps({"order_id": "ord_1"})}, None),
        ({"name": "ord_1-check1", "input": json.dumps({"order_id": "ord_1", "payment_round": True})}, 1),
        ({}, None),
    ],
)
def test_given_a_status_event_when_read_then_the_round_is_its_inputs_else_its_names(
    detail: dict[str, str], expected: int | None
) -> None:
    assert entry.execution_status_change({"status": "ABORTED", **detail}).round == expected


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
