"""The one stage client (runbooks/stage_client.py) against a scripted API: what it sends, what it raises."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from runbooks.stage_client import (
    ADDRESS,
    OrderNotSettledError,
    StageClient,
    StageRequestError,
    aws_client,
    order_body,
)

pytestmark = pytest.mark.unit

Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler, sent: list[httpx.Request]) -> StageClient:
    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return handler(request)

    return StageClient(httpx.Client(base_url="http://stage.test", transport=httpx.MockTransport(record)))


def test_given_a_new_customer_when_registered_then_created_then_logged_in_and_the_bearer_header_kept() -> None:
    sent: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/users":
            return httpx.Response(201, json={"user_id": "usr_1"})
        return httpx.Response(200, json={"access_token": "tok-1"})

    customer = client_for(api, sent).register("buyer")

    assert [(r.method, r.url.path) for r in sent] == [("POST", "/users"), ("POST", "/auth/login")]
    assert json.loads(sent[0].content)["email"] == customer.email and customer.email.startswith("buyer-")
    assert customer.headers == {"Authorization": "Bearer tok-1"} and customer.access_token == "tok-1"


def test_given_a_refused_request_when_expected_to_succeed_then_the_error_names_the_request_and_answer() -> None:
    sent: list[httpx.Request] = []
    client = client_for(lambda _: httpx.Response(403, json={"error": "forbidden"}), sent)

    with pytest.raises(StageRequestError) as caught:
        client.create_product({"Authorization": "Bearer x"}, price=3, stock=1)

    assert str(caught.value).startswith("POST /products answered 403, expected 201: ")
    assert "forbidden" in str(caught.value) and caught.value.status == 403


def test_given_an_idempotency_key_when_placing_then_it_is_sent_and_without_one_no_header() -> None:
    sent: list[httpx.Request] = []
    client = client_for(lambda _: httpx.Response(201, json={"order_id": "ord_1"}), sent)
    buyer = {"Authorization": "Bearer b"}

    assert client.place_order(buyer, order_body("prod_1", 2, "tok_declined"), "key-1") == "ord_1"
    client.post_order(buyer, order_body("prod_1"))

    assert sent[0].headers["Idempotency-Key"] == "key-1" and "Idempotency-Key" not in sent[1].headers
    assert json.loads(sent[0].content) == {
        "items": [{"product_id": "prod_1", "quantity": 2}],
        "shipping_address": ADDRESS,
        "payment_method": {"type": "card", "token": "tok_declined"},
    }


def test_given_an_order_that_completes_on_the_third_poll_when_waiting_then_it_returns_that_order() -> None:
    sent: list[httpx.Request] = []
    statuses = iter([(404, {}), (200, {"status": "PENDING"}), (200, {"status": "COMPLETED", "order_id": "o"})])

    def api(_: httpx.Request) -> httpx.Response:
        code, body = next(statuses)
        return httpx.Response(code, json=body)

    order = client_for(api, sent).wait_for_order({}, "o", timeout_s=5, poll_s=0)

    assert order["status"] == "COMPLETED" and len(sent) == 3


def test_given_an_order_never_terminal_when_waiting_then_not_settled_after_the_bound() -> None:
    sent: list[httpx.Request] = []
    client = client_for(lambda _: httpx.Response(200, json={"status": "PENDING"}), sent)

    with pytest.raises(OrderNotSettledError, match=r"order o still PENDING after 0\.05 s"):
        client.wait_for_order({}, "o", timeout_s=0.05, poll_s=0.01)


def test_given_a_server_error_while_waiting_then_it_is_raised_naming_the_request() -> None:
    sent: list[httpx.Request] = []
    client = client_for(lambda _: httpx.Response(500, json={"error": "internal"}), sent)

    with pytest.raises(StageRequestError, match="GET /orders/o answered 500"):
        client.wait_for_order({}, "o", timeout_s=5, poll_s=0)


def test_given_an_endpoint_and_credentials_when_making_a_client_then_both_are_used() -> None:
    sqs = aws_client(
        "http://127.0.0.1:4599", "sqs", credentials={"aws_access_key_id": "k", "aws_secret_access_key": "s"}
    )

    assert sqs.meta.endpoint_url == "http://127.0.0.1:4599" and sqs.meta.region_name == "us-east-1"
    assert sqs._request_signer._credentials.access_key == "k"
