"""Which ids an invocation carries: function, request id, and the order's correlation id.

The correlation id is born as the API request id of ``POST /orders`` (it is stored on the order)
and travels in every hand-off: the SQS message (attribute ``CorrelationId`` and body), the SNS
confirmation (attribute ``correlation_id``), EventBridge details, and the workflow's execution
input (``correlation_id``). Workflow tasks receive only ``order_id``; they learn the correlation
id when they read the order (``services.workflow.Pipeline``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalice.app import CloudWatchEvent, LambdaFunctionEvent, Request, SNSEvent, SQSEvent


@dataclass(frozen=True)
class InvocationIds:
    function: str
    request_id: str | None = None
    correlation_id: str | None = None
    order_id: str | None = None


def _json(text: Any) -> Mapping[str, Any]:
    if not isinstance(text, str):
        return text if isinstance(text, Mapping) else {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, Mapping) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def correlation_of_message(attributes: Mapping[str, Any], body: Any) -> str | None:
    """From an SQS/SNS message: the attribute, else the body's ``correlation_id``, else its EventBridge detail's."""
    for name in ("CorrelationId", "correlation_id"):
        attribute = attributes.get(name) or {}
        found = _str(attribute.get("stringValue") or attribute.get("StringValue") or attribute.get("Value"))
        if found:
            return found
    message = _json(body)
    return _str(message.get("correlation_id")) or _str(_json(message.get("detail")).get("correlation_id"))


def _context_ids(context: Any) -> tuple[str, str | None]:
    return str(getattr(context, "function_name", None) or "unknown"), _str(getattr(context, "aws_request_id", None))


def ids_of(event: Any) -> InvocationIds:
    """The ids of any event Chalice hands to an ``all`` middleware."""
    if isinstance(event, Request):
        function, _ = _context_ids(event.lambda_context)
        request_id = _str((event.context or {}).get("requestId"))
        return InvocationIds(function, request_id, request_id)
    function, request_id = _context_ids(getattr(event, "context", None))
    correlation: str | None = None
    order_id: str | None = None
    if isinstance(event, SQSEvent):
        ids = {correlation_of_message(r.get("messageAttributes") or {}, r.get("body")) for r in _records(event)}
        correlation = ids.pop() if len(ids) == 1 else None  # a mixed batch is bound per record instead
    elif isinstance(event, SNSEvent):
        sns = (_records(event) or [{}])[0].get("Sns", {})
        correlation = correlation_of_message(sns.get("MessageAttributes") or {}, sns.get("Message"))
    elif isinstance(event, CloudWatchEvent):
        detail = event.detail or {}
        correlation = _str(detail.get("correlation_id")) or _str(_json(detail.get("input")).get("correlation_id"))
        order_id = _str(_json(detail.get("input")).get("order_id"))
    elif isinstance(event, LambdaFunctionEvent):
        payload = event.event if isinstance(event.event, Mapping) else {}
        correlation = _str(payload.get("correlation_id"))
        order_id = _str(payload.get("order_id"))
    return InvocationIds(function, request_id, correlation or request_id, order_id)


def _records(event: Any) -> list[dict[str, Any]]:
    records = event.to_dict().get("Records")
    return records if isinstance(records, list) else []
