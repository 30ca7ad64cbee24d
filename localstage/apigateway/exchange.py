"""One request on its way through a stage: its deployment, its route, the context API Gateway builds.

The context is the proxy event's ``requestContext`` (and what ``$context`` templates read); the
method ARN names the request for authorizers, the source ARN names API Gateway's call for Lambda's
permission check.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from localstage.apigateway import gateway_responses as responses
from localstage.apigateway.deployments import Deployed, DeployedMethod, DeployedResource
from localstage.apigateway.wire import IncomingRequest
from localstage.xray import HEADER

if TYPE_CHECKING:
    from moto.apigateway.models import Stage


class Exchange:
    """One request on its way through a stage: what is known of it so far (route, context, variables)."""

    def __init__(self, deployed: Deployed, stage: Stage, request: IncomingRequest, request_id: str, trace: str) -> None:
        self.deployed = deployed
        self.stage = stage
        self.request = request
        self.trace = trace
        self.api_id = deployed.api_id
        self.stage_name = str(stage.name)
        self.extended_id = uuid.uuid4().hex[:16]
        self.stage_variables: dict[str, str] = dict(stage.variables or {})
        self.path_parameters: dict[str, str] = {}
        now = time.time()
        self.context: dict[str, Any] = {
            "resourceId": None,
            "resourcePath": None,
            "httpMethod": request.method,
            "extendedRequestId": self.extended_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": f"/{self.stage_name}{request.path}",
            "accountId": deployed.account,
            "protocol": request.protocol,
            "stage": self.stage_name,
            "domainPrefix": deployed.api_id,
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": request.source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": request.header("User-Agent"),
                "user": None,
                "apiKey": None,
            },
            "domainName": request.host,
            "apiId": deployed.api_id,
        }

    @property
    def variables(self) -> dict[str, Any]:
        """What templates substitute: ``$context.*`` and ``$stageVariables.*``."""
        return {"context": self.context, "stageVariables": self.stage_variables}

    def route(self) -> tuple[DeployedResource, DeployedMethod]:
        matched = self.deployed.routes.match(self.request.path)
        method = matched[0].method(self.request.method) if matched else None
        if matched is None or method is None:
            raise responses.missing_authentication_token()
        resource, self.path_parameters = matched
        self.context["resourceId"], self.context["resourcePath"] = resource.id, resource.path
        return resource, method

    def arn(self, verb: str, path: str) -> str:
        """``arn:aws:execute-api:<region>:<account>:<api>/<stage>/<verb><path>``: method ARNs and source ARNs."""
        deployed = self.deployed
        return (
            f"arn:aws:execute-api:{deployed.region}:{deployed.account}:{deployed.api_id}/{self.stage_name}/{verb}{path}"
        )


def forwarded_headers(request: IncomingRequest, port: str, trace: str) -> list[tuple[str, str]]:
    """The headers the function sees: the client appended to X-Forwarded-For, port, scheme and trace added."""
    prior = request.header("X-Forwarded-For")
    headers = [(name, value) for name, value in request.headers if name.lower() != "x-forwarded-for"]
    headers.append(("X-Forwarded-For", f"{prior}, {request.source_ip}" if prior else request.source_ip))
    for name, value in (("X-Forwarded-Port", port), ("X-Forwarded-Proto", "http"), (HEADER, trace)):
        if request.header(name) is None:
            headers.append((name, value))
    return headers
