"""API Gateway invoking a Lambda function: the permission it needs, then the embedded AWS's Lambda.

An integration or authorizer URI names the function
(``arn:aws:apigateway:<region>:lambda:path/2015-03-31/functions/<function arn>/invocations``,
``${stageVariables.x}`` rendered). With IAM enforced (``localstage.iam.enforcement.active()``),
API Gateway may invoke it only if the function's resource policy allows ``apigateway.amazonaws.com``
for the ``aws:SourceArn`` of the call (``chalice deploy`` adds ``arn:aws:execute-api:<region>:
<account>:<api id>/*``), or, with ``credentials``, if that role's policies allow
``lambda:InvokeFunction``. The invoke goes to moto's Lambda backend in this process
(``LambdaBackend.invoke``), so it reaches whatever runs the function there: the stage's emulator
hooks it (``localstage.moto_lambda``); a synchronous invoke, as API Gateway makes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from localstage.aws_limits import lambda_request_error, lambda_response_error
from localstage.iam import enforcement
from localstage.iam.actions import Target
from localstage.xray import HEADER

APIGATEWAY_PRINCIPAL = "apigateway.amazonaws.com"
_LAMBDA_URI = re.compile(r"^arn:[^:]+:apigateway:[^:]+:lambda:path/2015-03-31/functions/(?P<function>.+)/invocations$")
_STAGE_VARIABLE = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_]+)\}")


class LambdaInvokeError(Exception):
    """API Gateway could not get an answer from the function."""


class InvokeRefusedError(LambdaInvokeError):
    """IAM refuses API Gateway the invoke (the function's policy, or the credentials' role)."""


class InvokeThrottledError(LambdaInvokeError):
    """Lambda throttled the invoke (429 TooManyRequestsException)."""


class InvokeFailedError(LambdaInvokeError):
    """No such function, a URI that names none, or a payload Lambda refuses."""


@dataclass(frozen=True)
class Invoked:
    payload: bytes
    function_error: str | None  # "Unhandled" when the handler failed, as Lambda reports it


def is_lambda_uri(uri: str | None) -> bool:
    return bool(uri) and _LAMBDA_URI.match(str(uri)) is not None


def function_arn(uri: str | None, stage_variables: Mapping[str, str]) -> str:
    """The function an integration or authorizer URI names, stage variables rendered."""
    rendered = _STAGE_VARIABLE.sub(lambda m: stage_variables.get(m.group(1), ""), str(uri or ""))
    found = _LAMBDA_URI.match(rendered)
    if found is None or not found["function"].startswith("arn:"):
        raise InvokeFailedError(f"not a Lambda function invocation URI: {uri}")
    return found["function"]


def invoke(
    arn: str, event: Any, source_arn: str, credentials: str | None = None, trace_header: str | None = None
) -> Invoked:
    """Invoke ``arn`` synchronously with ``event`` as API Gateway does, after IAM allows it."""
    _authorize(arn, source_arn, credentials)
    payload = json.dumps(event)
    too_large = lambda_request_error(len(payload.encode()), "RequestResponse")
    if too_large is not None:
        raise InvokeFailedError(too_large.message)
    from moto.awslambda.models import lambda_backends
    from moto.core.exceptions import JsonRESTError

    parts = arn.split(":")  # arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
    if len(parts) < 7:
        raise InvokeFailedError(f"not a function ARN: {arn}")
    region, account, name = parts[3], parts[4], parts[6]
    headers = {"x-amz-invocation-type": "RequestResponse", **({HEADER: trace_header} if trace_header else {})}
    response_headers: dict[str, str] = {}
    try:
        answer = lambda_backends[account][region].invoke(
            name, parts[7] if len(parts) > 7 else None, payload, headers, response_headers
        )
    except JsonRESTError as exc:
        if exc.code == 429:
            raise InvokeThrottledError(f"{name}: {exc.message}") from exc
        raise InvokeFailedError(f"{name}: {exc.error_type}: {exc.message}") from exc
    body = answer.encode() if isinstance(answer, str) else bytes(answer or b"")
    oversized = lambda_response_error(body)  # Lambda replaces an answer over its quota by this error
    if oversized is not None:
        return Invoked(json.dumps(oversized).encode(), "Unhandled")
    return Invoked(body, response_headers.get("x-amz-function-error"))


def _authorize(arn: str, source_arn: str, credentials: str | None) -> None:
    authorizer = enforcement.active()
    if authorizer is None:
        return
    target = Target("lambda:InvokeFunction", arn)
    if credentials and credentials.startswith("arn:aws:iam::*:"):
        # Caller credentials pass-through: API Gateway would sign as the caller; not modelled, so refused.
        raise InvokeRefusedError(f"caller credentials ({credentials}) are not modelled by the local stage")
    if credentials:
        decision = authorizer.decide_role(credentials, "apigateway", target)
    else:
        decision = authorizer.decide_service(APIGATEWAY_PRINCIPAL, target, source_arn)
    if not decision.allowed:
        raise InvokeRefusedError(f"API Gateway may not invoke {arn} for {source_arn}: {decision.reason}")
