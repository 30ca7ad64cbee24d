"""The answers API Gateway gives on its own (gateway responses), as configured or by default.

Each refusal is a ``GatewayError`` of one gateway response type. Its answer is, in order
(developer guide, "Gateway response types"): the API's own response of that type
(``put_gateway_response``, as deployed), else the API's ``DEFAULT_4XX``/``DEFAULT_5XX``, else API
Gateway's default. The status is the chosen response's ``statusCode`` if it has one, else the
type's default; the body is its ``application/json`` template (default
``{"message":$context.error.messageString}``) with ``$context`` variables substituted; its
``gatewayresponse.header.*`` parameters are added to ``x-amzn-ErrorType`` (the data plane adds
``x-amzn-RequestId`` to every answer).

Messages are API Gateway's (its error bodies and the knowledge-center article on 403 errors).
Which type an integration failure counts as is this emulator's reading: a refused or impossible
Lambda invoke is ``API_CONFIGURATION_ERROR`` (500), a throttled one ``INTEGRATION_FAILURE`` with the
500 clients see, a function error or a malformed proxy answer ``DEFAULT_5XX`` with 502.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from localstage.apigateway.deployments import DeployedGatewayResponse
from localstage.apigateway.mapping import mapped_headers, substitute
from localstage.apigateway.wire import Answer, IncomingRequest

DEFAULT_TEMPLATE = '{"message":$context.error.messageString}'
HEADER_PREFIX = "gatewayresponse.header."

# type -> (default status, x-amzn-ErrorType)
TYPES = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "MissingAuthenticationTokenException"),
    "UNAUTHORIZED": (401, "UnauthorizedException"),
    "ACCESS_DENIED": (403, "AccessDeniedException"),
    "INVALID_API_KEY": (403, "ForbiddenException"),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, "AuthorizerConfigurationException"),
    "AUTHORIZER_FAILURE": (500, "AuthorizerFailureException"),
    "THROTTLED": (429, "TooManyRequestsException"),
    "API_CONFIGURATION_ERROR": (500, "InternalServerErrorException"),
    "INTEGRATION_FAILURE": (504, "InternalServerErrorException"),
    "DEFAULT_4XX": (400, "BadRequestException"),
    "DEFAULT_5XX": (500, "InternalServerErrorException"),
}
INTERNAL_SERVER_ERROR = "Internal server error"
# An integration failure's body, byte for byte as API Gateway (and Chalice's local server) sends it.
INTERNAL_SERVER_ERROR_BODY = b'{"message": "Internal server error"}'


class GatewayError(Exception):
    """API Gateway refuses or fails the request with a gateway response of ``response_type``."""

    def __init__(
        self, response_type: str, message: str | None, status: int | None = None, default_body: bytes | None = None
    ) -> None:
        super().__init__(f"{response_type}: {message}")
        default_status, self.error_type = TYPES[response_type]
        self.response_type = response_type
        self.message = message
        self.status = status or default_status
        self.default_body = default_body  # API Gateway's own bytes where they are not the default template's


def missing_authentication_token() -> GatewayError:
    return GatewayError("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")


def unauthorized() -> GatewayError:
    return GatewayError("UNAUTHORIZED", "Unauthorized")


def access_denied(explicit_deny: bool) -> GatewayError:
    message = "User is not authorized to access this resource"
    return GatewayError("ACCESS_DENIED", f"{message} with an explicit deny" if explicit_deny else message)


def authorizer_configuration_error() -> GatewayError:
    return GatewayError("AUTHORIZER_CONFIGURATION_ERROR", None)  # the body is {"message":null}


def invalid_api_key() -> GatewayError:
    return GatewayError("INVALID_API_KEY", "Forbidden")


def throttled() -> GatewayError:
    return GatewayError("THROTTLED", "Too Many Requests")


def configuration_error() -> GatewayError:
    return GatewayError("API_CONFIGURATION_ERROR", INTERNAL_SERVER_ERROR, default_body=INTERNAL_SERVER_ERROR_BODY)


def integration_throttled() -> GatewayError:
    return GatewayError("INTEGRATION_FAILURE", INTERNAL_SERVER_ERROR, 500, INTERNAL_SERVER_ERROR_BODY)


def bad_integration_answer() -> GatewayError:
    return GatewayError("DEFAULT_5XX", INTERNAL_SERVER_ERROR, 502, INTERNAL_SERVER_ERROR_BODY)


def render(
    error: GatewayError,
    configured: Mapping[str, DeployedGatewayResponse],
    request: IncomingRequest,
    path_parameters: Mapping[str, str],
    variables: Mapping[str, Any],
) -> Answer:
    """The answer to ``error`` under the API's deployed gateway responses."""
    family = "DEFAULT_5XX" if error.status >= 500 else "DEFAULT_4XX"
    chosen = configured.get(error.response_type) or configured.get(family)
    status = int(chosen.status_code) if chosen is not None and chosen.status_code else error.status
    templates = dict(chosen.response_templates) if chosen is not None else {}
    if "application/json" in templates or not templates:
        content_type, template = "application/json", templates.get("application/json", DEFAULT_TEMPLATE)
    else:
        content_type, template = next(iter(templates.items()))
    with_error = {
        **variables,
        "context": {
            **dict(variables.get("context") or {}),
            "error": {
                "message": error.message,
                "messageString": json.dumps(error.message),
                "responseType": error.response_type,
                "validationErrorString": "",
            },
        },
    }
    headers = [("Content-Type", content_type), ("x-amzn-ErrorType", error.error_type)]
    if chosen is None and error.default_body is not None:
        return Answer(status, headers, error.default_body)
    if chosen is not None:
        headers += mapped_headers(chosen.response_parameters, HEADER_PREFIX, request, path_parameters, with_error)
    return Answer(status, headers, substitute(template, with_error).encode())
