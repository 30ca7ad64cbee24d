"""The re-check claims on moto's DynamoDB, in the Payments table's shape: what the workflow monitor reads back."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from chalicelib.adapters.payment_rechecks import InMemoryPaymentRechecks, SqsPaymentRechecks
from chalicelib.domain.ports import PaymentRecheckQueue

pytestmark = pytest.mark.integration

REGION = "us-east-1"
TABLE = "payments"


@pytest.fixture
def claims(monkeypatch: pytest.MonkeyPatch) -> Iterator[SqsPaymentRechecks]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
        )
        dynamodb.put_item(TableName=TABLE, Item={"order_id": {"S": "ord_1"}, "status": {"S": "pending"}})
        yield SqsPaymentRechecks(None, "unused", dynamodb, TABLE)


@pytest.mark.parametrize("kind", ["dynamodb", "memory"])
def test_given_rounds_claimed_when_read_back_then_the_latest_round_and_0_before_any(
    claims: SqsPaymentRechecks, kind: str
) -> None:
    queue: PaymentRecheckQueue = claims if kind == "dynamodb" else InMemoryPaymentRechecks()
    # GIVEN an order no round was claimed for yet
    assert queue.latest_round("ord_1") == 0
    # WHEN rounds 1 and 2 are claimed, then a late copy of round 1 loses
    assert queue.claim("ord_1", 1, "m1") and queue.claim("ord_1", 2, "m2")
    assert not queue.claim("ord_1", 1, "m3")
    # THEN the latest is round 2, for this order only
    assert queue.latest_round("ord_1") == 2
    assert queue.latest_round("ord_other") == 0
