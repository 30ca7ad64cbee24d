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
- with X-Ray on (``ServiceTracing``), each request is a stage segment
  (``<app>/<api stage>``) that continues the request's ``X-Amzn-Trace-Id`` or
  starts a trace; the authorizer and the API function continue it, and the
  answer carries the header back.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any, TypeAlias

from chalice.app import Chalice, ChaliceAuthorizer, RouteEntry
from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    LocalChalice,
    LocalDevServer,
    LocalGatewayException,
    NotAuthorizedError,
)

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


class TracedRequestHandler(ChaliceRequestHandler):
    """Chalice's request handler inside an API Gateway stage segment (set ``tracing``/``api_name`` first)."""

    tracing: ServiceTracing | None = None
    api_name = ""
    api_stage = ""
    # http.server writes the headers and the body in two sends: with Nagle's algorithm on, the body
    # waits for the client's delayed ACK of the headers, 40 ms on every request of a kept-alive
    # connection (what httpx and browsers use). API Gateway answers without that stall.
    disable_nagle_algorithm = True

    def _generic_handle(self) -> None:
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
) -> LocalDevServer:
    """``chalice.local.create_local_server``, with the app object replaced by ``EmulatedApi``.

    As ``create_local_server`` does, the app becomes a ``LocalChalice`` (a thread-local
    ``current_request``: each request has its own thread), but through ``patches``: a class of its own
    rather than Chalice's shared ``CustomLocalChalice`` with its bases rewritten, and undone with
    ``patches`` so the app object is what it was once the stage stops.
    With ``tracing``, requests are traced as API Gateway does when the stage has X-Ray on.
    """
    if not isinstance(app, LocalChalice):
        patches.wrap("chalice", app, "__class__", _thread_local_requests)
    handler = type(
        "StageRequestHandler",
        (TracedRequestHandler,),
        {"tracing": tracing, "api_name": config.app_name, "api_stage": config.api_gateway_stage},
    )
    return LocalDevServer(EmulatedApi(app, emulator, api_function), config, host, port, handler_cls=handler)  # type: ignore[arg-type]


def _thread_local_requests(app_class: type[Chalice]) -> type[Chalice]:
    return type(f"Local{app_class.__name__}", (LocalChalice, app_class), {})
