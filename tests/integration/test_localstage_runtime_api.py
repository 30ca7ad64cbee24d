"""The Runtime API as a runtime sees it: one environment's server, driven over loopback HTTP like awslambdaric."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from localstage.runtime.api import MAX_RESPONSE_BYTES, PREFIX, Invocation, RuntimeApi

pytestmark = pytest.mark.integration


@pytest.fixture
def api() -> Iterator[RuntimeApi]:
    served = RuntimeApi(threading.Condition()).start()
    yield served
    served.close()


def request(api: RuntimeApi, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Any:
    connection = http.client.HTTPConnection(api.address, timeout=5)
    connection.request(method, path, body, headers or {})
    response = connection.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def next_invocation(api: RuntimeApi, invocation: Invocation) -> tuple[int, dict[str, str], bytes]:
    """``GET /next`` from a thread (it waits), then the invocation offered: what the runtime receives."""
    got: list[Any] = []
    waiting = threading.Thread(target=lambda: got.append(request(api, "GET", f"{PREFIX}/invocation/next")))
    waiting.start()
    with api._changed:
        api._changed.wait_for(lambda: api.first_next_at is not None, timeout=5)
    api.offer(invocation)
    waiting.join(5)
    return got[0]  # type: ignore[no-any-return]


INVOCATION = Invocation("req-1", b'{"n": 1}', 1_900_000_000_000, "arn:aws:lambda:us-east-1:123456789012:function:f")


def test_given_an_offered_invocation_then_next_hands_it_over_with_lambdas_headers(api: RuntimeApi) -> None:
    status, headers, body = next_invocation(api, INVOCATION)

    assert status == 200 and json.loads(body) == {"n": 1}
    assert headers["Lambda-Runtime-Aws-Request-Id"] == "req-1"
    assert headers["Lambda-Runtime-Deadline-Ms"] == "1900000000000"
    assert headers["Lambda-Runtime-Invoked-Function-Arn"] == INVOCATION.function_arn
    assert api.answer("req-1") is None


def test_given_a_response_then_it_is_kept_once_and_a_second_or_unknown_one_is_refused(api: RuntimeApi) -> None:
    next_invocation(api, INVOCATION)

    accepted = request(api, "POST", f"{PREFIX}/invocation/req-1/response", b'"done"')
    again = request(api, "POST", f"{PREFIX}/invocation/req-1/response", b'"twice"')
    unknown = request(api, "POST", f"{PREFIX}/invocation/other/response", b'"who"')

    assert accepted[0] == 202
    assert again[0] == 400 and unknown[0] == 400 and json.loads(unknown[2])["errorType"] == "InvalidRequestID"
    answer = api.answer("req-1")
    assert answer is not None and answer.body == b'"done"' and answer.error_type is None


def test_given_an_error_then_its_type_header_and_payload_are_kept(api: RuntimeApi) -> None:
    next_invocation(api, INVOCATION)
    payload = {"errorMessage": "bad", "errorType": "ValueError", "stackTrace": []}

    status, _, _ = request(
        api,
        "POST",
        f"{PREFIX}/invocation/req-1/error",
        json.dumps(payload).encode(),
        {"Lambda-Runtime-Function-Error-Type": "ValueError"},
    )

    answer = api.answer("req-1")
    assert status == 202 and answer is not None and answer.error_type == "ValueError"
    assert answer.error_payload() == payload and not answer.fatal


def test_given_a_response_over_6_mb_then_413_and_the_caller_gets_response_size_too_large(api: RuntimeApi) -> None:
    next_invocation(api, INVOCATION)

    status, _, _ = request(api, "POST", f"{PREFIX}/invocation/req-1/response", b"x" * (MAX_RESPONSE_BYTES + 1))

    answer = api.answer("req-1")
    assert status == 413 and answer is not None and answer.fatal
    assert answer.error_payload()["errorType"] == "Function.ResponseSizeTooLarge"


def test_given_a_chunked_response_then_its_body_is_reassembled(api: RuntimeApi) -> None:
    next_invocation(api, INVOCATION)
    connection = http.client.HTTPConnection(api.address, timeout=5)

    connection.request("POST", f"{PREFIX}/invocation/req-1/response", iter([b'{"a": ', b"1}"]), encode_chunked=True)

    assert connection.getresponse().status == 202
    answer = api.answer("req-1")
    assert answer is not None and answer.body == b'{"a": 1}'


def test_given_an_init_error_then_it_is_kept_as_fatal(api: RuntimeApi) -> None:
    body = b'{"errorMessage": "Unable to import module \'app\'", "errorType": "Runtime.ImportModuleError"}'

    status, _, _ = request(
        api, "POST", f"{PREFIX}/init/error", body, {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"}
    )

    assert status == 202 and api.init_error is not None and api.init_error.fatal
    assert api.init_error.error_payload()["errorType"] == "Runtime.ImportModuleError"


def test_given_a_waiting_next_when_the_environment_closes_then_it_is_released(api: RuntimeApi) -> None:
    got: list[Any] = []
    waiting = threading.Thread(target=lambda: got.append(request(api, "GET", f"{PREFIX}/invocation/next")))
    waiting.start()
    with api._changed:
        api._changed.wait_for(lambda: api.first_next_at is not None, timeout=5)

    api.close()

    waiting.join(5)
    assert not waiting.is_alive() and got and got[0][0] == 500
