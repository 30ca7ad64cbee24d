"""The AWS adapters against moto, on resources made from the stage's own template."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from chalicelib.adapters.dispatch import AwsOrderDispatcher, EventBridgePublisher, EventPublishError
from chalicelib.adapters.identity import CognitoIdentityProvider
from chalicelib.adapters.signing_keys import SecretsManagerSigningKeys, SigningKeyError
from chalicelib.adapters.uploads import S3UploadSigner, decode_policy
from chalicelib.domain.errors import (
    AuthenticationError,
    ConflictError,
    DependencyUnavailableError,
    ValidationError,
)
from chalicelib.domain.orders import Order, OrderLine, ShippingAddress
from infra.template import stage_template
from localstage.provision import Provisioner

pytestmark = pytest.mark.integration

REGION = "us-east-1"
PASSWORD = "Sup3r-secret"
KEY_A = "a" * 40
KEY_B = "b" * 40


@dataclass
class Stage:
    provisioner: Provisioner
    outputs: dict[str, str]

    def client(self, service: str) -> Any:
        return self.provisioner.client(service)


@pytest.fixture
def stage(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stage]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        provisioner = Provisioner(region=REGION)
        provisioner.apply(stage_template("test"))
        yield Stage(provisioner, provisioner.result.outputs)


@pytest.fixture
def identity(stage: Stage) -> CognitoIdentityProvider:
    return CognitoIdentityProvider(
        stage.client("cognito-idp"), stage.outputs["USER_POOL_ID"], stage.outputs["USER_POOL_CLIENT_ID"]
    )


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


def count_calls(client: Any, operation: str) -> list[str]:
    """Record every call of ``operation`` through a botocore event hook."""
    calls: list[str] = []
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-call.{service}.{operation}", lambda **_: calls.append(operation))
    return calls


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- identity ---------------------------------------------------------------------------------


def test_given_new_email_when_create_user_then_user_is_confirmed_and_can_log_in(
    stage: Stage, identity: CognitoIdentityProvider
) -> None:
    user_id = identity.create_user("ada@example.com", PASSWORD, "Ada")

    user = stage.client("cognito-idp").admin_get_user(
        UserPoolId=stage.outputs["USER_POOL_ID"], Username="ada@example.com"
    )
    attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    assert user["UserStatus"] == "CONFIRMED"
    assert attributes["sub"] == user_id
    assert attributes["email_verified"] == "true"
    assert attributes["name"] == "Ada"
    identity.authenticate("ada@example.com", PASSWORD)  # does not raise


def test_given_an_email_our_check_accepts_but_cognito_refuses_when_creating_then_400_not_500(
    identity: CognitoIdentityProvider,
) -> None:
    # Found by the fuzzer (tests/e2e/test_security_fuzz.py): a "/" in the local part was an unhandled 500.
    with pytest.raises(ValidationError) as refused:
        identity.create_user("mjhtx/g78-@y.7cj0jeel.info", PASSWORD, "Ada")
    assert [d.field for d in refused.value.details] == ["email"]


def test_given_user_when_wrong_password_then_authentication_error(identity: CognitoIdentityProvider) -> None:
    identity.create_user("ada@example.com", PASSWORD, "Ada")

    with pytest.raises(AuthenticationError):
        identity.authenticate("ada@example.com", PASSWORD + "x")


def test_given_no_such_user_when_authenticate_then_authentication_error(identity: CognitoIdentityProvider) -> None:
    with pytest.raises(AuthenticationError):
        identity.authenticate("nobody@example.com", PASSWORD)


def test_given_user_left_in_force_change_password_when_authenticate_then_authentication_error(
    stage: Stage, identity: CognitoIdentityProvider
) -> None:
    # The seed's registration: a temporary password only, so Cognito answers with a challenge.
    stage.client("cognito-idp").admin_create_user(
        UserPoolId=stage.outputs["USER_POOL_ID"],
        Username="seed@example.com",
        TemporaryPassword=PASSWORD,
        MessageAction="SUPPRESS",
    )

    with pytest.raises(AuthenticationError, match="NEW_PASSWORD_REQUIRED"):
        identity.authenticate("seed@example.com", PASSWORD)


def test_given_taken_email_when_create_user_then_conflict(identity: CognitoIdentityProvider) -> None:
    identity.create_user("ada@example.com", PASSWORD, "Ada")

    with pytest.raises(ConflictError):
        identity.create_user("ada@example.com", PASSWORD, "Ada again")


def test_given_weak_password_when_create_user_then_validation_error_and_no_half_created_user(
    stage: Stage, identity: CognitoIdentityProvider
) -> None:
    with pytest.raises(ValidationError) as caught:
        identity.create_user("ada@example.com", "weak", "Ada")

    assert [d.field for d in caught.value.details] == ["password"]
    idp = stage.client("cognito-idp")
    with pytest.raises(idp.exceptions.UserNotFoundException):
        idp.admin_get_user(UserPoolId=stage.outputs["USER_POOL_ID"], Username="ada@example.com")
    # The email is free again.
    assert identity.create_user("ada@example.com", PASSWORD, "Ada")


def test_given_user_when_deleted_twice_then_gone_and_second_delete_is_quiet(
    identity: CognitoIdentityProvider,
) -> None:
    identity.create_user("ada@example.com", PASSWORD, "Ada")

    identity.delete_user("ada@example.com")
    identity.delete_user("ada@example.com")

    with pytest.raises(AuthenticationError):
        identity.authenticate("ada@example.com", PASSWORD)


# -- signing keys -----------------------------------------------------------------------------


def test_given_generated_secret_when_current_then_key_k1_from_secret(stage: Stage) -> None:
    secret_id = stage.outputs["SIGNING_KEY_SECRET_ID"]
    stored = json.loads(stage.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
    keys = SecretsManagerSigningKeys(stage.client("secretsmanager"), secret_id)

    key = keys.current()

    assert key.kid == "k1"
    assert key.secret == stored["key"].encode("utf-8")
    assert len(key.secret) == 64
    assert keys.find("k1") == key


def test_given_forged_kids_when_find_then_secret_read_at_most_once_per_interval(stage: Stage) -> None:
    sm = stage.client("secretsmanager")
    calls = count_calls(sm, "GetSecretValue")
    clock = FakeClock()
    keys = SecretsManagerSigningKeys(sm, stage.outputs["SIGNING_KEY_SECRET_ID"], min_refresh_seconds=30, clock=clock)
    keys.current()
    assert len(calls) == 1

    clock.now += 29
    misses = [keys.find(f"forged-{i}") for i in range(50)]
    assert misses == [None] * 50
    assert len(calls) == 1

    clock.now += 1
    for i in range(50):
        keys.find(f"forged-again-{i}")
    assert len(calls) == 2


def test_given_fresh_cache_when_current_then_no_call_until_cache_expires(stage: Stage) -> None:
    sm = stage.client("secretsmanager")
    calls = count_calls(sm, "GetSecretValue")
    clock = FakeClock()
    keys = SecretsManagerSigningKeys(sm, stage.outputs["SIGNING_KEY_SECRET_ID"], cache_seconds=300, clock=clock)

    for _ in range(10):
        keys.current()
    clock.now += 300
    keys.current()

    assert len(calls) == 2


def test_given_rotated_secret_when_find_new_kid_then_refreshed_and_previous_kid_still_valid(stage: Stage) -> None:
    sm = stage.client("secretsmanager")
    secret_id = stage.outputs["SIGNING_KEY_SECRET_ID"]
    sm.put_secret_value(SecretId=secret_id, SecretString=json.dumps({"kid": "k1", "key": KEY_A}))
    clock = FakeClock()
    keys = SecretsManagerSigningKeys(sm, secret_id, clock=clock)
    assert keys.current().kid == "k1"

    sm.put_secret_value(
        SecretId=secret_id,
        SecretString=json.dumps({"kid": "k2", "key": KEY_B, "previous": [{"kid": "k1", "key": KEY_A}]}),
    )
    clock.now += 30
    rotated = keys.find("k2")

    assert rotated is not None and rotated.secret == KEY_B.encode()
    assert keys.current().kid == "k2"
    old = keys.find("k1")
    assert old is not None and old.secret == KEY_A.encode()


@pytest.mark.parametrize(
    ("secret", "fault"),
    [
        ("not json " + KEY_A, "not valid JSON"),
        (json.dumps({"key": KEY_A}), "'kid'"),
        (json.dumps({"kid": "k1", "key": "short-" + "s3cr3t"}), "at least 32"),
        (json.dumps({"kid": "k1", "key": KEY_A, "previous": {"kid": "k0"}}), "'previous' must be a list"),
        (json.dumps({"kid": "k1", "key": KEY_A, "previous": [{"kid": "k1", "key": KEY_B}]}), "more than once"),
    ],
)
def test_given_malformed_secret_when_first_load_then_signing_key_error_without_key_material(
    stage: Stage, secret: str, fault: str
) -> None:
    sm = stage.client("secretsmanager")
    secret_id = stage.outputs["SIGNING_KEY_SECRET_ID"]
    sm.put_secret_value(SecretId=secret_id, SecretString=secret)
    keys = SecretsManagerSigningKeys(sm, secret_id)

    with pytest.raises(SigningKeyError, match=fault) as caught:
        keys.current()

    assert KEY_A not in str(caught.value) and KEY_B not in str(caught.value) and "s3cr3t" not in str(caught.value)


def test_given_malformed_rotation_when_cache_expires_then_cached_keys_stay_in_use(stage: Stage) -> None:
    sm = stage.client("secretsmanager")
    secret_id = stage.outputs["SIGNING_KEY_SECRET_ID"]
    clock = FakeClock()
    keys = SecretsManagerSigningKeys(sm, secret_id, clock=clock)
    before = keys.current()

    sm.put_secret_value(SecretId=secret_id, SecretString="{broken")
    clock.now += 300

    assert keys.current() == before


def test_given_secrets_manager_outage_when_cache_expires_then_cached_keys_used_and_retried_once_per_interval(
    stage: Stage,
) -> None:
    sm = stage.client("secretsmanager")
    secret_id = stage.outputs["SIGNING_KEY_SECRET_ID"]
    calls = count_calls(sm, "GetSecretValue")
    clock = FakeClock()
    keys = SecretsManagerSigningKeys(sm, secret_id, clock=clock)
    before = keys.current()

    sm.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
    clock.now += 300
    served = [keys.current() for _ in range(20)]

    assert served == [before] * 20
    assert len(calls) == 2
    clock.now += 30
    keys.current()
    assert len(calls) == 3


def test_given_missing_secret_when_first_load_then_dependency_unavailable(stage: Stage) -> None:
    keys = SecretsManagerSigningKeys(stage.client("secretsmanager"), "no-such-secret")

    with pytest.raises(DependencyUnavailableError):
        keys.current()


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
