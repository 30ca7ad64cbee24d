"""Deadlines of orders in flight on the Orders table, found through the sparse ``DeadlineIndex``.

``DeadlineIndex`` is keyed on ``status`` (hash) and ``deadline_at`` (range, epoch seconds) and
projects keys only. It is sparse on ``deadline_at``: only orders carrying a deadline are in it, and a
terminal move by the workflow removes the attribute (``DynamoOrderProgress.advance``), so the index
holds the orders in flight and the few the watchdog still owes a compensation, not the order history.
The watchdog's query is ``status = PROCESSING AND deadline_at <= now``: it reads only late orders,
however many are in flight or finished (a table scan would read them all, every few minutes).

The index is eventually consistent, so every decision is a conditional write on the table itself:
``claim`` moves an order to ``FAILED`` only if it is still ``PROCESSING`` and past its deadline.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.dynamodb_codec import error_code, string_key
from chalicelib.adapters.pipeline_dynamodb import CONDITION_FAILED, DEADLINE
from chalicelib.domain.deadlines import OverdueOrder
from chalicelib.domain.ids import Clock, iso, utc_now
from chalicelib.domain.orders import FailureReason, OrderStatus

DEADLINE_INDEX = "DeadlineIndex"  # infra/template.py defines it on OrdersTable


class DynamoOrderDeadlines:
    def __init__(self, client: Any, orders_table: str, clock: Clock = utc_now) -> None:
        self._client = client
        self._table = orders_table
        self._clock = clock

    def _conditional_update(self, order_id: str, **request: Any) -> bool:
        try:
            self._client.update_item(TableName=self._table, Key=string_key({"order_id": order_id}), **request)
            return True
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise
            return False

    def extend(self, order_id: str, deadline: int) -> bool:
        return self._conditional_update(
            order_id,
            UpdateExpression=f"SET {DEADLINE} = :deadline",
            ConditionExpression=(
                f"#status = :processing AND (attribute_not_exists({DEADLINE}) OR {DEADLINE} < :deadline)"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":deadline": {"N": str(deadline)},
                ":processing": {"S": OrderStatus.PROCESSING.value},
            },
        )

    def _query(self, status: OrderStatus, limit: int, before: int | None) -> list[OverdueOrder]:
        condition = "#status = :status" + (f" AND {DEADLINE} <= :now" if before is not None else "")
        values: dict[str, Any] = {":status": {"S": status.value}}
        if before is not None:
            values[":now"] = {"N": str(before)}
        found: list[OverdueOrder] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": DEADLINE_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": values,
        }
        while len(found) < limit:
            page = self._client.query(**request, Limit=limit - len(found))
            found += [
                OverdueOrder(item["order_id"]["S"], status.value, int(item[DEADLINE]["N"])) for item in page["Items"]
            ]
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return found

    def overdue(self, now: int, limit: int) -> list[OverdueOrder]:
        late = self._query(OrderStatus.PROCESSING, limit, before=now)
        return late + self._query(OrderStatus.FAILED, limit - len(late), before=None) if len(late) < limit else late

    def claim(self, order_id: str, now: int) -> bool:
        return self._conditional_update(
            order_id,
            UpdateExpression="SET #status = :failed, failure_reason = :reason, updated_at = :at",
            ConditionExpression=f"#status = :processing AND {DEADLINE} <= :now",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":failed": {"S": OrderStatus.FAILED.value},
                ":reason": {"S": FailureReason.WORKFLOW_FAILED.value},
                ":at": {"S": iso(self._clock())},
                ":processing": {"S": OrderStatus.PROCESSING.value},
                ":now": {"N": str(now)},
            },
        )

    def settle(self, order_id: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=string_key({"order_id": order_id}),
            UpdateExpression=f"REMOVE {DEADLINE}",
            ConditionExpression="attribute_exists(order_id)",
        )
