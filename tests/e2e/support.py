"""What several e2e modules share: a shop on the running stage, its AWS clients, and waiting.

Everything here goes through the one stage client (``runbooks.stage_client``), the same the
benchmarks and the runbooks use; an e2e module imports these, never another test module's helpers.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from runbooks.stage_client import ADDRESS, LOCAL_CREDENTIALS, StageClient, aws_client, order_body
from tests import polling
from tests.e2e.conftest import RunningStage

__all__ = ["ADDRESS", "StageShop", "aws", "reports", "wait_for"]


def aws(stage: RunningStage, service: str, session: Mapping[str, str] | None = None) -> Any:
    """A boto3 client for the stage's embedded AWS: as the tests' own caller (placeholder credentials),
    or with ``session``, the ``Credentials`` of an ``sts:AssumeRole`` answer, as that role."""
    credentials = (
        {
            "aws_access_key_id": session["AccessKeyId"],
            "aws_secret_access_key": session["SecretAccessKey"],
            "aws_session_token": session["SessionToken"],
        }
        if session
        else LOCAL_CREDENTIALS
    )
    return aws_client(stage.aws_endpoint, service, credentials=credentials)


# Polled against a running stage over HTTP: a quarter second, so waiting adds little to its load.
wait_for = functools.partial(polling.wait_for, poll=0.25)


def reports(stage: RunningStage, function: str) -> list[str]:
    """The function's Lambda ``REPORT`` lines so far (none before its log group exists)."""
    logs = aws(stage, "logs")
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{function}")["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [e["message"] for e in events if e["message"].startswith("REPORT RequestId:")]


class StageShop:
    """The stage's seeded admin and a fresh buyer, logged in; products and orders through the API."""

    def __init__(self, stage: RunningStage) -> None:
        self.client = StageClient.open(stage.api_url, timeout_s=15)
        self.admin = self.client.login(stage.admin_email, stage.admin_password)
        self.buyer = self.client.register("buyer").headers

    @property
    def http(self) -> httpx.Client:
        return self.client.http

    def product(self, price: float = 10.0, stock: int = 10) -> str:
        return self.client.create_product(self.admin, price=price, stock=stock)

    def stock(self, product_id: str) -> int:
        return int(self.client.product(product_id)["stock"])

    def order(self, product_id: str, quantity: int = 1, token: str = "tok_success") -> str:
        return self.client.place_order(self.buyer, order_body(product_id, quantity, token))

    def settle(self, order_id: str, timeout: float = 45.0) -> dict[str, Any]:
        """Poll until the order is COMPLETED or FAILED (bounded)."""
        return self.client.wait_for_order(self.buyer, order_id, timeout_s=timeout)


# The local stage's names, as `make run` and the e2e stages deploy them.
REGION, ACCOUNT = "us-east-1", "123456789012"
PREFIX = "ecommerce-backend-local"  # the functions' names: f"{PREFIX}-{handler}"
ORDERS_TABLE = "ecommerce-backend-orders-local"
PAYMENTS_TABLE = "ecommerce-backend-payments-local"


def sweep_a_stalled_order(aws: Callable[[str], Any], order_id: str) -> None:
    """The sweep, invoked, over an order put back where a dead execution leaves one (for the IAM ledger).

    ``test_iam.py``'s stage kills no execution, so a completed order is made PROCESSING again with a
    deadline passed (charged, stock committed); the sweep finds it through the index, claims it,
    refunds, releases, announces and alerts: every grant its policy holds.
    """
    aws("dynamodb").update_item(
        TableName=ORDERS_TABLE,
        Key={"order_id": {"S": order_id}},
        UpdateExpression="SET #status = :processing, deadline_at = :past",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":processing": {"S": "PROCESSING"}, ":past": {"N": "1"}},
    )
    invoke_sweep(aws, [order_id])


def invoke_sweep(aws: Callable[[str], Any], order_ids: list[str]) -> None:
    """The watchdog's sweep, invoked with its schedule's event; each of ``order_ids`` must be among those it compensated."""
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
    assert "FunctionError" not in answer and set(order_ids) <= set(json.loads(payload)["compensated"]), payload
