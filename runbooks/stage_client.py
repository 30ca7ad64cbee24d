"""The one client of a running stage: what the e2e tests, the benchmarks and the runbooks send it.

Logging in, registering customers, creating products as an admin, placing orders with an
``Idempotency-Key``, polling an order to a terminal status, and boto3 clients for the stage's AWS
endpoint. A request that answers otherwise than expected raises ``StageRequestError`` naming the
request (``POST /orders answered 400: ...``), so a failing test, benchmark or runbook says which
call went wrong rather than failing later on a missing key.

Why here, in ``runbooks/``: operators run the runbooks against a deployed stage as well as the local
one, so the client cannot live under ``tests/``; it talks HTTP and boto3 from outside the functions,
so it is never deployed and stays out of ``chalicelib/``. ``runbooks/`` is already importable from the
notebooks' kernels, linted and type-checked; ``bench`` and ``tests/e2e`` import it from here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
from botocore.config import Config

TERMINAL = frozenset({"COMPLETED", "FAILED"})
ADDRESS = {"name": "Ada", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
PASSWORD = "Sup3r-secret"  # a throwaway customer's password on a test stage, not a secret
REGION = "us-east-1"
# The embedded AWS's own placeholder key (localstage.server.FAKE_CREDENTIALS): not a secret.
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
AWS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=60)

Headers = dict[str, str]


class StageRequestError(RuntimeError):
    """A request to the stage answered otherwise than expected; the message names the request."""

    def __init__(self, answer: httpx.Response, expected: int) -> None:
        self.status = answer.status_code
        request = answer.request
        super().__init__(
            f"{request.method} {request.url.path} answered {answer.status_code}, expected {expected}: "
            f"{answer.text[:300]}"
        )


class OrderNotSettledError(RuntimeError):
    """An order did not reach COMPLETED or FAILED within the bound."""


def order_body(
    product_id: str,
    quantity: int = 1,
    token: str = "tok_success",  # noqa: S107  (a payment sandbox's card token, not a password)
    address: Mapping[str, str] = ADDRESS,
) -> dict[str, Any]:
    """A valid ``POST /orders`` body: one line, the shipping address, a sandbox card token."""
    return {
        "items": [{"product_id": product_id, "quantity": quantity}],
        "shipping_address": dict(address),
        "payment_method": {"type": "card", "token": token},
    }


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


def bearer(access_token: str) -> Headers:
    return {"Authorization": f"Bearer {access_token}"}


@dataclass(frozen=True)
class Customer:
    """A registered customer and the headers of its session."""

    email: str
    password: str
    headers: Headers

    @property
    def access_token(self) -> str:
        return self.headers["Authorization"].removeprefix("Bearer ")


@dataclass
class StageClient:
    """HTTP calls to one stage's API (``api_url``), each checked against the status it must answer."""

    http: httpx.Client

    @classmethod
    def open(cls, api_url: str, *, timeout_s: float = 15.0, max_connections: int | None = None) -> StageClient:
        limits = (
            httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
            if max_connections
            else httpx.Limits()
        )
        return cls(httpx.Client(base_url=api_url, timeout=timeout_s, limits=limits))

    def __enter__(self) -> StageClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    @staticmethod
    def expect(answer: httpx.Response, status: int) -> dict[str, Any]:
        """The JSON body of ``answer`` if it has ``status``; otherwise ``StageRequestError`` naming the request."""
        if answer.status_code != status:
            raise StageRequestError(answer, status)
        return dict(answer.json())

    def login(self, email: str, password: str) -> Headers:
        """``POST /auth/login``: the session's ``Authorization`` header."""
        answer = self.http.post("/auth/login", json={"email": email, "password": password})
        return bearer(str(self.expect(answer, 200)["access_token"]))

    def register(self, prefix: str = "buyer", password: str = PASSWORD, name: str = "Buyer") -> Customer:
        """``POST /users`` for a fresh e-mail address, then log it in."""
        email = f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"
        self.expect(self.http.post("/users", json={"email": email, "password": password, "name": name}), 201)
        return Customer(email, password, self.login(email, password))

    def create_product(
        self, admin: Headers, *, price: float = 10.0, stock: int = 10, category: str = "e2e", name: str = ""
    ) -> str:
        """``POST /products`` as an admin; the new product's id."""
        body = {"name": name or f"E2E {uuid.uuid4().hex[:6]}", "category": category, "price": price, "stock": stock}
        return str(self.expect(self.http.post("/products", json=body, headers=admin), 201)["product_id"])

    def product(self, product_id: str) -> dict[str, Any]:
        return self.expect(self.http.get(f"/products/{product_id}"), 200)

    def post_order(
        self, customer: Headers, body: Mapping[str, Any], idempotency_key: str | None = None
    ) -> httpx.Response:
        """``POST /orders``, with an ``Idempotency-Key`` header when one is given; the answer unchecked."""
        headers = {**customer, "Idempotency-Key": idempotency_key} if idempotency_key else dict(customer)
        return self.http.post("/orders", json=dict(body), headers=headers)

    def place_order(self, customer: Headers, body: Mapping[str, Any], idempotency_key: str | None = None) -> str:
        """``POST /orders``, which must answer 201; the order's id."""
        return str(self.expect(self.post_order(customer, body, idempotency_key), 201)["order_id"])

    def order(self, customer: Headers, order_id: str) -> tuple[int, dict[str, Any]]:
        """``GET /orders/{id}``: the status code, and the order when it is 200 (else an empty dict)."""
        answer = self.http.get(f"/orders/{order_id}", headers=customer)
        return answer.status_code, (dict(answer.json()) if answer.status_code == 200 else {})

    def _order_or_not_yet(self, customer: Headers, order_id: str) -> dict[str, Any]:
        answer = self.http.get(f"/orders/{order_id}", headers=customer)
        if answer.status_code == 404:  # not visible yet is not an error while waiting; another status is
            return {}
        return self.expect(answer, 200)

    def wait_for_order(
        self,
        customer: Headers,
        order_id: str,
        *,
        timeout_s: float = 45.0,
        poll_s: float = 0.3,
        done: Callable[[dict[str, Any]], bool] = lambda order: order.get("status") in TERMINAL,
    ) -> dict[str, Any]:
        """Poll ``GET /orders/{id}`` until ``done`` (by default: COMPLETED or FAILED), at most ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        order: dict[str, Any] = {}
        while True:
            order = self._order_or_not_yet(customer, order_id)
            if order and done(order):
                return order
            if time.monotonic() >= deadline:
                raise OrderNotSettledError(f"order {order_id} still {order.get('status')} after {timeout_s} s")
            time.sleep(poll_s)


def aws_client(
    aws_endpoint_url: str, service: str, *, region: str = REGION, credentials: Mapping[str, str] | None = None
) -> Any:
    """A boto3 client for the stage's AWS: the embedded one at ``aws_endpoint_url``, or AWS when it is empty.

    ``credentials`` (``LOCAL_CREDENTIALS`` on the local stage) are used as given; without them boto3
    finds the operator's own (profile, SSO, environment), as against a deployed stage.
    """
    session = boto3.session.Session(region_name=region, **dict(credentials or {}))
    return session.client(service, endpoint_url=aws_endpoint_url or None, config=AWS_CONFIG)
