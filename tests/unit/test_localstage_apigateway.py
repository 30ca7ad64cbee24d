"""The data plane's rules one at a time: routing, throttling, the authorizer cache, gateway responses,
the Swagger reader and the Lambda proxy answer. No moto, no network; a fake clock where time matters."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from localstage.apigateway.authorizer_results import PolicyCache
from localstage.apigateway.deployments import DeployedGatewayResponse, Integration, IntegrationResponse
from localstage.apigateway.gateway_responses import (
    GatewayError,
    access_denied,
    bad_integration_answer,
    render,
    unauthorized,
)
from localstage.apigateway.integrations import mock_answer, proxy_answer
from localstage.apigateway.lambda_invoke import Invoked
from localstage.apigateway.routing import RouteTable
from localstage.apigateway.swagger import SwaggerImportError, read_swagger
from localstage.apigateway.throttling import StageThrottle
from localstage.apigateway.wire import IncomingRequest

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _request(headers: tuple[tuple[str, str], ...] = ()) -> IncomingRequest:
    return IncomingRequest("GET", "/x", headers, (), b"", "127.0.0.1", "HTTP/1.1", "localhost")


def _variables(request_id: str = "req-1") -> dict[str, Any]:
    return {"context": {"requestId": request_id, "stage": "api"}, "stageVariables": {}}


# -- routing --------------------------------------------------------------------------------------


def test_given_literal_variable_and_greedy_siblings_then_the_most_specific_matches_and_a_dead_end_backtracks() -> None:
    table = RouteTable(
        [
            ("/", "root"),
            ("/items/new", "new"),
            ("/items/{id}", "item"),
            ("/items/{id}/tags", "tags"),
            ("/{proxy+}", "proxy"),
        ]
    )
    assert table.match("/") == ("root", {})
    assert table.match("/items/new") == ("new", {})
    assert table.match("/items/42") == ("item", {"id": "42"})
    assert table.match("/items/42/") == ("item", {"id": "42"})  # a trailing slash is ignored
    assert table.match("/items/new/tags") == ("tags", {"id": "new"})  # the literal "new" leads nowhere: backtrack
    assert table.match("/a/b/c") == ("proxy", {"proxy": "a/b/c"})


def test_given_no_greedy_resource_then_an_unmatched_path_matches_nothing() -> None:
    table = RouteTable([("/items/{id}", "item")])
    assert table.match("/items") is None
    assert table.match("/items/1/2") is None


# -- throttling and the authorizer cache -----------------------------------------------------------


def test_given_a_burst_of_two_when_three_requests_arrive_at_once_then_the_third_waits_for_the_refill() -> None:
    clock = FakeClock()
    throttle = StageThrottle(clock)
    settings = {"*/*": {"throttlingRateLimit": 1.0, "throttlingBurstLimit": 2}}
    admitted = [throttle.admit("api", "dev", settings, "/items", "GET") for _ in range(3)]
    assert admitted == [True, True, False]
    clock.now += 1.0  # THEN one token back after a second at 1 rps
    assert throttle.admit("api", "dev", settings, "/items", "GET")
    assert throttle.admit("api", "dev", {}, "/items", "GET")  # THEN a stage without throttling admits all


def test_given_a_method_setting_then_that_method_has_its_own_bucket() -> None:
    throttle = StageThrottle(FakeClock())
    settings = {
        "*/*": {"throttlingRateLimit": 0.0, "throttlingBurstLimit": 0},
        "~1items/GET": {"throttlingRateLimit": 0.0, "throttlingBurstLimit": 1},
    }
    assert throttle.admit("api", "dev", settings, "/items", "GET")
    assert not throttle.admit("api", "dev", settings, "/items", "POST")  # THEN the stage-wide limit (0) applies


def test_given_a_cached_answer_then_it_lives_for_its_ttl_and_a_ttl_of_zero_caches_nothing() -> None:
    clock = FakeClock()
    cache: PolicyCache[str] = PolicyCache(clock)
    cache.put(("api", "token"), 10, "allowed")
    cache.put(("api", "other"), 0, "never kept")
    clock.now += 9
    assert (cache.get(("api", "token")), cache.get(("api", "other"))) == ("allowed", None)
    clock.now += 2
    assert cache.get(("api", "token")) is None


# -- gateway responses ------------------------------------------------------------------------------


def test_given_no_gateway_responses_then_api_gateways_default_answers() -> None:
    answer = render(unauthorized(), {}, _request(), {}, _variables())
    assert (answer.status, answer.body) == (401, b'{"message":"Unauthorized"}')
    assert answer.header("x-amzn-ErrorType") == "UnauthorizedException"
    failed = render(bad_integration_answer(), {}, _request(), {}, _variables())
    assert (failed.status, failed.body) == (502, b'{"message": "Internal server error"}')


def test_given_a_default_4xx_response_then_a_4xx_type_without_its_own_uses_it_and_one_with_its_own_does_not() -> None:
    configured = {
        "DEFAULT_4XX": DeployedGatewayResponse(
            "400",
            {
                "gatewayresponse.header.Access-Control-Allow-Origin": "'*'",
                "gatewayresponse.header.X-Token": "method.request.header.Authorization",
            },
            {
                "application/json": '{"type":"$context.error.responseType","id":"$context.requestId","m":$context.error.messageString}'
            },
        ),
        "UNAUTHORIZED": DeployedGatewayResponse("401", {}, {"application/json": '{"own":true}'}),
    }
    request = _request((("Authorization", "abc"),))
    denied = render(access_denied(explicit_deny=True), configured, request, {}, _variables("r-9"))
    assert denied.status == 400
    assert json.loads(denied.body) == {
        "type": "ACCESS_DENIED",
        "id": "r-9",
        "m": "User is not authorized to access this resource with an explicit deny",
    }
    assert (denied.header("Access-Control-Allow-Origin"), denied.header("X-Token")) == ("*", "abc")
    own = render(unauthorized(), configured, request, {}, _variables())
    assert (own.status, own.body, own.header("Access-Control-Allow-Origin")) == (401, b'{"own":true}', None)


# -- the Swagger reader -------------------------------------------------------------------------------


def _document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "swagger": "2.0",
        "info": {"title": "t", "version": "1.0"},
        "paths": {
            "/any": {"x-amazon-apigateway-any-method": {"security": [{"auth": []}], "responses": {}}},
        },
        "securityDefinitions": {
            "auth": {
                "in": "header",
                "type": "apiKey",
                "name": "X-Token",
                "x-amazon-apigateway-authtype": "custom",
                "x-amazon-apigateway-authorizer": {"type": "token", "authorizerUri": "arn:aws:apigateway:x"},
            }
        },
    }
    document.update(changes)
    return document


def test_given_a_token_authorizer_without_identity_source_or_ttl_then_api_gateways_defaults() -> None:
    plan = read_swagger(_document())
    authorizer = plan.authorizers["auth"]
    assert (authorizer.type, authorizer.identity_source, authorizer.result_ttl_s) == (
        "TOKEN",
        "method.request.header.X-Token",
        300,
    )
    (method,) = plan.paths["/any"]
    assert (method.http_method, method.authorization_type, method.authorizer) == ("ANY", "CUSTOM", "auth")


def test_given_a_security_requirement_naming_no_definition_then_the_import_is_refused() -> None:
    document = _document(securityDefinitions={})
    with pytest.raises(SwaggerImportError, match="ANY /any: security requirement 'auth' names no securityDefinition"):
        read_swagger(document)


# -- the Lambda proxy answer and the mock ----------------------------------------------------------------


def _answer(payload: Any, accept: str | None = None) -> Any:
    headers = (("Accept", accept),) if accept else ()
    return proxy_answer(Invoked(json.dumps(payload).encode(), None), _request(headers), ("application/octet-stream",))


def test_given_a_malformed_proxy_answer_then_502() -> None:
    for malformed in ({"statusCode": 200, "extra": 1}, {"statusCode": 200, "body": {"a": 1}}, ["not", "an", "object"]):
        with pytest.raises(GatewayError) as refused:
            _answer(malformed)
        assert (refused.value.status, refused.value.response_type) == (502, "DEFAULT_5XX")


def test_given_headers_and_multi_value_headers_of_one_name_then_the_multi_values_win() -> None:
    answer = _answer(
        {
            "statusCode": 201,
            "headers": {"Set-Cookie": "a", "X-One": "1"},
            "multiValueHeaders": {"set-cookie": ["b", "c"]},
        }
    )
    assert answer.status == 201
    assert [v for k, v in answer.headers if k.lower() == "set-cookie"] == ["b", "c"]
    assert answer.header("Content-Type") == "application/json"  # THEN API Gateway's default type


def test_given_a_base64_answer_then_it_is_decoded_only_for_a_client_accepting_a_binary_type() -> None:
    payload = {"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}
    assert _answer(payload, accept="application/octet-stream").body == b"\x00\x01"
    assert _answer(payload, accept="application/json").body == base64.b64encode(b"\x00\x01")


def test_given_a_mock_request_template_that_is_not_plain_json_then_500_instead_of_a_guess() -> None:
    integration = Integration(
        "MOCK", None, None, None, {"application/json": "#set($x = 1){}"}, (IntegrationResponse("200", None, {}, {}),)
    )
    with pytest.raises(GatewayError) as refused:
        mock_answer(integration, _request(), {}, _variables())
    assert (refused.value.status, refused.value.response_type) == (500, "API_CONFIGURATION_ERROR")
