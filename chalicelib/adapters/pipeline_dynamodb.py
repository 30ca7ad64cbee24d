"""The order pipeline on DynamoDB: status moves and notifications on the Orders table.

Every write is conditional on what was read, so two steps racing on one order (a
redelivered message, a retried task, the workflow-status handler) cannot undo each
other: the loser re-reads and lets the domain's ``Order.transition`` decide again.
Orders are read with the order repository's own deserialiser, so the attribute
names stay the ones ``chalicelib.adapters.dynamodb`` writes.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.dynamodb import order_from
from chalicelib.adapters.dynamodb_codec import error_code, from_raw, string_key
from chalicelib.domain.errors import DependencyUnavailableError
from chalicelib.domain.ids import Clock, iso, utc_now
from chalicelib.domain.orders import FailureReason, Order, OrderStatus
from chalicelib.domain.pipeline import OrderNotFoundError

CONDITION_FAILED = "ConditionalCheckFailedException"
DEADLINE = "deadline_at"  # adapters/deadlines_dynamodb.py: the watchdog's index key
MAX_RACES = 5


class DynamoOrderProgress:
    def __init__(self, client: Any, orders_table: str, clock: Clock = utc_now) -> None:
        self._client = client
        self._table = orders_table
        self._clock = clock

    def get(self, order_id: str) -> Order | None:
        raw = self._client.get_item(TableName=self._table, Key=string_key({"order_id": order_id}), ConsistentRead=True)
        return order_from(from_raw(raw["Item"])) if "Item" in raw else None

    def _require(self, order_id: str) -> Order:
        order = self.get(order_id)
        if order is None:
            raise OrderNotFoundError(f"Order {order_id} not found")
        return order

    def advance(self, order_id: str, status: OrderStatus, failure_reason: FailureReason | None = None) -> Order:
        for _ in range(MAX_RACES):
            order = self._require(order_id)
            moved = order.transition(status, iso(self._clock()), failure_reason)
            if moved is order:
                return order
            values: dict[str, Any] = {
                ":from": {"S": order.status.value},
                ":to": {"S": moved.status.value},
                ":now": {"S": moved.updated_at},
            }
            expression = "SET #status = :to, updated_at = :now"
            if moved.failure_reason is not None:
                expression += ", failure_reason = :reason"
                values[":reason"] = {"S": moved.failure_reason.value}
            if moved.status in (OrderStatus.COMPLETED, OrderStatus.FAILED):
                # Finished by the workflow itself: the order leaves the watchdog's sparse index.
                expression += f" REMOVE {DEADLINE}"
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key=string_key({"order_id": order_id}),
                    UpdateExpression=expression,
                    ConditionExpression="#status = :from",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues=values,
                )
                return moved
            except ClientError as exc:
                if error_code(exc) != CONDITION_FAILED:
                    raise
        raise DependencyUnavailableError(f"Order {order_id} kept changing; try again")

    def record_notification(self, order_id: str, kind: str) -> bool:
        """Appends to the ``notifications`` list unless it already holds ``kind`` (one atomic update)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=string_key({"order_id": order_id}),
                UpdateExpression="SET notifications = list_append(if_not_exists(notifications, :empty), :kind)",
                ConditionExpression="attribute_exists(order_id) AND NOT contains(notifications, :name)",
                ExpressionAttributeValues={
                    ":empty": {"L": []},
                    ":kind": {"L": [{"S": kind}]},
                    ":name": {"S": kind},
                },
            )
            return True
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise
        self._require(order_id)
        return False
