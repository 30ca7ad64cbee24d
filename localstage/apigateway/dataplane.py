"""The data plane of REST APIs deployed to the embedded AWS: WSGI middleware in front of moto.

``http://<aws endpoint>/restapis/<api id>/<stage>/_user_request_/<path>`` (LocalStack's convention,
which ``scripts/deploy.py``'s ``invoke_url`` names) is answered as API Gateway answers
``https://<api id>.execute-api.<region>.amazonaws.com/<stage>/<path>``; every other request goes on
to moto, which serves no such path (an unsigned ``/restapis/...`` request reaches its S3 as a bucket
``restapis``: 404 ``NoSuchBucket``).

In API Gateway's order: the body quota (10 MB: 413); the API (404, a local answer: on AWS the host
would not resolve) and the stage (403 ``{"message":"Forbidden"}``); the route in the stage's
deployment (``routing``; none, or no method: 403 ``MISSING_AUTHENTICATION_TOKEN``); an API with a
resource policy is refused (403 ``ACCESS_DENIED``: resource policies are not evaluated); stage throttling
(``throttling``: 429); the method's authorizer (``authorizers``: 401/403/500); the API key
(``api_keys``: 403); the integration (``integrations``: Lambda proxy through ``lambda_invoke``, or
mock). A refusal is the API's deployed gateway response (``gateway_responses``). Every answer
carries ``x-amzn-RequestId``, the ``requestContext.requestId`` the function sees.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from localstage.apigateway import gateway_responses as responses
from localstage.apigateway.api_keys import key_allows
from localstage.apigateway.authorizers import Authorized, AuthorizerCall, TokenAuthorizers
from localstage.apigateway.deployments import DeployedMethod, DeployedResource, Integration, deployed_for
from localstage.apigateway.exchange import Exchange, forwarded_headers
from localstage.apigateway.integrations import mock_answer, proxy_answer, proxy_event
from localstage.apigateway.lambda_invoke import (
    InvokeThrottledError,
    LambdaInvokeError,
    function_arn,
    invoke,
    is_lambda_uri,
)
from localstage.apigateway.throttling import StageThrottle
from localstage.apigateway.wire import Answer, IncomingRequest, drain
from localstage.aws_limits import api_gateway_request_refusal
from localstage.patches import require
from localstage.xray import HEADER, new_trace_id

if TYPE_CHECKING:
    from moto.apigateway.models import RestAPI

log = logging.getLogger("localstage.apigateway")

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
USER_REQUEST = re.compile(r"^/restapis/(?P<api>[^/]+)/(?P<stage>[^/]+)/_user_request_(?P<path>/.*)?$")


class ApiGatewayDataPlane:
    """WSGI middleware: serves deployed REST APIs' stages, passes everything else to ``app``."""

    def __init__(self, app: Wsgi, clock: Callable[[], float] = time.monotonic) -> None:
        require("moto")  # reads moto's API Gateway and Lambda backends, written for WRITTEN_FOR["moto"]
        self.app = app
        self.throttle = StageThrottle(clock)
        self.authorizers = TokenAuthorizers(clock=clock)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        found = USER_REQUEST.match(str(environ.get("PATH_INFO", "")))
        if found is None:
            return self.app(environ, start_response)
        answer = self.serve(found["api"], found["stage"], found["path"] or "/", environ)
        start_response(answer.status_line(), [*answer.headers, ("Content-Length", str(len(answer.body)))])
        return [answer.body]

    def serve(self, api_id: str, stage_name: str, path: str, environ: Mapping[str, Any]) -> Answer:
        request_id = str(uuid.uuid4())
        too_large = _too_large(int(environ.get("CONTENT_LENGTH") or 0), request_id)
        if too_large is not None:
            drain(environ)
            return too_large
        api = _find_api(api_id)
        stage = api.stages.get(stage_name) if api is not None else None
        if api is None or stage is None:
            drain(environ)
            return _unknown(api_id, stage_name, request_id, api is None)
        request = IncomingRequest.from_environ(environ, path)
        too_large = _too_large(len(request.body), request_id)  # a chunked body has no Content-Length to check first
        if too_large is not None:
            return too_large
        trace = request.header(HEADER) or f"Root={new_trace_id()}"
        exchange = Exchange(deployed_for(api, stage), stage, request, request_id, trace)
        try:
            answer = self._serve(exchange, str(environ.get("SERVER_PORT", "")))
        except responses.GatewayError as error:
            log.info("%s %s %s -> %s %s", api_id, request.method, request.path, error.status, error.response_type)
            answer = responses.render(
                error, exchange.deployed.gateway_responses, request, exchange.path_parameters, exchange.variables
            )
        except Exception:  # a fault of the emulator itself: API Gateway's 500, and the traceback in the log
            log.exception("%s %s %s: the data plane failed", api_id, request.method, request.path)
            answer = Answer(500, [("Content-Type", "application/json")], responses.INTERNAL_SERVER_ERROR_BODY)
        answer.headers += [("x-amzn-RequestId", request_id), ("x-amz-apigw-id", exchange.extended_id), (HEADER, trace)]
        return answer

    def _serve(self, exchange: Exchange, port: str) -> Answer:
        resource, method = exchange.route()
        if exchange.deployed.policy:
            # API Gateway would evaluate the resource policy with the authorizer's answer; the local
            # stage does not, and refuses rather than serve what the policy might deny.
            log.warning("%s has a resource policy, which the local stage does not evaluate: 403", exchange.api_id)
            raise responses.access_denied(explicit_deny=False)
        stage = exchange.stage
        if not self.throttle.admit(
            exchange.api_id, exchange.stage_name, stage.method_settings, resource.path, method.http_method
        ):
            raise responses.throttled()
        authorized = self._authorize(exchange, method)
        if method.api_key_required:
            if exchange.deployed.api_key_source == "AUTHORIZER":
                key = authorized.usage_identifier_key if authorized is not None else None
            else:
                key = exchange.request.header("x-api-key")
            deployed = exchange.deployed
            if not key_allows(deployed.account, deployed.region, deployed.api_id, exchange.stage_name, key):
                raise responses.invalid_api_key()
            exchange.context["identity"]["apiKey"] = key
        integration = method.integration
        if integration is not None and integration.type == "MOCK":
            return mock_answer(integration, exchange.request, exchange.path_parameters, exchange.variables)
        if integration is None or integration.type != "AWS_PROXY" or not is_lambda_uri(integration.uri):
            kind = integration.type if integration else "no"
            log.warning(
                "%s %s: %s integration is not modelled by the local stage", method.http_method, resource.path, kind
            )
            raise responses.configuration_error()
        return self._proxy(exchange, resource, method, integration, port)

    def _authorize(self, exchange: Exchange, method: DeployedMethod) -> Authorized | None:
        if method.authorization_type == "NONE":
            return None
        authorizer = exchange.deployed.authorizers.get(str(method.authorizer_id))
        if method.authorization_type != "CUSTOM" or authorizer is None:
            log.warning(
                "%s authorization is not modelled by the local stage (or its authorizer is gone): 500",
                method.authorization_type,
            )
            raise responses.authorizer_configuration_error()
        call = AuthorizerCall(
            api_id=exchange.api_id,
            account=exchange.deployed.account,
            region=exchange.deployed.region,
            stage=exchange.stage_name,
            method_arn=exchange.arn(method.http_method, exchange.request.path),
            stage_variables=exchange.stage_variables,
            trace_header=exchange.trace,
        )
        authorized = self.authorizers.authorize(authorizer, exchange.request, call)
        exchange.context["authorizer"] = {
            **authorized.context,
            "principalId": authorized.principal_id,
            "integrationLatency": authorized.latency_ms,
        }
        return authorized

    def _proxy(
        self,
        exchange: Exchange,
        resource: DeployedResource,
        method: DeployedMethod,
        integration: Integration,
        port: str,
    ) -> Answer:
        if str(integration.http_method).upper() != "POST":
            log.warning("%s %s: a Lambda proxy integration must use POST", method.http_method, resource.path)
            raise responses.configuration_error()
        request = exchange.request
        event = proxy_event(
            request,
            forwarded_headers(request, port, exchange.trace),
            resource.path,
            exchange.path_parameters,
            exchange.stage_variables,
            exchange.context,
            exchange.deployed.binary_media_types,
        )
        verb = "*" if method.http_method == "ANY" else method.http_method
        try:
            arn = function_arn(integration.uri, exchange.stage_variables)
            invoked = invoke(arn, event, exchange.arn(verb, resource.path), integration.credentials, exchange.trace)
        except InvokeThrottledError as exc:
            log.warning("Lambda proxy integration throttled: %s", exc)
            raise responses.integration_throttled() from exc
        except LambdaInvokeError as exc:
            log.warning("Execution failed due to configuration error: %s", exc)
            raise responses.configuration_error() from exc
        return proxy_answer(invoked, request, exchange.deployed.binary_media_types)


def _find_api(api_id: str) -> RestAPI | None:
    """The REST API of that id in any account and region the embedded AWS holds (no backend is created)."""
    from moto.apigateway.models import apigateway_backends

    for account_backends in list(apigateway_backends.values()):
        for backend in list(account_backends.values()):
            api = backend.apis.get(api_id)
            if api is not None:
                return api
    return None


def _too_large(size: int, request_id: str) -> Answer | None:
    refusal = api_gateway_request_refusal(size)
    if refusal is None:
        return None
    status, headers, body = refusal
    return Answer(status, [*headers.items(), ("x-amzn-RequestId", request_id)], body)


def _unknown(api_id: str, stage: str, request_id: str, no_api: bool) -> Answer:
    if no_api:  # on AWS the API's host name would not resolve: this answer is the local stage's own
        body = json.dumps({"message": f"No REST API {api_id} in the embedded AWS"}, separators=(",", ":"))
        status, error = 404, "NotFoundException"
    else:  # a stage the API does not have
        body, status, error = '{"message":"Forbidden"}', 403, "ForbiddenException"
    log.info("%s/%s: %s", api_id, stage, body)
    headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", error)]
    return Answer(status, headers, body.encode())
