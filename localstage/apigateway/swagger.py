"""A Swagger 2.0 document, as ``chalice deploy`` writes it, read into what API Gateway's import makes.

moto 5.2.5 imports OpenAPI 3 only (``import_rest_api`` needs ``info.description``, ``put_rest_api``
refuses ``swagger: "2.0"``), and even there ignores authorizers, security and binary media types.
This module reads the document (no moto here); ``importer`` builds the API from the result.

What API Gateway makes of each part (developer guide, "OpenAPI extensions"; chalice/deploy/swagger.py
for what chalice writes):

- ``paths``: one resource per path part (ancestors created as needed), one method per operation
  (``x-amazon-apigateway-any-method`` is ``ANY``), method request parameters from ``parameters``,
  method responses from ``responses`` (headers as ``method.response.header.X``, ``$ref`` schemas as
  models);
- ``x-amazon-apigateway-integration``: the integration (``type`` and ``passthroughBehavior`` upper
  case, ``timeoutInMillis`` 29000 unless given) and its ``responses`` (``default`` has no selection
  pattern);
- ``securityDefinitions`` with ``x-amazon-apigateway-authorizer``: an authorizer named after the
  definition; a TOKEN authorizer's identity source is the definition's header unless given, its TTL
  300 s unless given. ``x-amazon-apigateway-authtype: awsSigv4`` is IAM authorization; an ``apiKey``
  definition without an authorizer is ``apiKeyRequired``. A method's ``security`` (or the document's)
  picks them;
- ``x-amazon-apigateway-binary-media-types``, ``x-amazon-apigateway-policy``,
  ``x-amazon-apigateway-api-key-source``, ``x-amazon-apigateway-gateway-responses``, ``definitions``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from localstage.apigateway.import_plan import (
    AuthorizerPlan,
    GatewayResponsePlan,
    ImportPlan,
    IntegrationPlan,
    IntegrationResponsePlan,
    MethodPlan,
    MethodResponsePlan,
)

OPERATIONS = {
    "get": "GET",
    "put": "PUT",
    "post": "POST",
    "delete": "DELETE",
    "options": "OPTIONS",
    "head": "HEAD",
    "patch": "PATCH",
    "x-amazon-apigateway-any-method": "ANY",
}
AUTHORIZER_TYPES = {"token": "TOKEN", "request": "REQUEST", "cognito_user_pools": "COGNITO_USER_POOLS"}
DEFAULT_TIMEOUT_MS = 29_000
DEFAULT_RESULT_TTL_S = 300
_PARAMETER_LOCATIONS = {"path": "path", "query": "querystring", "header": "header"}


class SwaggerImportError(ValueError):
    """The document cannot be imported; the message says where (API Gateway answers 400 BadRequestException)."""


def is_swagger2(document: Any) -> bool:
    return isinstance(document, Mapping) and str(document.get("swagger", "")).startswith("2")


def read_swagger(document: Mapping[str, Any]) -> ImportPlan:
    """The import plan for ``document``; ``SwaggerImportError`` names the first thing it cannot import."""
    info = _mapping(document.get("info"), "info")
    title = info.get("title")
    if not isinstance(title, str) or not title:
        raise SwaggerImportError("Invalid OpenAPI input: info.title is required")
    security = _security(_mapping(document.get("securityDefinitions", {}), "securityDefinitions"))
    default_security = document.get("security", [])
    paths: dict[str, tuple[MethodPlan, ...]] = {}
    for path, item in _mapping(document.get("paths"), "paths").items():
        paths[_checked_path(path)] = _methods(path, _mapping(item, f"paths.{path}"), security, default_security)
    policy = document.get("x-amazon-apigateway-policy")
    return ImportPlan(
        title=title,
        description=info.get("description"),
        version=None if info.get("version") is None else str(info["version"]),
        binary_media_types=tuple(str(t) for t in document.get("x-amazon-apigateway-binary-media-types") or ()),
        policy=json.dumps(policy) if isinstance(policy, Mapping) else policy,
        api_key_source=document.get("x-amazon-apigateway-api-key-source"),
        paths=paths,
        authorizers={name: kind for name, kind in security.items() if isinstance(kind, AuthorizerPlan)},
        models={name: json.dumps(schema) for name, schema in (document.get("definitions") or {}).items()},
        gateway_responses=_gateway_responses(document.get("x-amazon-apigateway-gateway-responses") or {}),
    )


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SwaggerImportError(f"Invalid OpenAPI input: {where} must be an object")
    return value


def _checked_path(path: str) -> str:
    # Each part is checked by moto's create_resource, with API Gateway's message; only the shape here.
    if not path.startswith("/") or (path != "/" and path.endswith("/")):
        raise SwaggerImportError(f"Invalid resource path: {path}")
    return path


# A security definition is an authorizer, IAM authorization ("iam") or an API key ("api_key").
SecurityKind = AuthorizerPlan | str


def _security(definitions: Mapping[str, Any]) -> dict[str, SecurityKind]:
    found: dict[str, SecurityKind] = {}
    for name, definition in definitions.items():
        definition = _mapping(definition, f"securityDefinitions.{name}")
        authorizer = definition.get("x-amazon-apigateway-authorizer")
        if authorizer is not None:
            found[name] = _authorizer(name, definition, _mapping(authorizer, f"{name}.x-amazon-apigateway-authorizer"))
        elif str(definition.get("x-amazon-apigateway-authtype", "")).lower() == "awssigv4":
            found[name] = "iam"
        elif definition.get("type") == "apiKey":
            found[name] = "api_key"
        else:
            raise SwaggerImportError(f"Unsupported security definition {name}: type {definition.get('type')!r}")
    return found


def _authorizer(name: str, definition: Mapping[str, Any], extension: Mapping[str, Any]) -> AuthorizerPlan:
    kind = AUTHORIZER_TYPES.get(str(extension.get("type", "")).lower())
    if kind is None:
        raise SwaggerImportError(f"Unsupported authorizer type {extension.get('type')!r} for authorizer {name}")
    source = extension.get("identitySource")
    if source is None and kind in ("TOKEN", "COGNITO_USER_POOLS") and definition.get("in") == "header":
        source = f"method.request.header.{definition.get('name', 'Authorization')}"
    if kind in ("TOKEN", "REQUEST") and not extension.get("authorizerUri"):
        raise SwaggerImportError(f"Authorizer {name} has no authorizerUri")
    ttl = extension.get("authorizerResultTtlInSeconds", DEFAULT_RESULT_TTL_S)
    return AuthorizerPlan(
        name=name,
        type=kind,
        authorizer_uri=extension.get("authorizerUri"),
        identity_source=source,
        result_ttl_s=int(ttl),
        credentials=extension.get("authorizerCredentials"),
        validation_expression=extension.get("identityValidationExpression"),
        provider_arns=tuple(extension.get("providerARNs") or ()),
        auth_type=definition.get("x-amazon-apigateway-authtype"),
    )


def _methods(
    path: str, item: Mapping[str, Any], security: Mapping[str, SecurityKind], default_security: Any
) -> tuple[MethodPlan, ...]:
    shared_parameters = list(item.get("parameters") or [])
    methods = []
    for key, operation in item.items():
        if key == "parameters" or (key.startswith("x-") and key not in OPERATIONS):  # x-: other extensions
            continue
        http_method = OPERATIONS.get(key.lower())
        if http_method is None:
            raise SwaggerImportError(f"Unsupported operation {key!r} on path {path}")
        operation = _mapping(operation, f"paths.{path}.{key}")
        where = f"{http_method} {path}"
        methods.append(_method(where, http_method, operation, shared_parameters, security, default_security))
    return tuple(methods)


def _method(
    where: str,
    http_method: str,
    operation: Mapping[str, Any],
    shared_parameters: list[Any],
    security: Mapping[str, SecurityKind],
    default_security: Any,
) -> MethodPlan:
    authorization, authorizer, scopes, api_key = "NONE", None, (), False
    for requirement in operation.get("security", default_security) or []:
        for name, requirement_scopes in _mapping(requirement, f"{where} security").items():
            kind = security.get(name)
            if kind is None:
                raise SwaggerImportError(f"{where}: security requirement {name!r} names no securityDefinition")
            if kind == "api_key":
                api_key = True
            elif kind == "iam":
                authorization = "AWS_IAM"
            elif isinstance(kind, AuthorizerPlan):
                authorization = "COGNITO_USER_POOLS" if kind.type == "COGNITO_USER_POOLS" else "CUSTOM"
                authorizer, scopes = name, tuple(requirement_scopes or ())
    produces = (operation.get("produces") or ["application/json"])[0]
    integration = operation.get("x-amazon-apigateway-integration")
    return MethodPlan(
        http_method=http_method,
        authorization_type=authorization,
        authorizer=authorizer,
        scopes=scopes,
        api_key_required=api_key,
        operation_name=operation.get("operationId"),
        request_parameters=_request_parameters([*shared_parameters, *(operation.get("parameters") or [])]),
        responses=tuple(_method_response(str(s), r, produces) for s, r in (operation.get("responses") or {}).items()),
        integration=None if integration is None else _integration(where, _mapping(integration, where)),
    )


def _request_parameters(parameters: list[Any]) -> dict[str, bool]:
    found = {}
    for parameter in parameters:
        location = _PARAMETER_LOCATIONS.get(str(parameter.get("in")))
        if location is not None:  # body and formData parameters are models, not request parameters
            found[f"method.request.{location}.{parameter['name']}"] = bool(parameter.get("required", False))
    return found


def _method_response(status: str, response: Mapping[str, Any], produces: str) -> MethodResponsePlan:
    reference = str((response.get("schema") or {}).get("$ref", ""))
    models = {produces: reference.rsplit("/", 1)[-1]} if reference.startswith("#/definitions/") else {}
    headers = {f"method.response.header.{h}": False for h in response.get("headers") or {}}
    return MethodResponsePlan(status, headers, models)


def _integration(where: str, extension: Mapping[str, Any]) -> IntegrationPlan:
    kind = str(extension.get("type", "")).upper()
    if not kind:
        raise SwaggerImportError(f"{where}: x-amazon-apigateway-integration has no type")
    passthrough = extension.get("passthroughBehavior")
    responses = []
    for pattern, response in (extension.get("responses") or {}).items():
        response = _mapping(response, f"{where} integration response {pattern}")
        responses.append(
            IntegrationResponsePlan(
                status_code=str(response.get("statusCode", "200")),
                selection_pattern=None if pattern == "default" else str(pattern),
                response_parameters=dict(response.get("responseParameters") or {}),
                response_templates=dict(response.get("responseTemplates") or {}),
                content_handling=response.get("contentHandling"),
            )
        )
    return IntegrationPlan(
        type=kind,
        uri=extension.get("uri"),
        http_method=extension.get("httpMethod"),
        passthrough_behavior=None if passthrough is None else str(passthrough).upper(),
        content_handling=extension.get("contentHandling"),
        request_templates=extension.get("requestTemplates"),
        request_parameters=extension.get("requestParameters"),
        timeout_ms=int(extension.get("timeoutInMillis", DEFAULT_TIMEOUT_MS)),
        credentials=extension.get("credentials"),
        cache_key_parameters=tuple(extension.get("cacheKeyParameters") or ()),
        responses=tuple(responses),
    )


def _gateway_responses(extension: Mapping[str, Any]) -> dict[str, GatewayResponsePlan]:
    return {
        str(kind): GatewayResponsePlan(
            status_code=None if response.get("statusCode") is None else str(response["statusCode"]),
            response_parameters=dict(response.get("responseParameters") or {}),
            response_templates=dict(response.get("responseTemplates") or {}),
        )
        for kind, response in _mapping(extension, "x-amazon-apigateway-gateway-responses").items()
    }
