"""Size quotas AWS enforces on the calls this app makes, where moto 5.2.5 lets them through.

Probed against moto 5.2.5 (docs/local-stage.md, "What the stage refuses as AWS does"): moto counts
an SQS or SNS message in characters and leaves its attributes out, checks no EventBridge or Step
Functions size, and its Lambda ``Invoke`` takes any request. ``AwsLimitsMiddleware`` sits in front of
moto and answers those requests as AWS does, in the request's protocol; the service and operation
are named as ``localstage.call_log`` names them.

- ``lambda:Invoke``: 6,291,456 bytes synchronous, 1 MB with ``InvocationType=Event`` (Invoke API
  reference; raised from 256 KB, AWS Compute Blog "More room to build: serverless services
  now support payloads up to 1 MB", 2026-01-29): 413 ``RequestEntityTooLargeException``;
- ``sqs:SendMessage``: the queue's ``MaximumMessageSize`` (at most 1 MiB), body and attributes in
  UTF-8 bytes (the SQS API model): 400 ``InvalidParameterValue``; ``SendMessageBatch``: 1 MiB for all
  entries together: 400 ``BatchRequestTooLong``;
- ``sns:Publish``: 262,144 bytes, message and attributes (SNS "Amazon SNS message attributes"):
  400 ``InvalidParameter``; ``PublishBatch``: the same for all entries: 400 ``BatchRequestTooLong``;
- ``events:PutEvents``: 1 MB for the request's entries, sized by "Calculating PutEvents event entry
  size": 400 ``ValidationException``;
- ``states:StartExecution``: ``input`` of 262,144 UTF-8 bytes (the Step Functions API model):
  400 ``ValidationException``.

The Lambda and API Gateway constants below also serve the emulator and the HTTP gateway, which do
not pass through this middleware (docs/local-stage.md lists what they still lack).
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import logging
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from io import BytesIO
from typing import Any
from urllib.parse import parse_qs

from localstage.call_log import operation_of, service_of
from localstage.patches import require

log = logging.getLogger("localstage.limits")

MiB = 1024 * 1024
LAMBDA_SYNC_REQUEST_BYTES = 6 * MiB  # "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
LAMBDA_EVENT_REQUEST_BYTES = MiB  # asynchronous (InvocationType=Event): 1 MB, raised from 256 KB (see above)
LAMBDA_RESPONSE_BYTES = 6 * MiB + 100  # "Response payload size exceeded maximum allowed payload size (6291556 bytes)."
API_GATEWAY_PAYLOAD_BYTES = 10 * MiB  # "HTTP content length exceeded 10485760 bytes."
SQS_MESSAGE_BYTES = MiB
SNS_MESSAGE_BYTES = 256 * 1024
EVENTS_ENTRIES_BYTES = MiB
STATES_INPUT_BYTES = 256 * 1024
_TIME_BYTES = 14  # a PutEvents entry's Time counts 14 bytes, whatever its form

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
QueueLimit = Callable[[str, str], int | None]  # (queue URL, region) -> MaximumMessageSize, None if no such queue


class LimitExceededError(Exception):
    """An AWS error answer: HTTP status, error code, message (and for SQS the query-compatible code)."""

    def __init__(self, status: int, code: str, message: str, query_code: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.query_code = query_code


@dataclass(frozen=True)
class Call:
    """One request to the embedded AWS, as far as a limit check needs it."""

    service: str
    operation: str
    region: str
    headers: Mapping[str, str]
    body: bytes
    content_length: int

    def json(self) -> dict[str, Any]:
        parsed = json.loads(self.body or b"{}")
        return parsed if isinstance(parsed, dict) else {}

    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(self.body.decode("utf-8", "replace")).items()}


def utf8_size(text: object) -> int:
    return len(str(text).encode("utf-8"))


def lambda_request_error(size: int, invocation_type: str) -> LimitExceededError | None:
    """Lambda's 413 for an ``Invoke`` payload over the quota of its invocation type (messages as Lambda writes them)."""
    if invocation_type == "Event" and size > LAMBDA_EVENT_REQUEST_BYTES:
        message = (
            f"{size} byte payload is too large for the Event invocation type (limit {LAMBDA_EVENT_REQUEST_BYTES} bytes)"
        )
        return LimitExceededError(413, "RequestEntityTooLargeException", message)
    if invocation_type != "Event" and size > LAMBDA_SYNC_REQUEST_BYTES:
        message = f"Request must be smaller than {LAMBDA_SYNC_REQUEST_BYTES} bytes for the InvokeFunction operation"
        return LimitExceededError(413, "RequestEntityTooLargeException", message)
    return None


def lambda_response_error(payload: bytes) -> dict[str, str] | None:
    """The runtime's error payload that replaces a response over Lambda's quota (``FunctionError: Unhandled``)."""
    if len(payload) <= LAMBDA_RESPONSE_BYTES:
        return None
    return {
        "errorMessage": f"Response payload size exceeded maximum allowed payload size ({LAMBDA_RESPONSE_BYTES} bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }


def api_gateway_request_refusal(content_length: int) -> tuple[int, dict[str, str], bytes] | None:
    """API Gateway's answer to a request body over 10 MB: 413 in plain text, before any invocation."""
    if content_length <= API_GATEWAY_PAYLOAD_BYTES:
        return None
    body = f"HTTP content length exceeded {API_GATEWAY_PAYLOAD_BYTES} bytes.".encode()
    return 413, {"Content-Type": "text; charset=utf-8"}, body


def _sqs_attributes_size(attributes: Mapping[str, Any]) -> int:
    """ "All parts of the message attribute, including Name, Type, and Value, are part of the message size"."""
    size = 0
    for name, value in attributes.items():
        size += utf8_size(name) + utf8_size(value.get("DataType", ""))
        if "StringValue" in value:
            size += utf8_size(value["StringValue"])
        if "BinaryValue" in value:
            size += _binary_size(value["BinaryValue"])
    return size


def _binary_size(encoded: object) -> int:
    try:
        return len(base64.b64decode(str(encoded), validate=True))
    except (binascii.Error, ValueError):
        return utf8_size(encoded)


def _sqs_message_size(entry: Mapping[str, Any]) -> int:
    return utf8_size(entry.get("MessageBody", "")) + _sqs_attributes_size(entry.get("MessageAttributes") or {})


def check_sqs_send_message(call: Call, queue_limit: QueueLimit) -> LimitExceededError | None:
    request = call.json()
    limit = queue_limit(str(request.get("QueueUrl", "")), call.region)
    if limit is None:
        return None  # moto answers for a queue it does not have
    if _sqs_message_size(request) > limit:
        message = f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes."
        return LimitExceededError(400, "InvalidParameterValue", message, "InvalidParameterValue")
    return None


def check_sqs_send_message_batch(call: Call, queue_limit: QueueLimit) -> LimitExceededError | None:
    size = sum(_sqs_message_size(entry) for entry in call.json().get("Entries") or [])
    if size > SQS_MESSAGE_BYTES:
        message = f"Batch requests cannot be longer than {SQS_MESSAGE_BYTES} bytes. You have sent {size} bytes."
        return LimitExceededError(400, "BatchRequestTooLong", message, "AWS.SimpleQueueService.BatchRequestTooLong")
    return None


def _sns_size(form: Mapping[str, str], prefix: str) -> int:
    """Message and attributes (``<prefix>MessageAttributes.entry.N.Name`` / ``.Value.DataType`` / ``...Value``)."""
    size = utf8_size(form.get(f"{prefix}Message", ""))
    attributes = re.compile(rf"^{re.escape(prefix)}MessageAttributes\.entry\.\d+\.(Name|Value\.(\w+))$")
    for key, value in form.items():
        found = attributes.match(key)
        if found is None:
            continue
        size += _binary_size(value) if found.group(2) == "BinaryValue" else utf8_size(value)
    return size


def check_sns_publish(call: Call) -> LimitExceededError | None:
    if _sns_size(call.form(), "") > SNS_MESSAGE_BYTES:
        return LimitExceededError(400, "InvalidParameter", "Invalid parameter: Message too long")
    return None


def check_sns_publish_batch(call: Call) -> LimitExceededError | None:
    form = call.form()
    entries = {m.group(1) for key in form if (m := re.match(r"^(PublishBatchRequestEntries\.member\.\d+\.)", key))}
    if sum(_sns_size(form, prefix) for prefix in entries) > SNS_MESSAGE_BYTES:
        message = "The length of all the messages put together is more than the limit."
        return LimitExceededError(400, "BatchRequestTooLong", message)
    return None


def put_events_entry_size(entry: Mapping[str, Any]) -> int:
    """EventBridge's own formula: Time 14 bytes; Source, DetailType, Detail and each Resource in UTF-8 bytes."""
    size = _TIME_BYTES if entry.get("Time") is not None else 0
    size += utf8_size(entry.get("Source", "")) + utf8_size(entry.get("DetailType", ""))
    size += utf8_size(entry["Detail"]) if entry.get("Detail") is not None else 0
    return size + sum(utf8_size(resource) for resource in entry.get("Resources") or [] if resource is not None)


def check_put_events(call: Call) -> LimitExceededError | None:
    if sum(put_events_entry_size(entry) for entry in call.json().get("Entries") or []) > EVENTS_ENTRIES_BYTES:
        return LimitExceededError(
            400, "ValidationException", "Total size of the entries in the request is over the limit."
        )
    return None


def check_start_execution(call: Call) -> LimitExceededError | None:
    if utf8_size(call.json().get("input", "")) > STATES_INPUT_BYTES:
        # AWS's standard message for a modelled length constraint; the value is left out as it is sensitive.
        message = (
            "1 validation error detected: Value at 'input' failed to satisfy constraint: "
            f"Member must have length less than or equal to {STATES_INPUT_BYTES}"
        )
        return LimitExceededError(400, "ValidationException", message)
    return None


def check_invoke(call: Call) -> LimitExceededError | None:
    invocation_type = call.headers.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
    return lambda_request_error(call.content_length, invocation_type)


def moto_queue_limit(queue_url: str, region: str) -> int | None:
    """The queue's ``MaximumMessageSize`` in moto (URL ``.../<account>/<name>``), ``None`` if there is no such queue."""
    from moto.sqs.models import sqs_backends

    parts = queue_url.rstrip("/").split("/")
    if len(parts) < 2:
        return None
    account, name = parts[-2], parts[-1]
    if account not in sqs_backends:
        return None
    queue = sqs_backends[account][region].queues.get(name)
    return None if queue is None else int(getattr(queue, "maximum_message_size"))  # noqa: B009 - set by moto at run time


class AwsLimitsMiddleware:
    """WSGI middleware: the quotas above, checked before moto sees the request."""

    def __init__(self, app: Wsgi, queue_limit: QueueLimit | None = None) -> None:
        self.app = app
        if queue_limit is None:
            require("moto")
        queue_limit = queue_limit or moto_queue_limit
        self._checks: dict[tuple[str, str], Callable[[Call], LimitExceededError | None]] = {
            ("lambda", "Invoke"): check_invoke,
            ("sqs", "SendMessage"): lambda call: check_sqs_send_message(call, queue_limit),
            ("sqs", "SendMessageBatch"): lambda call: check_sqs_send_message_batch(call, queue_limit),
            ("sns", "Publish"): check_sns_publish,
            ("sns", "PublishBatch"): check_sns_publish_batch,
            ("events", "PutEvents"): check_put_events,
            ("states", "StartExecution"): check_start_execution,
            ("states", "StartSyncExecution"): check_start_execution,
        }
        self._services = {service for service, _ in self._checks}
        self.refused: Counter[str] = Counter()  # by "service:Operation", for tests and operators
        self._lock = threading.Lock()

    @staticmethod
    def _operation(environ: Mapping[str, Any], body: bytes) -> str:
        """The operation as call_log names it; ``""`` for a query-protocol call whose body is not read yet."""
        content_type = str(environ.get("CONTENT_TYPE", ""))
        if not body and "x-www-form-urlencoded" in content_type:
            return ""
        method, path = str(environ.get("REQUEST_METHOD", "")), str(environ.get("PATH_INFO", ""))
        return _bare(operation_of(method, path, str(environ.get("HTTP_X_AMZ_TARGET", "")), content_type, body))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        authorization = str(environ.get("HTTP_AUTHORIZATION", ""))
        service = service_of(authorization)
        if service not in self._services:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        operation = self._operation(environ, b"")
        body = b""
        # Only a query-protocol call (SNS) needs its body to be named; Lambda is judged on its length alone,
        # so a 6 MB payload is not read to be refused.
        if service != "lambda" and length > 0 and ((service, operation) in self._checks or not operation):
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = BytesIO(body)  # moto reads it as if nothing had
            operation = self._operation(environ, body)
        check = self._checks.get((service, operation))
        if check is None:
            return self.app(environ, start_response)
        call = Call(service, operation, _region_of(authorization), _headers(environ), body, length)
        try:
            error = check(call)
        except (ValueError, TypeError, AttributeError):
            return self.app(environ, start_response)  # a request moto will refuse for its shape
        if error is None:
            return self.app(environ, start_response)
        if service == "lambda":
            _drain(environ, length)
        with self._lock:
            self.refused[f"{service}:{operation}"] += 1
        log.info("refused %s %s: %s %s", service, operation, error.code, error.message)
        status, headers, payload = error_response(error, environ)
        start_response(status, [*headers, ("Content-Length", str(len(payload)))])
        return [payload]


def error_response(error: LimitExceededError, environ: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """The error in the request's protocol: JSON (``X-Amz-Target``), query (form) or REST-JSON (Lambda)."""
    request_id = str(uuid.uuid4())
    status = f"{error.status} {HTTPStatus(error.status).phrase}"
    if environ.get("HTTP_X_AMZ_TARGET"):
        code = f"com.amazonaws.sqs#{error.code}" if error.query_code else error.code
        headers = [
            ("Content-Type", str(environ.get("CONTENT_TYPE") or "application/x-amz-json-1.0")),
            ("x-amzn-RequestId", request_id),
            ("X-Amzn-Errortype", code),
        ]
        if error.query_code:  # SQS is query-compatible: botocore takes the code from this header
            headers.append(("x-amzn-query-error", f"{error.query_code};Sender"))
        return status, headers, json.dumps({"__type": code, "message": error.message}).encode()
    if "x-www-form-urlencoded" in str(environ.get("CONTENT_TYPE", "")):
        xml = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{error.code}</Code><Message>{_xml_text(error.message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], xml.encode()
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", request_id),
        ("x-amzn-ErrorType", error.code),
    ]
    return status, headers, json.dumps({"Type": "User", "message": error.message}).encode()


def _bare(operation: str) -> str:
    """``TransactWriteItems[2]`` / ``PutEvents(src)`` as call_log qualifies them, back to the operation name."""
    return re.split(r"[\[(]", operation, maxsplit=1)[0]


def _region_of(authorization: str) -> str:
    found = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/", authorization)
    return found.group(1) if found else "us-east-1"


def _headers(environ: Mapping[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in environ.items() if key.startswith("HTTP_")}


def _xml_text(text: str) -> str:
    return html.escape(text, quote=False)


def _drain(environ: Mapping[str, Any], length: int) -> None:
    """Read a refused body to its end, in chunks, so a kept-alive connection stays in step."""
    stream = environ["wsgi.input"]
    while length > 0:
        chunk = stream.read(min(length, 64 * 1024))
        if not chunk:
            return
        length -= len(chunk)
