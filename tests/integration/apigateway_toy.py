"""The toy Chalice app the API Gateway tests deploy, and how they deploy it: chalice's own Swagger
(``SwaggerGenerator``) and chalice's own calls (``TypedAWSClient``), in the order chalice's planner makes them.

Kept apart from test_localstage_apigateway.py so that the module holds the tests; its module-scoped
``deployed`` fixture (one embedded AWS, one deployment) stays there, started once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import botocore.session
import httpx
from chalice import Chalice, Response
from chalice.app import AuthRequest, AuthResponse
from chalice.awsclient import TypedAWSClient
from chalice.deploy.swagger import SwaggerGenerator

from localstage.server import ACCOUNT_ID, REGION
from localstage.testing import Harness

APP_NAME = "toyapi"
API_FUNCTION = f"{APP_NAME}-local"  # the names chalice deploy gives (the harness registers stage "local")
AUTH_FUNCTION = f"{APP_NAME}-local-token_auth"
FINISHED_STAGE = "dev"  # scripts/deploy.py's API step reads this stage's settings: api_gateway_stage "api", CORS "*"
INTERNAL_SERVER_ERROR = b'{"message": "Internal server error"}'


app = Chalice(app_name=APP_NAME)
authorizer_tokens: list[str] = []


@app.authorizer(ttl_seconds=300)
def token_auth(auth_request: AuthRequest) -> Any:
    authorizer_tokens.append(auth_request.token)
    token = auth_request.token
    if token == "raise-unauthorized":
        raise Exception("Unauthorized")
    if token == "crash":
        raise ValueError("the authorizer broke")
    if token.startswith("deny"):
        statement = {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": auth_request.method_arn}
        return {"principalId": "user-1", "policyDocument": {"Version": "2012-10-17", "Statement": [statement]}}
    if token.startswith("narrow"):
        return AuthResponse(routes=["/echo"], principal_id="user-1")  # allows another route only
    return AuthResponse(routes=["*"], principal_id="user-1", context={"tier": "gold", "level": 3})


@app.route("/echo", methods=["GET", "POST"], cors=True)
def echo() -> dict[str, Any]:
    return app.current_request.to_original_event()


@app.route("/items/{item_id}")
def item(item_id: str) -> dict[str, Any]:
    return {"item_id": item_id, "event": app.current_request.to_original_event()}


@app.route("/private", authorizer=token_auth)
def private() -> dict[str, Any]:
    return {"authorizer": app.current_request.context["authorizer"]}


@app.route("/broken")
def broken() -> dict[str, Any]:
    return {"unserialisable": object()}  # Chalice cannot serialise it: the function itself fails


@app.route("/raises")
def raises() -> dict[str, Any]:
    raise RuntimeError("the handler failed")  # Chalice catches it and answers 500 itself


@app.route("/keyed", api_key_required=True)
def keyed() -> dict[str, Any]:
    return {"api_key": app.current_request.context["identity"]["apiKey"]}


@app.route("/blob", methods=["POST"], content_types=["application/octet-stream"])
def blob() -> Response:
    return Response(body=app.current_request.raw_body, headers={"Content-Type": "application/octet-stream"})


# The same app after a change that removed every route but one: what a later deploy overwrites with.
narrowed_app = Chalice(app_name=APP_NAME)


@narrowed_app.route("/echo")
def echo_only() -> dict[str, Any]:
    return {}


class EmbeddedSession(botocore.session.Session):
    """A botocore session whose clients talk to the embedded AWS (what AWS_ENDPOINT_URL does for chalice)."""

    def __init__(self, endpoint: str) -> None:
        super().__init__()
        self._endpoint = endpoint
        self.set_credentials("testing", "testing")
        self.set_config_variable("region", REGION)

    def create_client(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("endpoint_url") is None:
            kwargs["endpoint_url"] = self._endpoint
        return super().create_client(*args, **kwargs)


@dataclass
class Deployed:
    harness: Harness
    chalice: TypedAWSClient
    api_id: str

    def url(self, path: str, stage: str = "api", api_id: str | None = None) -> str:
        return f"{self.harness.aws.endpoint}/restapis/{api_id or self.api_id}/{stage}/_user_request_{path}"


def _function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"


def swagger(chalice_app: Chalice) -> dict[str, Any]:
    """The document chalice deploy imports, integrations pointing at the functions it deployed."""
    deployed = {
        "api_handler_arn": _function_arn(API_FUNCTION),
        "api_handler_name": API_FUNCTION,
        "lambda_functions": {AUTH_FUNCTION: {"arn": _function_arn(AUTH_FUNCTION)}},
    }
    return SwaggerGenerator(REGION, deployed).generate_swagger(chalice_app)


def chalice_deploy(chalice: TypedAWSClient, document: dict[str, Any], rest_api_id: str | None = None) -> str:
    """chalice/deploy/planner.py's plan for a RestAPI: import (or overwrite), patch, permissions, deploy."""
    patches: list[dict[str, Any]] = [{"op": "replace", "path": "/minimumCompressionSize", "value": ""}]
    if rest_api_id is None:
        rest_api_id = chalice.import_rest_api(document, "EDGE")
    else:
        chalice.update_api_from_swagger(rest_api_id, document)
        endpoint_type = chalice.get_rest_api(rest_api_id)["endpointConfiguration"]["types"][0]
        patches.append({"op": "replace", "path": f"/endpointConfiguration/types/{endpoint_type}", "value": "EDGE"})
    chalice.update_rest_api(rest_api_id, patches)
    for function in (API_FUNCTION, AUTH_FUNCTION):
        chalice.add_permission_for_apigateway(function, REGION, ACCOUNT_ID, rest_api_id)
    chalice.deploy_rest_api(rest_api_id, "api", False)
    return rest_api_id


def error_body(code: str, message: str, response: httpx.Response) -> dict[str, Any]:
    """infra.gateway.error_body's template as the stage answers it: $context.requestId substituted, and
    mapped into ``X-Request-Id`` (the header every answer of the API function carries)."""
    assert response.headers["X-Request-Id"] == response.headers["x-amzn-RequestId"]
    return {"error": code, "message": message, "details": [], "request_id": response.headers["x-amzn-RequestId"]}


def api_reports(harness: Harness) -> int:
    events = harness.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{API_FUNCTION}")["events"]
    return sum(1 for e in events if e["message"].startswith("REPORT RequestId:"))
