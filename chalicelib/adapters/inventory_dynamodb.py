"""Stock holds on DynamoDB: one ``TransactWriteItems`` per hold, release or commit.

A hold decrements every line's ``stock`` on the condition ``stock >= :q`` and marks
``inventory_hold`` on the order on the condition that it has none, all in one
transaction: stock never goes negative, however many orders race for it, and a
retried step finds the mark and changes nothing. DynamoDB cancels a transaction
that collides with another one in flight (``TransactionConflict``); those are
retried here with jittered back-off, as the SDK does not retry them itself.
"""

from __future__ import annotations

import random
import time
from typing import Any, Callable

from botocore.exceptions import ClientError

from chalicelib.adapters.dynamodb_codec import error_code, string_key
from chalicelib.domain.errors import DependencyUnavailableError
from chalicelib.domain.orders import Order
from chalicelib.domain.pipeline import HoldStatus, InsufficientInventory, OrderNotFoundError

CANCELLED = "TransactionCanceledException"
CONFLICT_ATTEMPTS = 8
_UNMARKED = "attribute_exists(order_id) AND attribute_not_exists(inventory_hold)"


def _reasons(exc: ClientError) -> list[str]:
    return [str(reason.get("Code", "None")) for reason in exc.response.get("CancellationReasons", [])]


class DynamoInventory:
    def __init__(
        self, client: Any, products_table: str, orders_table: str, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._client = client
        self._products = products_table
        self._orders = orders_table
        self._sleep = sleep

    def _stock_change(self, product_id: str, quantity: int, sign: str, guard: bool) -> dict[str, Any]:
        update: dict[str, Any] = {
            "TableName": self._products,
            "Key": string_key({"product_id": product_id}),
            "UpdateExpression": f"SET stock = stock {sign} :q",
            "ExpressionAttributeValues": {":q": {"N": str(quantity)}},
        }
        if guard:
            update["ConditionExpression"] = "attribute_exists(product_id) AND stock >= :q"
        return {"Update": update}

    def _mark(self, order_id: str, to: HoldStatus, condition: str, values: dict[str, Any]) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._orders,
                "Key": string_key({"order_id": order_id}),
                "UpdateExpression": "SET inventory_hold = :to",
                "ConditionExpression": condition,
                "ExpressionAttributeValues": {":to": {"S": to.value}, **values},
            }
        }

    def _transact(self, items: list[dict[str, Any]]) -> list[str] | None:
        """``None`` when written; the cancellation reasons when a condition failed."""
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                self._client.transact_write_items(TransactItems=items)
                return None
            except ClientError as exc:
                if error_code(exc) != CANCELLED:
                    raise
                reasons = _reasons(exc)
                if "ConditionalCheckFailed" in reasons or "TransactionConflict" not in reasons:
                    return reasons
            self._sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter, not cryptography  # nosec B311
        raise DependencyUnavailableError("Stock is in high demand; try again")

    def hold(self, order: Order) -> HoldStatus:
        items = [self._stock_change(line.product_id, line.quantity, "-", guard=True) for line in order.items]
        items.append(
            self._mark(
                order.order_id,
                HoldStatus.HELD,
                _UNMARKED,
                {},
            )
        )
        reasons = self._transact(items)
        if reasons is None:
            return HoldStatus.HELD
        if reasons[-1] == "ConditionalCheckFailed":
            existing = self.hold_status(order.order_id)
            if existing is None:
                raise OrderNotFoundError(f"Order {order.order_id} not found")
            return existing
        short = [
            line.product_id
            for line, code in zip(order.items, reasons, strict=False)
            if code == "ConditionalCheckFailed"
        ]
        raise InsufficientInventory(f"Not enough stock for {', '.join(short) or 'the order'}")

    def commit(self, order_id: str) -> HoldStatus:
        try:
            self._client.update_item(
                TableName=self._orders,
                Key=string_key({"order_id": order_id}),
                UpdateExpression="SET inventory_hold = :to",
                ConditionExpression="inventory_hold IN (:held, :to)",
                ExpressionAttributeValues={
                    ":to": {"S": HoldStatus.COMMITTED.value},
                    ":held": {"S": HoldStatus.HELD.value},
                },
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise InsufficientInventory(f"Order {order_id} has no stock on hold to commit") from exc
            raise
        return HoldStatus.COMMITTED

    def release(self, order: Order, include_committed: bool = False) -> HoldStatus | None:
        condition = "inventory_hold IN (:held, :committed)" if include_committed else "inventory_hold = :held"
        values = {":held": {"S": HoldStatus.HELD.value}}
        if include_committed:
            values[":committed"] = {"S": HoldStatus.COMMITTED.value}
        items = [self._stock_change(line.product_id, line.quantity, "+", guard=False) for line in order.items]
        items.append(self._mark(order.order_id, HoldStatus.RELEASED, condition, values))
        if self._transact(items) is None:
            return HoldStatus.RELEASED
        status = self.hold_status(order.order_id)
        if status is not None:
            return status
        # Nothing held yet: mark it released, so a hold still in flight is refused.
        try:
            self._client.transact_write_items(
                TransactItems=[self._mark(order.order_id, HoldStatus.RELEASED, _UNMARKED, {})]
            )
        except ClientError as exc:
            if error_code(exc) != CANCELLED:
                raise
        return self.hold_status(order.order_id)

    def hold_status(self, order_id: str) -> HoldStatus | None:
        raw = self._client.get_item(
            TableName=self._orders,
            Key=string_key({"order_id": order_id}),
            ProjectionExpression="inventory_hold",
            ConsistentRead=True,
        ).get("Item", {})
        return HoldStatus(raw["inventory_hold"]["S"]) if "inventory_hold" in raw else None

    def stock(self, product_id: str) -> int | None:
        raw = self._client.get_item(
            TableName=self._products, Key=string_key({"product_id": product_id}), ConsistentRead=True
        ).get("Item")
        return None if raw is None else int(raw["stock"]["N"])
