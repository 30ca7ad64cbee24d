"""HTTP requests through Chalice's local gateway run as invocations of the API and authorizer functions.
A toy Chalice app (not the real one) against the embedded AWS on a free port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from chalice import Chalice
from chalice.app import AuthRequest, AuthResponse
from chalice.config import Config
from chalice.local import LocalChalice

from localstage.http_gateway import create_emulated_server
from localstage.lambdas import LambdaEmulator
from localstage.patches import Patches
from localstage.server import free_port
from localstage.testing import Harness, emulated

pytestmark = pytest.mark.integration

app = Chalice(app_name="toyh")
ORIGIN = "https://shop.example.com"
authorizer_calls: list[str] = []


@app.authorizer(ttl_seconds=300)
def token_auth(auth_request: AuthRequest) -> AuthResponse:
    authorizer_calls.append(auth_request.token)
    if auth_request.token == "explode":
        raise Exception("Unauthorized")
    allowed = ["*"] if auth_request.token.startswith("good") else []
    return AuthResponse(routes=allowed, principal_id="user-1")


@app.route("/public")
def public() -> dict[str, Any]:
    return {"hello": "world", "function": app.lambda_context.function_name}


@app.route("/private", authorizer=token_auth)
def private() -> dict[str, Any]:
    return {"principal": app.current_request.context["authorizer"]["principalId"]}


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[str, Harness]]:
    with emulated(app) as harness, Patches() as patches:
        port = free_port()
        config = Config.create(environment_variables={"CORS_ALLOW_ORIGIN": ORIGIN})
        server = create_emulated_server(
            app, config, "127.0.0.1", port, harness.emulator, "toyh-local", patches, base_path="/v1"
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{port}", harness
        finally:
            server.shutdown()


def test_given_the_emulated_server_then_each_thread_has_its_own_request_until_undone() -> None:
    # GIVEN a Chalice app as create_emulated_server leaves it
    toy = Chalice(app_name="threads")
    with Patches() as patches:
        emulator = LambdaEmulator(measure_memory=False)
        server = create_emulated_server(toy, Config(), "127.0.0.1", free_port(), emulator, "threads-local", patches)
        server.server.server_close()
        # WHEN one thread sets the current request
        toy.current_request = "main"  # type: ignore[assignment]
        seen: list[object] = []
        other = threading.Thread(target=lambda: seen.append(getattr(toy, "current_request", None)))
        other.start()
        other.join()
        # THEN another thread does not see it: concurrent requests cannot read each other's
        assert seen == [None] and toy.current_request == "main"
        assert isinstance(toy, LocalChalice)
    # AND undone, the app is a plain Chalice again
    assert type(toy) is Chalice


def _reports(harness: Harness, function: str) -> list[str]:
    events = harness.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{function}")["events"]
    return [e["message"] for e in events if e["message"].startswith("REPORT RequestId:")]


def _invocations(harness: Harness, function: str) -> float:
    now = datetime.now(UTC)
    points = harness.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName="Invocations",
        Dimensions=[{"Name": "FunctionName", "Value": function}],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
        Period=300,
        Statistics=["Sum"],
    )["Datapoints"]
    return sum(p["Sum"] for p in points)


def test_given_a_request_then_it_runs_as_an_invocation_of_the_api_function(api: tuple[str, Harness]) -> None:
    url, harness = api
    before = len(_reports(harness, "toyh-local"))
    response = httpx.get(f"{url}/public", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"hello": "world", "function": "toyh-local"}
    assert len(_reports(harness, "toyh-local")) == before + 1
    assert _invocations(harness, "toyh-local") >= 1


def test_given_an_authorized_route_then_the_authorizer_is_an_invocation_and_its_policy_is_cached(
    api: tuple[str, Harness],
) -> None:
    url, harness = api
    authorizer_calls.clear()
    first = httpx.get(f"{url}/private", headers={"Authorization": "good-1"}, timeout=10)
    second = httpx.get(f"{url}/private", headers={"Authorization": "good-1"}, timeout=10)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json() == {"principal": "user-1"}
    assert authorizer_calls == ["good-1"]  # API Gateway's cache: ttl_seconds=300 per token
    assert _reports(harness, "toyh-local-token_auth")
    assert _invocations(harness, "toyh-local-token_auth") >= 1


def _refusal(response: httpx.Response, status: int, code: str, message: str) -> None:
    """The stage's gateway response (infra.gateway): the API's error format, CORS and the request id."""
    request_id = response.headers["X-Request-Id"]
    assert response.status_code == status
    assert response.json() == {"error": code, "message": message, "details": [], "request_id": request_id}
    assert request_id and response.headers["x-amzn-RequestId"] == request_id
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_given_a_denying_or_raising_authorizer_then_api_gateway_answers_403_or_401_in_the_api_format(
    api: tuple[str, Harness],
) -> None:
    # GIVEN an authorizer that denies "bad" and raises Unauthorized for "explode", and a request without a token
    url, _ = api
    # WHEN each calls the protected route
    denied = httpx.get(f"{url}/private", headers={"Authorization": "bad"}, timeout=10)
    raised = httpx.get(f"{url}/private", headers={"Authorization": "explode"}, timeout=10)
    missing = httpx.get(f"{url}/private", timeout=10)
    # THEN each is the stage's own gateway response, which a browser on the stage's origin can read
    _refusal(denied, 403, "forbidden", "The token was refused")
    _refusal(raised, 401, "unauthorized", "A valid bearer token is required")
    _refusal(missing, 401, "unauthorized", "A valid bearer token is required")
    assert len({denied.headers["X-Request-Id"], raised.headers["X-Request-Id"], missing.headers["X-Request-Id"]}) == 3


def test_given_a_custom_domain_base_path_then_the_api_answers_under_it_and_at_the_root(
    api: tuple[str, Harness],
) -> None:
    # GIVEN the server started with base path /v1 (a stage with a custom domain)
    url, _ = api
    # WHEN a route is called with and without it
    under, root = httpx.get(f"{url}/v1/public", timeout=10), httpx.get(f"{url}/public", timeout=10)
    # THEN both reach the route, the base path stripped as API Gateway's mapping does
    assert (under.status_code, root.status_code) == (200, 200) and under.json() == root.json()
    assert httpx.get(f"{url}/v1public", timeout=10).status_code == 403  # only the whole segment is the base path


def test_given_an_unknown_route_then_the_gateway_answers_without_invoking(api: tuple[str, Harness]) -> None:
    url, harness = api
    before = len(_reports(harness, "toyh-local"))
    assert httpx.get(f"{url}/nowhere", timeout=10).status_code == 403
    assert len(_reports(harness, "toyh-local")) == before


def test_given_a_body_over_10_mb_then_api_gateway_answers_413_before_any_invocation(api: tuple[str, Harness]) -> None:
    url, harness = api
    before = len(_reports(harness, "toyh-local"))
    answer = httpx.post(f"{url}/public", content=b"x" * (10 * 1024 * 1024 + 1), timeout=30)
    assert answer.status_code == 413
    assert answer.text == "HTTP content length exceeded 10485760 bytes."
    assert len(_reports(harness, "toyh-local")) == before


def test_given_a_body_under_10_mb_but_an_event_over_lambdas_6_mb_then_413_request_too_long(
    api: tuple[str, Harness],
) -> None:
    url, harness = api
    before = len(_reports(harness, "toyh-local"))
    answer = httpx.post(f"{url}/public", content=b"\x00\xff" * (3_500_000), timeout=30)  # binary: base64 grows it
    assert answer.status_code == 413
    assert answer.json() == {"message": "Request Too Long"}
    assert len(_reports(harness, "toyh-local")) == before
