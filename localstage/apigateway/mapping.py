"""API Gateway's simple variable substitution, for gateway responses and mock integration responses.

A gateway response template "isn't processed by the Velocity Template Language engine": it supports
only ``$context.<name>`` / ``${context.<name>}`` and ``$stageVariables.<name>`` substitution. The
mock integration's templates are VTL on AWS; here they get the same substitution and no more (the
templates chalice writes have no VTL). A variable with no value renders as nothing.

Response parameters (``gatewayresponse.header.X``, ``method.response.header.X``) map from a quoted
literal (``'*'``), ``method.request.header|querystring|path.<name>``, ``context.<name>`` or
``stageVariables.<name>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from localstage.apigateway.wire import IncomingRequest

_NAME = r"(?:context|stageVariables)(?:\.[A-Za-z0-9_]+)+"
_VARIABLE = re.compile(rf"\$\{{({_NAME})\}}|\$({_NAME})")  # ${context.x} or $context.x


def lookup(variables: Mapping[str, Any], dotted: str) -> Any:
    """``context.identity.sourceIp`` in ``{"context": {"identity": {"sourceIp": ...}}}``, or ``None``."""
    value: Any = variables
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def substitute(template: str, variables: Mapping[str, Any]) -> str:
    return _VARIABLE.sub(lambda m: as_text(lookup(variables, m.group(1) or m.group(2))), template)


def parameter_value(
    expression: str, request: IncomingRequest, path_parameters: Mapping[str, str], variables: Mapping[str, Any]
) -> str | None:
    """The value a response parameter maps from; ``None`` when it has none (the header is not sent)."""
    if len(expression) >= 2 and expression.startswith("'") and expression.endswith("'"):
        return expression[1:-1]
    source, _, name = expression.rpartition(".")
    if source == "method.request.header":
        return request.header(name)
    if source == "method.request.querystring":
        return request.query_value(name)
    if source == "method.request.path":
        return path_parameters.get(name)
    if expression.startswith(("context.", "stageVariables.")):
        value = lookup(variables, expression)
        return None if value is None else as_text(value)
    return None


def mapped_headers(
    parameters: Mapping[str, str],
    prefix: str,
    request: IncomingRequest,
    path_parameters: Mapping[str, str],
    variables: Mapping[str, Any],
) -> list[tuple[str, str]]:
    """``{prefix}<Header>: <expression>`` parameters as the headers they set."""
    headers = []
    for key, expression in parameters.items():
        if key.startswith(prefix):
            value = parameter_value(expression, request, path_parameters, variables)
            if value is not None:
                headers.append((key[len(prefix) :], value))
    return headers
