"""A realistic payload for the function being tuned, when the operator gives none.

Tuning measures what a function does with its real input: the authorizer with a ``TOKEN`` event, the
order queue's consumer with an SQS batch that names a real order, a workflow task with the input the
state machine gives it. A payload the function cannot handle (the authorizer's event sent to
``process_order``) measures only the failure path, so the run would fail every invocation.

Only functions that can take the same input again without changing anything a customer sees get a
default: ``process_order`` on a finished order starts nothing (the execution is named after the
order), and ``process_payment``/``check_payment_status`` answer a finished order's kept charge (one
charge per order). Other tasks move an order or compensate it (a refund): tuning them needs a payload,
and an order, the operator chose (``payloads=[{"payload": {...}}]``).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

from runbooks.params import ParameterError

APP = "ecommerce-backend"
TOKEN_EVENT = {
    "type": "TOKEN",
    "authorizationToken": "Bearer not-a-valid-token",
    "methodArn": "arn:aws:execute-api:us-east-1:123456789012:api/api/GET/orders",
}
REPEATABLE_TASKS = ("process_payment", "check_payment_status")
BATCH_SIZE = 10  # process_order's batch size (app.py)


def handler_of(function: str, stage: str) -> str:
    """``ecommerce-backend-local-process_order`` -> ``process_order``."""
    prefix = f"{APP}-{stage}-"
    return function[len(prefix) :] if function.startswith(prefix) else function


def latest_finished_order(ddb: Any, stage: str, status: str = "COMPLETED", max_pages: int = 20) -> dict[str, Any]:
    """The newest order in ``status`` (a bounded scan: a few pages of the orders table)."""
    table = f"{APP}-orders-{stage}"
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "#s = :s",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":s": {"S": status}},
    }
    for _ in range(max_pages):
        page = ddb.scan(**kwargs)
        found += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    if not found:
        raise ParameterError(
            f"no {status} order in {table} to build a realistic payload from: place one first "
            "(see the README's walkthrough) or pass payloads"
        )
    newest = max(found, key=lambda item: item.get("created_at", {}).get("S", ""))
    return {key: next(iter(value.values())) for key, value in newest.items()}


def sqs_event(bodies: list[str], queue_arn: str, region: str) -> dict[str, Any]:
    """Lambda's SQS event for ``bodies``, every field a handler may read, as the event source mapping sends it."""
    now = str(int(time.time() * 1000))
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": f"tuning-{index}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": now,
                    "SenderId": "runbook-memory-tuning",
                    "ApproximateFirstReceiveTimestamp": now,
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for index, body in enumerate(bodies)
        ]
    }


def default_payloads(function: str, stage: str, region: str, account: str, ddb: Any) -> list[dict[str, Any]]:
    """``[{"payload": ..., "weight": 1}]`` for ``function``; ``ParameterError`` when it has no safe default."""
    handler = handler_of(function, stage)
    if handler == "jwt_auth":
        return [{"payload": TOKEN_EVENT, "weight": 1}]
    if handler == "process_order":
        order = latest_finished_order(ddb, stage)
        body = json.dumps({"order_id": order["order_id"]})
        queue = f"arn:aws:sqs:{region}:{account}:{APP}-order-processing-{stage}"
        return [{"payload": sqs_event([body], queue, region), "weight": 1}]
    if handler in REPEATABLE_TASKS:
        order = latest_finished_order(ddb, stage)
        task_input = {
            "order_id": order["order_id"],
            "correlation_id": order.get("correlation_id") or order["order_id"],
            "payment_wait_seconds": 1,
        }
        return [{"payload": task_input, "weight": 1}]
    raise ParameterError(
        f"no default payload for {function!r}: its input changes an order or is not known here; "
        "pass payloads=[{'payload': {...}, 'weight': 1}] with an input and an order you can spare"
    )
