"""The two integrations chalice deploys: Lambda proxy (``AWS_PROXY``) and ``MOCK`` (CORS preflight).

Lambda proxy, as the developer guide's "Lambda proxy integrations" describes it:

- the event (payload format 1.0): ``resource``, ``path``, ``httpMethod``, ``headers`` and
  ``multiValueHeaders``, ``queryStringParameters`` and ``multiValueQueryStringParameters``,
  ``pathParameters``, ``stageVariables`` (each ``null`` when empty), ``requestContext``, ``body``
  and ``isBase64Encoded`` (a body whose ``Content-Type`` is one of the API's binary media types is
  passed base64-encoded);
- the answer must be a JSON object of ``statusCode``, ``headers``, ``multiValueHeaders``, ``body``
  (a string) and ``isBase64Encoded``, nothing else: anything else, or a function error, is 502
  ``{"message": "Internal server error"}``. ``multiValueHeaders`` win over ``headers`` of the same
  name. A base64 body is decoded when the request's ``Accept`` names a binary media type, and passed
  on as its base64 text otherwise; ``Content-Type`` defaults to ``application/json``.

Mock: the request template (``{"statusCode": 200}``, by the request's content type) picks the
integration response whose selection pattern matches the status code, else the default one; its
``method.response.header.*`` parameters and its template make the answer.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from localstage.apigateway.deployments import Integration, IntegrationResponse
from localstage.apigateway.gateway_responses import bad_integration_answer, configuration_error
from localstage.apigateway.lambda_invoke import Invoked
from localstage.apigateway.mapping import mapped_headers, substitute
from localstage.apigateway.wire import Answer, IncomingRequest

log = logging.getLogger("localstage.apigateway")

PROXY_ANSWER_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})
# Headers of a function's answer that API Gateway sets itself (the length, the connection): not passed on.
NOT_PASSED_ON = frozenset(
    {
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-authenticate",
    }
)
JSON = "application/json"
METHOD_RESPONSE_HEADER = "method.response.header."


def media_type_matches(media_type: str | None, patterns: tuple[str, ...]) -> bool:
    """Whether ``media_type`` (parameters ignored) is one of ``patterns`` (``image/*``, ``*/*`` allowed)."""
    if not media_type:
        return False
    kind = media_type.split(";", 1)[0].strip().lower()
    for pattern in (p.lower() for p in patterns):
        if pattern in ("*/*", kind) or (pattern.endswith("/*") and kind.startswith(pattern[:-1])):
            return True
    return False


def proxy_event(
    request: IncomingRequest,
    headers: list[tuple[str, str]],
    resource_path: str,
    path_parameters: Mapping[str, str],
    stage_variables: Mapping[str, str],
    request_context: Mapping[str, Any],
    binary_media_types: tuple[str, ...],
) -> dict[str, Any]:
    """The event a Lambda proxy integration sends, ``headers`` being the request's as the function sees them."""
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)
    multi_query: dict[str, list[str]] = {}
    for name, value in request.query:
        multi_query.setdefault(name, []).append(value)
    body, encoded = _event_body(request, binary_media_types)
    return {
        "resource": resource_path,
        "path": request.path,
        "httpMethod": request.method,
        "headers": {name: values[-1] for name, values in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {name: values[-1] for name, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": dict(path_parameters) or None,
        "stageVariables": dict(stage_variables) or None,
        "requestContext": dict(request_context),
        "body": body,
        "isBase64Encoded": encoded,
    }


def _event_body(request: IncomingRequest, binary_media_types: tuple[str, ...]) -> tuple[str | None, bool]:
    if not request.body:
        return None, False
    if media_type_matches(request.header("Content-Type"), binary_media_types):
        return base64.b64encode(request.body).decode(), True
    return request.body.decode("utf-8", "replace"), False  # text, as API Gateway takes a non-binary payload


def proxy_answer(invoked: Invoked, request: IncomingRequest, binary_media_types: tuple[str, ...]) -> Answer:
    """The HTTP answer a Lambda proxy integration's function answer makes (``GatewayError`` 502 if malformed)."""
    if invoked.function_error:
        log.warning("Lambda proxy integration: the function failed (%s): 502", invoked.payload[:500])
        raise bad_integration_answer()
    try:
        answer = json.loads(invoked.payload)
        status, headers, body = _proxy_parts(answer)
    except (ValueError, TypeError, binascii.Error) as exc:
        log.warning("Execution failed due to configuration error: Malformed Lambda proxy response (%s)", exc)
        raise bad_integration_answer() from exc
    if answer.get("isBase64Encoded") and body:
        accept = (request.header("Accept") or "").split(",")[0]
        raw = base64.b64decode(body, validate=True) if media_type_matches(accept, binary_media_types) else body.encode()
    else:
        raw = (body or "").encode()
    headers = [(name, value) for name, value in headers if name.lower() not in NOT_PASSED_ON]
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.insert(0, ("Content-Type", JSON))
    return Answer(status, headers, raw)


def _proxy_parts(answer: Any) -> tuple[int, list[tuple[str, str]], str | None]:
    if not isinstance(answer, dict) or not set(answer) <= PROXY_ANSWER_KEYS:
        raise ValueError(f"not a proxy answer: keys {sorted(answer) if isinstance(answer, dict) else type(answer)}")
    status = int(answer.get("statusCode") or 200)
    if not 100 <= status <= 599:
        raise ValueError(f"statusCode {status}")
    body = answer.get("body")
    if body is not None and not isinstance(body, str):
        raise TypeError("body must be a string")
    single = answer.get("headers") or {}
    multi = answer.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise TypeError("headers and multiValueHeaders must be objects")
    overridden = {name.lower() for name in multi}
    headers = [(str(k), _header_text(v)) for k, v in single.items() if k.lower() not in overridden]
    for name, values in multi.items():
        if not isinstance(values, list):
            raise TypeError(f"multiValueHeaders.{name} must be a list")
        headers += [(str(name), _header_text(v)) for v in values]
    return status, headers, body


def _header_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise TypeError(f"header value {value!r} is not a string")


def mock_answer(
    integration: Integration,
    request: IncomingRequest,
    path_parameters: Mapping[str, str],
    variables: Mapping[str, Any],
) -> Answer:
    content_type = (request.header("Content-Type") or JSON).split(";", 1)[0].strip().lower()
    template = integration.request_templates.get(content_type)
    status = _mock_status(template) if template else 200
    chosen = _integration_response(integration.responses, status)
    if chosen is None:
        log.warning("MOCK integration: no integration response for status %s", status)
        raise configuration_error()
    headers = [("Content-Type", JSON)]
    headers += mapped_headers(chosen.response_parameters, METHOD_RESPONSE_HEADER, request, path_parameters, variables)
    body_template = chosen.response_templates.get(JSON) or next(iter(chosen.response_templates.values()), "")
    return Answer(int(chosen.status_code), headers, substitute(body_template, variables).encode())


def _mock_status(template: str) -> int:
    # The template is VTL on AWS; the local stage reads a plain JSON one (what chalice writes) and
    # refuses any other instead of guessing what it would render.
    try:
        return int(json.loads(template).get("statusCode", 200))
    except (ValueError, AttributeError, TypeError) as exc:
        log.warning("MOCK integration: request template %r is not plain JSON (VTL is not modelled)", template)
        raise configuration_error() from exc


def _integration_response(responses: tuple[IntegrationResponse, ...], status: int) -> IntegrationResponse | None:
    for response in responses:
        if response.selection_pattern and re.fullmatch(response.selection_pattern, str(status)):
            return response
    return next((r for r in responses if not r.selection_pattern), None)
