"""The embedded AWS's throttling switch: errors each SDK parser reads as throttling, only on early attempts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.retries.standard import ThrottledRetryableChecker
from werkzeug.test import Client
from werkzeug.wrappers import Response

from localstage.aws_throttle import ThrottleConfigError, ThrottlePlan, ThrottlingMiddleware

pytestmark = pytest.mark.unit

THROTTLING_CODES = set(ThrottledRetryableChecker._THROTTLED_ERROR_CODES)


def _moto(environ: dict[str, Any], start_response: Any) -> Any:
    return Response("moto answered")(environ, start_response)


def _signed(service: str, attempt: int = 1, **headers: str) -> dict[str, str]:
    credential = f"AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, Signature=x"
    return {"Authorization": credential, "amz-sdk-request": f"attempt={attempt}; max=4", **headers}


def _client(rate: float = 1.0, services: str = "") -> Client:
    chosen = frozenset(services.split(",")) if services else frozenset()
    middleware = ThrottlingMiddleware(_moto, ThrottlePlan(rate, chosen))
    middleware.activate()
    return Client(middleware)


def test_given_a_json_protocol_request_when_throttled_then_400_throttling_exception() -> None:
    answer = _client().post("/", headers=_signed("dynamodb", **{"X-Amz-Target": "DynamoDB_20120810.GetItem"}))
    assert answer.status_code == 400 and json.loads(answer.data)["__type"] in THROTTLING_CODES


def test_given_a_query_protocol_request_when_throttled_then_400_xml_throttling() -> None:
    headers = _signed("sns", **{"Content-Type": "application/x-www-form-urlencoded"})
    answer = _client().post("/", headers=headers, data="Action=Publish")
    assert answer.status_code == 400 and b"<Code>Throttling</Code>" in answer.data


def test_given_s3_and_rest_json_requests_when_throttled_then_slowdown_and_429() -> None:
    assert _client().put("/bucket/key", headers=_signed("s3")).status_code == 503
    lam = _client().post("/2015-03-31/functions/f/invocations", headers=_signed("lambda"))
    assert lam.status_code == 429 and lam.headers["x-amzn-ErrorType"] in THROTTLING_CODES


def test_given_a_third_attempt_or_an_unsigned_or_unlisted_request_then_moto_answers() -> None:
    assert _client().post("/", headers=_signed("dynamodb", attempt=3)).data == b"moto answered"
    assert _client().get("/moto-api/data.json").data == b"moto answered"
    assert _client(services="sns").post("/", headers=_signed("dynamodb")).data == b"moto answered"


def test_given_an_inactive_switch_then_nothing_is_throttled() -> None:
    middleware = ThrottlingMiddleware(_moto, ThrottlePlan(1.0))
    assert Client(middleware).post("/", headers=_signed("dynamodb")).data == b"moto answered"


@pytest.mark.parametrize("rate", ["-0.1", "2", "lots"])
def test_given_a_malformed_rate_then_refused(rate: str) -> None:
    with pytest.raises(ThrottleConfigError):
        ThrottlePlan.from_env({"LOCAL_AWS_THROTTLE_RATE": rate})
