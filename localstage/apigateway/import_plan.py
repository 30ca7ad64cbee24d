"""What an import makes of an API definition: resources' methods, authorizers, models, gateway responses.

Plain values, read from a document by ``swagger`` and built into moto's API Gateway by ``importer``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AuthorizerPlan:
    name: str
    type: str  # TOKEN, REQUEST, COGNITO_USER_POOLS
    authorizer_uri: str | None
    identity_source: str | None
    result_ttl_s: int
    credentials: str | None = None
    validation_expression: str | None = None
    provider_arns: tuple[str, ...] = ()
    auth_type: str | None = None


@dataclass(frozen=True)
class IntegrationResponsePlan:
    status_code: str
    selection_pattern: str | None  # None: the default response
    response_parameters: dict[str, str]
    response_templates: dict[str, str]
    content_handling: str | None = None


@dataclass(frozen=True)
class IntegrationPlan:
    type: str  # AWS_PROXY, MOCK, HTTP, ...
    uri: str | None
    http_method: str | None
    passthrough_behavior: str | None
    content_handling: str | None
    request_templates: dict[str, str] | None
    request_parameters: dict[str, str] | None
    timeout_ms: int
    credentials: str | None
    cache_key_parameters: tuple[str, ...]
    responses: tuple[IntegrationResponsePlan, ...]


@dataclass(frozen=True)
class MethodResponsePlan:
    status_code: str
    response_parameters: dict[str, bool]
    response_models: dict[str, str]


@dataclass(frozen=True)
class MethodPlan:
    http_method: str
    authorization_type: str  # NONE, CUSTOM, COGNITO_USER_POOLS, AWS_IAM
    authorizer: str | None  # the authorizer's name, for CUSTOM and COGNITO_USER_POOLS
    scopes: tuple[str, ...]
    api_key_required: bool
    operation_name: str | None
    request_parameters: dict[str, bool]
    responses: tuple[MethodResponsePlan, ...]
    integration: IntegrationPlan | None


@dataclass(frozen=True)
class GatewayResponsePlan:
    status_code: str | None
    response_parameters: dict[str, str]
    response_templates: dict[str, str]


@dataclass(frozen=True)
class ImportPlan:
    title: str
    description: str | None
    version: str | None
    binary_media_types: tuple[str, ...]
    policy: str | None
    api_key_source: str | None
    paths: dict[str, tuple[MethodPlan, ...]]
    authorizers: dict[str, AuthorizerPlan]
    models: dict[str, str] = field(default_factory=dict)  # name -> JSON schema
    gateway_responses: dict[str, GatewayResponsePlan] = field(default_factory=dict)
