"""The order's hand-offs against moto, on resources made from the stage's own template: the dispatcher
(order queue, EventBridge bus, SNS topic), the event publisher, and presigned uploads.

Identity and signing keys are in test_aws_adapters.py; the stage both use is tests/integration/adapter_stage.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.adapters.dispatch import AwsOrderDispatcher, EventBridgePublisher, EventPublishError
from chalicelib.adapters.uploads import S3UploadSigner, decode_policy
from chalicelib.domain.errors import (
    DependencyUnavailableError,
)
from tests.integration.adapter_stage import REGION, Stage, make_order, provisioned_stage

pytestmark = pytest.mark.integration


@pytest.fixture
def stage(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stage]:
    with provisioned_stage(monkeypatch) as provisioned:
        yield provisioned


def probe_queue(stage: Stage, name: str) -> tuple[str, str]:
    sqs = stage.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def receive_all(stage: Stage, url: str) -> list[dict[str, Any]]:
    answer = stage.client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
    )
    return list(answer.get("Messages", []))


# -- dispatch ---------------------------------------------------------------------------------


@pytest.fixture
def publisher(stage: Stage) -> EventBridgePublisher:
    return EventBridgePublisher(stage.client("events"), stage.outputs["EVENT_BUS_NAME"])


@pytest.fixture
def dispatcher(stage: Stage, publisher: EventBridgePublisher) -> AwsOrderDispatcher:
    return AwsOrderDispatcher(
        stage.client("sqs"),
        stage.client("sns"),
        publisher,
        stage.outputs["ORDER_QUEUE_URL"],
        stage.outputs["NOTIFICATIONS_TOPIC_ARN"],
    )


def test_given_order_when_dispatched_then_one_message_on_order_queue_with_attributes(
    stage: Stage, dispatcher: AwsOrderDispatcher
) -> None:
    dispatcher.order_placed(make_order())

    messages = receive_all(stage, stage.outputs["ORDER_QUEUE_URL"])
    assert len(messages) == 1
    assert json.loads(messages[0]["Body"]) == {
        "order_id": "ord_1",
        "customer_id": "user-1",
        "total_amount": 28,
        "currency": "USD",
        "items": [
            {"product_id": "prod-1", "quantity": 2, "unit_price": 12.5},
            {"product_id": "prod-2", "quantity": 1, "unit_price": 3},
        ],
        "correlation_id": "corr-1",
    }
    attributes = {k: v["StringValue"] for k, v in messages[0]["MessageAttributes"].items()}
    assert attributes == {"OrderType": "standard", "Priority": "normal", "CorrelationId": "corr-1"}


def test_given_rule_on_bus_when_order_dispatched_then_order_created_event_delivered(
    stage: Stage, publisher: EventBridgePublisher, dispatcher: AwsOrderDispatcher
) -> None:
    url, arn = probe_queue(stage, "order-events-probe")
    publisher.create_rule(
        "order-created-probe", {"source": ["ecommerce.orders"], "detail-type": ["Order Created"]}, [{"arn": arn}]
    )

    dispatcher.order_placed(make_order())

    messages = receive_all(stage, url)
    assert len(messages) == 1
    event = json.loads(messages[0]["Body"])
    assert event["source"] == "ecommerce.orders"
    assert event["detail-type"] == "Order Created"
    detail = event["detail"]
    assert detail["order_id"] == "ord_1"
    assert detail["total_amount"] == 28
    assert detail["status"] == "PENDING"
    assert detail["correlation_id"] == "corr-1"
    assert detail["items"][0] == {"product_id": "prod-1", "quantity": 2, "unit_price": 12.5}
    assert detail["timestamp"].endswith("Z")


def test_given_queue_subscribed_to_topic_when_order_dispatched_then_confirmation_published(
    stage: Stage, dispatcher: AwsOrderDispatcher
) -> None:
    url, arn = probe_queue(stage, "notifications-probe")
    stage.client("sns").subscribe(TopicArn=stage.outputs["NOTIFICATIONS_TOPIC_ARN"], Protocol="sqs", Endpoint=arn)

    dispatcher.order_placed(make_order())

    messages = receive_all(stage, url)
    assert len(messages) == 1
    envelope = json.loads(messages[0]["Body"])
    assert envelope["Subject"] == "Order Confirmation - ord_1"
    assert json.loads(envelope["Message"]) == {
        "order_id": "ord_1",
        "customer_id": "user-1",
        "total_amount": 28,
        "status": "PENDING",
        "type": "order_confirmation",
    }
    assert envelope["MessageAttributes"]["notification_type"]["Value"] == "order_confirmation"


def test_given_missing_queue_when_order_dispatched_then_dependency_unavailable_from_client_error(
    stage: Stage, publisher: EventBridgePublisher
) -> None:
    dispatcher = AwsOrderDispatcher(
        stage.client("sqs"),
        stage.client("sns"),
        publisher,
        stage.outputs["ORDER_QUEUE_URL"] + "-missing",
        stage.outputs["NOTIFICATIONS_TOPIC_ARN"],
    )

    with pytest.raises(DependencyUnavailableError, match="Idempotency-Key") as caught:
        dispatcher.order_placed(make_order())

    assert "ord_1" in caught.value.message
    assert caught.value.__cause__ is not None


def test_given_missing_topic_when_order_dispatched_then_dependency_unavailable(
    stage: Stage, publisher: EventBridgePublisher
) -> None:
    dispatcher = AwsOrderDispatcher(
        stage.client("sqs"),
        stage.client("sns"),
        publisher,
        stage.outputs["ORDER_QUEUE_URL"],
        stage.outputs["NOTIFICATIONS_TOPIC_ARN"] + "-missing",
    )

    with pytest.raises(DependencyUnavailableError, match="could not be confirmed"):
        dispatcher.order_placed(make_order())


def test_given_bus_rejects_entry_when_publish_event_then_event_publish_error_with_code() -> None:
    events = boto3.client("events", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    publisher = EventBridgePublisher(events, "bus")
    with Stubber(events) as stub:
        stub.add_response(
            "put_events",
            {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try later"}]},
        )

        with pytest.raises(EventPublishError, match="InternalFailure: try later"):
            publisher.publish_event("ecommerce.orders", "Order Created", {"total": Decimal("1.50")})


def test_given_bus_rejects_entry_when_order_dispatched_then_dependency_unavailable(stage: Stage) -> None:
    events = boto3.client("events", region_name=REGION)
    dispatcher = AwsOrderDispatcher(
        stage.client("sqs"),
        stage.client("sns"),
        EventBridgePublisher(events, stage.outputs["EVENT_BUS_NAME"]),
        stage.outputs["ORDER_QUEUE_URL"],
        stage.outputs["NOTIFICATIONS_TOPIC_ARN"],
    )
    with Stubber(events) as stub:
        stub.add_response("put_events", {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "X", "ErrorMessage": "y"}]})

        with pytest.raises(DependencyUnavailableError, match="could not be announced") as caught:
            dispatcher.order_placed(make_order())

    assert isinstance(caught.value.__cause__, EventPublishError)


def test_given_decimal_detail_when_publish_event_then_sent_as_json_numbers() -> None:
    events = boto3.client("events", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    publisher = EventBridgePublisher(events, "bus")
    with Stubber(events) as stub:
        stub.add_response(
            "put_events",
            {"FailedEntryCount": 0, "Entries": [{"EventId": "evt-1"}]},
            {
                "Entries": [
                    {
                        "Source": "s",
                        "DetailType": "d",
                        "Detail": '{"price":1.5,"count":3}',
                        "EventBusName": "bus",
                    }
                ]
            },
        )

        assert publisher.publish_event("s", "d", {"price": Decimal("1.50"), "count": Decimal("3")}) == "evt-1"


def test_given_target_without_role_when_create_rule_then_role_arn_omitted() -> None:
    events = boto3.client("events", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    publisher = EventBridgePublisher(events, "bus")
    with Stubber(events) as stub:
        stub.add_response("put_rule", {"RuleArn": "arn:aws:events:us-east-1:123456789012:rule/bus/r"})
        stub.add_response(
            "put_targets",
            {"FailedEntryCount": 0, "FailedEntries": []},
            {
                "Rule": "r",
                "EventBusName": "bus",
                "Targets": [
                    {"Id": "1", "Arn": "arn:q1"},
                    {"Id": "2", "Arn": "arn:q2", "RoleArn": "arn:role", "InputPath": "$.detail"},
                ],
            },
        )

        rule_arn = publisher.create_rule(
            "r",
            {"source": ["s"]},
            [{"arn": "arn:q1", "role_arn": None}, {"arn": "arn:q2", "role_arn": "arn:role", "input_path": "$.detail"}],
        )

    assert rule_arn.endswith("rule/bus/r")


# -- uploads ----------------------------------------------------------------------------------


def test_given_bucket_when_presign_then_policy_pins_content_type_and_size(stage: Stage) -> None:
    signer = S3UploadSigner(stage.client("s3"), stage.outputs["UPLOADS_BUCKET"])

    form = signer.presign("uploads/u1/upl_1/cat.png", "image/png", 1024, 900)

    fields = form["fields"]
    assert isinstance(fields, dict)
    assert fields["key"] == "uploads/u1/upl_1/cat.png"
    assert fields["Content-Type"] == "image/png"
    assert stage.outputs["UPLOADS_BUCKET"] in str(form["url"])
    conditions = decode_policy(form)["conditions"]
    assert {"Content-Type": "image/png"} in conditions
    assert ["content-length-range", 1, 1024] in conditions
