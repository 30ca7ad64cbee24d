"""Size quotas of the embedded AWS: how AWS sizes a message or an entry, and the answers over the quota."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Response

from localstage.aws_limits import (
    API_GATEWAY_PAYLOAD_BYTES,
    LAMBDA_RESPONSE_BYTES,
    AwsLimitsMiddleware,
    api_gateway_request_refusal,
    lambda_request_error,
    lambda_response_error,
    put_events_entry_size,
)

pytestmark = pytest.mark.unit

MiB = 1024 * 1024


def _moto(environ: dict[str, Any], start_response: Any) -> Any:
    return Response("moto answered")(environ, start_response)


def _client(queue_limit: int | None = MiB) -> Client:
    return Client(AwsLimitsMiddleware(_moto, queue_limit=lambda url, region: queue_limit))


def _signed(service: str, **headers: str) -> dict[str, str]:
    credential = f"AWS4-HMAC-SHA256 Credential=testing/20261201/us-east-1/{service}/aws4_request, Signature=x"
    return {"Authorization": credential, **headers}


def _json_call(service: str, target: str, request: dict[str, Any]) -> Any:
    headers = _signed(service, **{"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0"})
    return _client().post("/", headers=headers, data=json.dumps(request))


def test_given_a_put_events_entry_when_sized_then_awss_formula() -> None:
    entry = {"Source": "shop", "DetailType": "Order", "Detail": '{"é": 1}', "Resources": ["arn:a"], "Time": 0}

    # Time 14 + "shop" 4 + "Order" 5 + Detail 9 (é is 2 bytes) + "arn:a" 5; EventBusName is not counted.
    assert put_events_entry_size({**entry, "EventBusName": "bus"}) == 14 + 4 + 5 + 9 + 5


def test_given_lambda_payload_sizes_when_checked_then_the_quota_of_each_invocation_type() -> None:
    sync = lambda_request_error(6 * MiB + 1, "RequestResponse")
    event = lambda_request_error(MiB + 1, "Event")

    assert sync is not None and (sync.status, sync.code) == (413, "RequestEntityTooLargeException")
    assert sync.message == "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    assert event is not None and event.message == (
        "1048577 byte payload is too large for the Event invocation type (limit 1048576 bytes)"
    )
    assert lambda_request_error(6 * MiB, "RequestResponse") is None
    assert lambda_request_error(MiB, "Event") is None


def test_given_a_function_response_over_6_mb_when_checked_then_the_runtimes_error_payload() -> None:
    assert lambda_response_error(b"x" * LAMBDA_RESPONSE_BYTES) is None
    assert lambda_response_error(b"x" * (LAMBDA_RESPONSE_BYTES + 1)) == {
        "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }


def test_given_an_http_api_body_over_10_mb_when_checked_then_api_gateways_413_text() -> None:
    assert api_gateway_request_refusal(API_GATEWAY_PAYLOAD_BYTES) is None
    assert api_gateway_request_refusal(API_GATEWAY_PAYLOAD_BYTES + 1) == (
        413,
        {"Content-Type": "text; charset=utf-8"},
        b"HTTP content length exceeded 10485760 bytes.",
    )


def test_given_an_sqs_message_counted_in_bytes_with_attributes_when_over_then_400_query_compatible() -> None:
    request = {
        "QueueUrl": "http://aws/123456789012/q",
        "MessageBody": "é" * (MiB // 2 - 4),  # 2 bytes each: 8 bytes under the quota
        "MessageAttributes": {"a": {"DataType": "String", "StringValue": "yyyy"}},  # 1 + 6 + 4 = 11 bytes
    }

    answer = _json_call("sqs", "AmazonSQS.SendMessage", request)

    assert answer.status_code == 400
    assert answer.headers["x-amzn-query-error"] == "InvalidParameterValue;Sender"
    assert json.loads(answer.data) == {
        "__type": "com.amazonaws.sqs#InvalidParameterValue",
        "message": "One or more parameters are invalid. Reason: Message must be shorter than 1048576 bytes.",
    }
    shorter = {**request, "MessageAttributes": {"a": {"DataType": "String", "StringValue": "y"}}}
    assert _json_call("sqs", "AmazonSQS.SendMessage", shorter).data == b"moto answered"


def test_given_an_sns_publish_over_256_kib_with_attributes_when_sent_then_400_query_protocol_error() -> None:
    form = {
        "Action": "Publish",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
        "Message": "x" * (256 * 1024 - 10),
        "MessageAttributes.entry.1.Name": "attr",
        "MessageAttributes.entry.1.Value.DataType": "String",
        "MessageAttributes.entry.1.Value.StringValue": "y",
    }
    headers = _signed("sns", **{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})

    answer = _client().post("/", headers=headers, data=urlencode(form))
    under = _client().post("/", headers=headers, data=urlencode({**form, "MessageAttributes.entry.1.Name": "a"}))

    assert answer.status_code == 400
    assert b"<Code>InvalidParameter</Code><Message>Invalid parameter: Message too long</Message>" in answer.data
    assert under.data == b"moto answered"  # 256 KiB - 10 + 1 + 6 + 1 bytes


def test_given_calls_the_middleware_does_not_check_when_sent_then_moto_answers_untouched() -> None:
    unsigned = _client().post("/", data="x" * (2 * MiB))
    dynamodb = _json_call("dynamodb", "DynamoDB_20120810.PutItem", {"TableName": "t", "Item": {}})
    queue_missing = Client(AwsLimitsMiddleware(_moto, queue_limit=lambda url, region: None)).post(
        "/",
        headers=_signed(
            "sqs", **{"X-Amz-Target": "AmazonSQS.SendMessage", "Content-Type": "application/x-amz-json-1.0"}
        ),
        data=json.dumps({"QueueUrl": "http://aws/123456789012/gone", "MessageBody": "x" * (2 * MiB)}),
    )

    assert unsigned.data == dynamodb.data == queue_missing.data == b"moto answered"
