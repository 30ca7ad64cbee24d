"""The HTTP API through Chalice's local gateway, each request an invocation of the API function.

``chalice.local.LocalGateway`` turns an HTTP request into API Gateway's proxy
event, runs the route's authorizer and calls ``app_object(event, context)``.
Those two calls are the seams: ``EmulatedApi`` stands in for the app object,
so the request runs as an invocation of ``<app>-<stage>`` in the Lambda
emulator and each authorizer call as an invocation of ``<app>-<stage>-<name>``,
with START/END/REPORT lines and ``AWS/Lambda`` metrics, while routing, CORS
preflight, binary bodies and the HTTP answer stay Chalice's.

As API Gateway does:

- the authorizer's policy is cached per token for the authorizer's
  ``ttl_seconds`` (60 in app.py), so not every request invokes it (the cache and the 401 rule are
  ``localstage.apigateway.authorizer_results``, shared with the deployed APIs' data plane);
- an authorizer raising ``Exception("Unauthorized")`` is a 401, any other
  authorizer failure a 500 (``AuthorizerConfigurationException``);
- an API function error or timeout is a 502 ``{"message": "Internal server error"}``;
  a throttled invoke a 500. *Difference*: API Gateway's own 29 s integration
  timeout (504) is not modelled; the function's timeout applies.
- the authorizer's refusals, 401 (no token, or ``Unauthorized``) and 403 (a Deny), are the
  stage's gateway responses (``infra.gateway``, what both deploy paths configure): the API's error
  format with the request id in the body and in ``X-Request-Id``, and the stage's CORS origin;
- with a custom domain in the stage settings, the API answers under its base path (``/v1/...``)
  as well as at the root, as clients of a deployed stage call it;
- with X-Ray on (``ServiceTracing``), each request is a stage segment
  (``<app>/<api stage>``) that continues the request's ``X-Amzn-Trace-Id`` or
  starts a trace; the authorizer and the API function continue it, and the
  answer carries the header back.
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from typing import Any, TypeAlias

from chalice.app import Chalice, ChaliceAuthorizer, RouteEntry
from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    ForbiddenError,
    LocalChalice,
    LocalDevServer,
    LocalGatewayException,
    NotAuthorizedError,
)

from infra.gateway import GATEWAY_RESPONSES, REQUEST_ID_HEADER
from infra.stage_settings import load_stage_settings
from localstage.apigateway.authorizer_results import (
    DEFAULT_RESULT_TTL_SECONDS,
    PolicyCache,
    raised_unauthorized,
)
from localstage.aws_limits import LAMBDA_SYNC_REQUEST_BYTES, api_gateway_request_refusal
from localstage.lambda_model import InvocationResult, LambdaThrottledError
from localstage.lambdas import LambdaEmulator
from localstage.patches import Patches
from localstage.xray import HEADER, ServiceTracing, handing_on, upstream_header

AuthorizerCache: TypeAlias = PolicyCache[dict[str, Any]]  # (function, token) -> the authorizer's answer


class LambdaIntegrationError(LocalGatewayException):
    """The API function failed: API Gateway answers 502."""

    CODE = 502


class RequestTooLongError(LocalGatewayException):
    """The proxy event is over Lambda's synchronous invoke quota: API Gateway answers 413."""

    CODE = 413


class LambdaIntegrationThrottledError(LocalGatewayException):
    """The API function was throttled."""

    CODE = 500


def _gateway_headers(result: InvocationResult | None, error_type: str) -> dict[str, str]:
    return {"x-amzn-RequestId": result.request_id if result else "", "x-amzn-ErrorType": error_type}


class EmulatedAuthorizer(ChaliceAuthorizer):
    """A route's authorizer, run as its own Lambda function (it must stay a ``ChaliceAuthorizer`` for Chalice)."""

    def __init__(
        self, original: ChaliceAuthorizer, function_name: str, emulator: LambdaEmulator, cache: AuthorizerCache
    ) -> None:
        super().__init__(original.name, original.func, original.scopes)
        self.config = original.config
        self._function_name = function_name
        self._emulator = emulator
        self._cache = cache

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        key = (self._function_name, str(event.get("authorizationToken")))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        try:
            result = self._emulator.invoke(self._function_name, event, trace_header=upstream_header())
        except LambdaThrottledError:
            return None  # Chalice's gateway answers 500 AuthorizerConfigurationException, as API Gateway does
        if result.function_error:
            if raised_unauthorized(result.json()):
                raise NotAuthorizedError(
                    _gateway_headers(result, "UnauthorizedException"), b'{"message":"Unauthorized"}'
                )
            return None
        policy = result.json()
        configured = self.config.ttl_seconds if self.config else None
        ttl = DEFAULT_RESULT_TTL_SECONDS if configured is None else configured
        if isinstance(policy, dict):
            self._cache.put(key, ttl, policy)
        return policy


class EmulatedApi:
    """What ``LocalGateway`` needs of the app object (routes, api, call), with calls going through the emulator."""

    def __init__(self, app: Chalice, emulator: LambdaEmulator, api_function: str) -> None:
        self.api = app.api
        self._emulator = emulator
        self._api_function = api_function
        cache: AuthorizerCache = PolicyCache()
        self.routes: dict[str, dict[str, RouteEntry]] = {
            path: {method: self._route(entry, cache) for method, entry in methods.items()}
            for path, methods in app.routes.items()
        }

    def _route(self, entry: RouteEntry, cache: AuthorizerCache) -> RouteEntry:
        authorizer = entry.authorizer
        if not isinstance(authorizer, ChaliceAuthorizer):
            return entry
        routed = copy.copy(entry)
        name = f"{self._api_function}-{authorizer.name}"
        routed.authorizer = EmulatedAuthorizer(authorizer, name, self._emulator, cache)
        return routed

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if _event_size(event) > LAMBDA_SYNC_REQUEST_BYTES:
            # The proxy event (a body near 10 MB, base64 or escaped) is over Lambda's invoke quota.
            raise RequestTooLongError(_gateway_headers(None, "BadRequestException"), b'{"message": "Request Too Long"}')
        try:
            result = self._emulator.invoke(self._api_function, event, trace_header=upstream_header())
        except LambdaThrottledError:
            raise LambdaIntegrationThrottledError(
                _gateway_headers(None, "InternalServerErrorException"), b'{"message": "Internal server error"}'
            ) from None
        if result.function_error:
            raise LambdaIntegrationError(
                _gateway_headers(result, "InternalServerErrorException"), b'{"message": "Internal server error"}'
            )
        response: dict[str, Any] = json.loads(result.payload)
        response.setdefault("multiValueHeaders", {})
        return response


def _event_size(event: dict[str, Any]) -> int:
    """The proxy event's size as API Gateway sends it: Chalice's local gateway keeps a binary body as
    bytes, which API Gateway sends base64-encoded."""

    def encoded(value: Any) -> str:
        return base64.b64encode(value).decode() if isinstance(value, bytes | bytearray) else str(value)

    return len(json.dumps(event, default=encoded).encode())


_CONFIGURED_REFUSALS = {response.response_type: response for response in GATEWAY_RESPONSES}


def gateway_refusal(error: LocalGatewayException, cors_origin: str) -> tuple[int, dict[str, str], bytes] | None:
    """The stage's own gateway response to an authorizer refusal (401 or 403), or ``None`` for any other
    error (those keep API Gateway's default answers, as on a deployed stage)."""
    error_type = error.headers.get("x-amzn-ErrorType")
    if isinstance(error, NotAuthorizedError):
        response = _CONFIGURED_REFUSALS["UNAUTHORIZED"]
    elif isinstance(error, ForbiddenError) and error_type == "AccessDeniedException":
        response = _CONFIGURED_REFUSALS["ACCESS_DENIED"]
    else:
        return None
    request_id = error.headers.get("x-amzn-RequestId") or str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "x-amzn-RequestId": request_id,
        "x-amzn-ErrorType": str(error_type),
        "Access-Control-Allow-Origin": cors_origin,
        REQUEST_ID_HEADER: request_id,
    }
    body = response.body_template().replace("$context.requestId", request_id)
    return response.status, headers, body.encode()


class TracedRequestHandler(ChaliceRequestHandler):
    """Chalice's request handler inside an API Gateway stage segment (set ``tracing``/``api_name`` first)."""

    tracing: ServiceTracing | None = None
    api_name = ""
    api_stage = ""
    cors_origin = "*"  # the stage's CORS_ALLOW_ORIGIN, on the gateway's own refusals
    base_path = ""  # "/v1" with a custom domain: served there as well as at the root
    # http.server writes the headers and the body in two sends: with Nagle's algorithm on, the body
    # waits for the client's delayed ACK of the headers, 40 ms on every request of a kept-alive
    # connection (what httpx and browsers use). API Gateway answers without that stall.
    disable_nagle_algorithm = True

    def _generic_handle(self) -> None:
        path: str = str(self.path)  # type: ignore[has-type]  # set by http.server before this runs
        if self.base_path and (path == self.base_path or path.startswith((self.base_path + "/", self.base_path + "?"))):
            self.path = path[len(self.base_path) :] or "/"  # the base path mapping strips it, as deployed
        refusal = api_gateway_request_refusal(int(self.headers.get("Content-Length") or 0))
        if refusal is not None:  # API Gateway refuses a body over 10 MB before anything runs
            status, headers, body = refusal
            self.close_connection = True  # the unread body must not be taken for the next request
            super()._send_http_response(status, headers, body)
            return
        if self.tracing is None:
            super()._generic_handle()
            return
        self._span = self.tracing.begin(self.headers.get(HEADER))
        self._status = 500
        try:
            with handing_on(self._span.header):
                super()._generic_handle()
        finally:
            url = f"http://{self.headers.get('Host', '')}{self.path}"
            self.tracing.end_api(self._span, self.api_name, self.api_stage, self.command, url, self._status)

    # The base class binds its own _generic_handle to the verbs; bind ours.
    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

    def _send_error_response(self, error: LocalGatewayException) -> None:
        refusal = gateway_refusal(error, self.cors_origin)
        if refusal is None:
            super()._send_error_response(error)
        else:
            self._send_http_response(*refusal)

    def _send_http_response(self, code: int, headers: Any, body: Any) -> None:
        if self.tracing is not None:
            self._status = code
            headers = {**headers, HEADER: f"Root={self._span.trace_id};Sampled=1"}
        super()._send_http_response(code, headers, body)


def create_emulated_server(
    app: Chalice,
    config: Config,
    host: str,
    port: int,
    emulator: LambdaEmulator,
    api_function: str,
    patches: Patches,
    tracing: ServiceTracing | None = None,
    base_path: str | None = None,
) -> LocalDevServer:
    """``chalice.local.create_local_server``, with the app object replaced by ``EmulatedApi``.

    As ``create_local_server`` does, the app becomes a ``LocalChalice`` (a thread-local
    ``current_request``: each request has its own thread), but through ``patches``: a class of its own
    rather than Chalice's shared ``CustomLocalChalice`` with its bases rewritten, and undone with
    ``patches`` so the app object is what it was once the stage stops.
    With ``tracing``, requests are traced as API Gateway does when the stage has X-Ray on. With a
    ``base_path`` (``"/v1"``; default: the stage settings' custom domain's, if it has one), the API
    answers under it too, as behind a custom domain's base path mapping.
    """
    if base_path is None:
        domain = load_stage_settings(config.chalice_stage).domain
        base_path = f"/{domain.base_path}" if domain else ""
    if not isinstance(app, LocalChalice):
        patches.wrap("chalice", app, "__class__", _thread_local_requests)
    handler = type(
        "StageRequestHandler",
        (TracedRequestHandler,),
        {
            "tracing": tracing,
            "api_name": config.app_name,
            "api_stage": config.api_gateway_stage,
            "cors_origin": str((config.environment_variables or {}).get("CORS_ALLOW_ORIGIN", "*")),
            "base_path": base_path.rstrip("/"),
        },
    )
    return LocalDevServer(EmulatedApi(app, emulator, api_function), config, host, port, handler_cls=handler)  # type: ignore[arg-type]


def _thread_local_requests(app_class: type[Chalice]) -> type[Chalice]:
    return type(f"Local{app_class.__name__}", (LocalChalice, app_class), {})
