"""Delayed re-checks of pending payments: an SQS delay on the way out, a claim in the Payments table on the way in.

Why SQS and not EventBridge Scheduler: a per-message ``DelaySeconds`` covers the 300 s wait (up to
900 s), costs three SQS requests per round instead of a schedule to create and delete, and brings
the consumer's retries, partial batches and dead-letter queue that the order queue already has.
Delivery is at least once, and the workflow that schedules may itself run twice, so the consumer
claims each round with a conditional write: the first delivery of a round wins, a redelivery of the
same message wins again (its Lambda may have failed after claiming), any other copy loses.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Callable

from botocore.exceptions import ClientError

from chalicelib.adapters.dynamodb_codec import error_code, string_key, to_raw
from chalicelib.config import Settings
from chalicelib.domain.pipeline import MAX_QUEUE_DELAY_SECONDS
from chalicelib.domain.ports import PaymentRecheckQueue

CONDITION_FAILED = "ConditionalCheckFailedException"
_CLAIM = (
    "attribute_exists(order_id) AND (attribute_not_exists(recheck_round) OR recheck_round < :round "
    "OR (recheck_round = :round AND recheck_message = :message))"
)


def queue_for(settings: Settings, client: Callable[[str], Any] | None) -> PaymentRecheckQueue:
    """The stage's re-check queue (``client`` makes the process's boto3 clients), or the in-memory one without."""
    if client is None:
        return InMemoryPaymentRechecks()
    settings.require("payment_recheck_queue_url")
    return SqsPaymentRechecks(
        client("sqs"), settings.payment_recheck_queue_url, client("dynamodb"), settings.payments_table
    )


def recheck_body(order_id: str, round: int) -> str:
    return json.dumps({"order_id": order_id, "round": round}, separators=(",", ":"))


class SqsPaymentRechecks:
    def __init__(self, sqs: Any, queue_url: str, dynamodb: Any, payments_table: str) -> None:
        self._sqs = sqs
        self._url = queue_url
        self._dynamodb = dynamodb
        self._table = payments_table

    def schedule(self, order_id: str, round: int, delay_seconds: int) -> None:
        self._sqs.send_message(
            QueueUrl=self._url,
            MessageBody=recheck_body(order_id, round),
            DelaySeconds=max(0, min(delay_seconds, MAX_QUEUE_DELAY_SECONDS)),
        )

    def claim(self, order_id: str, round: int, message_id: str) -> bool:
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key=string_key({"order_id": order_id}),
                UpdateExpression="SET recheck_round = :round, recheck_message = :message",
                ConditionExpression=_CLAIM,
                ExpressionAttributeValues=to_raw({":round": round, ":message": message_id}),
            )
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise
            return False
        return True

    def latest_round(self, order_id: str) -> int:
        item = self._dynamodb.get_item(
            TableName=self._table,
            Key=string_key({"order_id": order_id}),
            ProjectionExpression="recheck_round",
            ConsistentRead=True,  # a claim made just before must be seen
        ).get("Item", {})
        return int(item.get("recheck_round", {}).get("N", "0"))


class InMemoryPaymentRechecks:
    """The same contract in a dict; ``scheduled`` keeps what was sent, for tests to deliver."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claims: dict[str, tuple[int, str]] = {}
        self.scheduled: list[tuple[str, int, int]] = []

    def schedule(self, order_id: str, round: int, delay_seconds: int) -> None:
        with self._lock:
            self.scheduled.append((order_id, round, min(delay_seconds, MAX_QUEUE_DELAY_SECONDS)))

    def claim(self, order_id: str, round: int, message_id: str) -> bool:
        with self._lock:
            held = self._claims.get(order_id)
            if held is not None and (held[0] > round or (held[0] == round and held[1] != message_id)):
                return False
            self._claims[order_id] = (round, message_id)
            return True

    def latest_round(self, order_id: str) -> int:
        with self._lock:
            held = self._claims.get(order_id)
            return held[0] if held is not None else 0
