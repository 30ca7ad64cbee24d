"""API Gateway events as Lambda receives them, for calling the Chalice app object directly.

``chalice.test.Client`` would add its own local-gateway emulation to every call, which would
dominate an in-process benchmark; these are the plain REST API (v1) proxy and TOKEN authorizer
events, built once and reused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"
API_ID = "benchapi01"
STAGE = "api"
REGION = "us-east-1"

_PARAMETER = re.compile(r"\{([^}]+)\}")


@dataclass
class FakeLambdaContext:
    """The attributes of a Lambda context that Chalice and the app may read."""

    function_name: str = "ecommerce-backend-dev"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecommerce-backend-dev"
    log_group_name: str = "/aws/lambda/ecommerce-backend-dev"
    log_stream_name: str = "bench"
    client_context: Any = None
    identity: Any = None
    remaining_ms: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def method_arn(method: str, resource_path: str) -> str:
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{STAGE}/{method}{resource_path}"


def fill_path(resource: str, parameters: dict[str, str]) -> str:
    """``/products/{product_id}`` with its parameters filled in; every placeholder must be given."""
    names = _PARAMETER.findall(resource)
    if set(names) != set(parameters):
        raise ValueError(f"{resource} takes {sorted(names)}, got {sorted(parameters)}")
    return _PARAMETER.sub(lambda m: parameters[m.group(1)], resource)


@dataclass(frozen=True)
class ApiRequest:
    """What a client sends; ``proxy_event`` turns it into the event API Gateway would deliver."""

    method: str
    resource: str
    path_parameters: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    request_id: str = "bench-request"

    def proxy_event(self, authorizer: dict[str, Any] | None = None) -> dict[str, Any]:
        path = fill_path(self.resource, self.path_parameters)
        headers = {"Host": f"{API_ID}.execute-api.{REGION}.amazonaws.com", "Accept": "*/*", **self.headers}
        context: dict[str, Any] = {
            "resourcePath": self.resource,
            "httpMethod": self.method,
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "requestId": self.request_id,
            "accountId": ACCOUNT,
            "apiId": API_ID,
            "identity": {"sourceIp": "192.0.2.1", "userAgent": "bench"},
        }
        if authorizer is not None:
            context["authorizer"] = authorizer
        return {
            "resource": self.resource,
            "path": path,
            "httpMethod": self.method,
            "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "queryStringParameters": None,
            "multiValueQueryStringParameters": None,
            "pathParameters": dict(self.path_parameters) or None,
            "stageVariables": None,
            "requestContext": context,
            "body": self.body,
            "isBase64Encoded": False,
        }

    def token_event(self) -> dict[str, Any]:
        """The TOKEN authorizer event API Gateway sends before an authorized route."""
        return {
            "type": "TOKEN",
            "authorizationToken": self.headers.get("Authorization", ""),
            "methodArn": method_arn(self.method, fill_path(self.resource, self.path_parameters)),
        }


def authorizer_context(policy: dict[str, Any]) -> dict[str, Any] | None:
    """The ``requestContext.authorizer`` API Gateway passes on for an Allow policy, ``None`` for a Deny."""
    statements = policy.get("policyDocument", {}).get("Statement", [])
    if not statements or any(s.get("Effect") != "Allow" for s in statements):
        return None
    return {"principalId": policy["principalId"], **policy.get("context", {})}
