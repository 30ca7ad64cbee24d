"""A method's TOKEN authorizer, run as API Gateway runs it (developer guide, "Lambda authorizers").

1. The token is the identity source's header (``method.request.header.Authorization``); missing or
   empty, or not matching ``identityValidationExpression``: 401 ``UNAUTHORIZED``, nothing invoked.
2. A cached answer for (API, stage, authorizer, token) younger than ``authorizerResultTtlInSeconds``
   is used; otherwise the function is invoked with ``{"type": "TOKEN", "authorizationToken",
   "methodArn"}`` (source ARN ``.../<api id>/authorizers/<authorizer id>`` for the permission check).
   It raising ``Unauthorized``: 401; failing otherwise, refused by IAM, or answering without a
   ``principalId`` and a ``policyDocument``, or with a ``context`` value that is not a string, number
   or boolean: 500 ``AUTHORIZER_CONFIGURATION_ERROR``.
3. The policy, cached or fresh, is evaluated for ``execute-api:Invoke`` on this request's method ARN
   with IAM's logic (``localstage.iam.policy``): an explicit ``Deny``, or no ``Allow`` for this
   resource, is 403 ``ACCESS_DENIED``. So a policy cached for one resource can refuse another, as on
   AWS when the authorizer returns a narrow policy under caching.

REQUEST and Cognito authorizers are not modelled: such a method answers 500
``AUTHORIZER_CONFIGURATION_ERROR``, never a pass.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from localstage.apigateway import gateway_responses as responses
from localstage.apigateway.authorizer_results import DEFAULT_RESULT_TTL_SECONDS, PolicyCache, raised_unauthorized
from localstage.apigateway.deployments import DeployedAuthorizer
from localstage.apigateway.lambda_invoke import LambdaInvokeError, function_arn, invoke
from localstage.apigateway.mapping import as_text
from localstage.apigateway.wire import IncomingRequest
from localstage.iam.policy import Request, evaluate

log = logging.getLogger("localstage.apigateway")

_HEADER_SOURCE = "method.request.header."


@dataclass(frozen=True)
class Authorized:
    """An authorizer's answer, as cached: whom it names, its policy, its context (stringified)."""

    principal_id: str
    policy: Mapping[str, Any]
    context: Mapping[str, str]
    usage_identifier_key: str | None
    latency_ms: int


@dataclass(frozen=True)
class AuthorizerCall:
    """Where the authorizer runs: which API and stage, the method ARN, the stage variables, the trace."""

    api_id: str
    account: str
    region: str
    stage: str
    method_arn: str
    stage_variables: Mapping[str, str]
    trace_header: str | None = None


class TokenAuthorizers:
    """Runs TOKEN authorizers with API Gateway's cache (one per data plane)."""

    def __init__(self, cache: PolicyCache[Authorized] | None = None, clock: Callable[[], float] = time.monotonic):
        self._cache: PolicyCache[Authorized] = cache or PolicyCache(clock)
        self._clock = clock

    def authorize(self, authorizer: DeployedAuthorizer, request: IncomingRequest, call: AuthorizerCall) -> Authorized:
        """The authorizer's answer allowing this request, or a ``GatewayError`` (401, 403 or 500)."""
        if authorizer.type != "TOKEN":
            log.warning("%s authorizer %s is not modelled by the local stage: 500", authorizer.type, authorizer.name)
            raise responses.authorizer_configuration_error()
        token = _token(authorizer, request)
        key = (call.api_id, call.stage, authorizer.id, token)
        answer = self._cache.get(key)
        if answer is None:
            answer = self._invoke(authorizer, token, call)
            ttl = DEFAULT_RESULT_TTL_SECONDS if authorizer.result_ttl_s is None else authorizer.result_ttl_s
            self._cache.put(key, ttl, answer)
        check_policy(answer.policy, call.method_arn)
        return answer

    def _invoke(self, authorizer: DeployedAuthorizer, token: str, call: AuthorizerCall) -> Authorized:
        event = {"type": "TOKEN", "authorizationToken": token, "methodArn": call.method_arn}
        source_arn = f"arn:aws:execute-api:{call.region}:{call.account}:{call.api_id}/authorizers/{authorizer.id}"
        started = self._clock()
        try:
            arn = function_arn(authorizer.uri, call.stage_variables)
            invoked = invoke(arn, event, source_arn, authorizer.credentials, call.trace_header)
        except LambdaInvokeError as exc:
            log.warning("authorizer %s could not be invoked: %s", authorizer.name, exc)
            raise responses.authorizer_configuration_error() from exc
        latency_ms = int((self._clock() - started) * 1000)
        if invoked.function_error:
            if raised_unauthorized(_json(invoked.payload)):
                raise responses.unauthorized()
            log.warning("authorizer %s failed: %s", authorizer.name, invoked.payload[:500])
            raise responses.authorizer_configuration_error()
        return _authorized(authorizer.name, _json(invoked.payload), latency_ms)


def _token(authorizer: DeployedAuthorizer, request: IncomingRequest) -> str:
    source = authorizer.identity_source or ""
    if not source.startswith(_HEADER_SOURCE):
        log.warning("authorizer %s: identity source %r is not modelled (a header is)", authorizer.name, source)
        raise responses.authorizer_configuration_error()
    token = request.header(source[len(_HEADER_SOURCE) :])
    if not token:
        raise responses.unauthorized()
    if authorizer.validation_expression and re.fullmatch(authorizer.validation_expression, token) is None:
        raise responses.unauthorized()
    return token


def _json(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return None


def _authorized(name: str, answer: Any, latency_ms: int) -> Authorized:
    if not isinstance(answer, dict):
        raise _malformed(name, answer)
    policy, principal, context = answer.get("policyDocument"), answer.get("principalId"), answer.get("context") or {}
    if not isinstance(policy, dict) or principal is None or not isinstance(context, dict):
        raise _malformed(name, answer)
    if not all(isinstance(value, str | int | float | bool) for value in context.values()):
        raise _malformed(name, answer)
    key = answer.get("usageIdentifierKey")
    return Authorized(
        principal_id=str(principal),
        policy=policy,
        context={str(k): as_text(v) for k, v in context.items()},
        usage_identifier_key=None if key is None else str(key),
        latency_ms=latency_ms,
    )


def _malformed(name: str, answer: Any) -> responses.GatewayError:
    log.warning("authorizer %s answered without principalId, policyDocument or a flat context: %r", name, answer)
    return responses.authorizer_configuration_error()


def check_policy(policy: Mapping[str, Any], method_arn: str) -> None:
    """``ACCESS_DENIED`` unless ``policy`` allows ``execute-api:Invoke`` on ``method_arn``."""
    try:
        decision = evaluate(Request("execute-api:Invoke", method_arn), {"authorizer": dict(policy)})
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # not a policy IAM could read
        log.warning("authorizer policy unreadable (%s): %r", exc, policy)
        raise responses.authorizer_configuration_error() from exc
    if not decision.allowed:
        log.info("authorizer policy refuses %s: %s", method_arn, decision.reason)
        raise responses.access_denied(decision.explicit_deny)
