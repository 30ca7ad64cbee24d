"""A REST API deployed to the embedded AWS as ``chalice deploy`` deploys it, answered by the data plane.

The document is Chalice's own (``SwaggerGenerator``) for a toy app whose functions the emulator runs;
the calls that deploy it are chalice's own (``TypedAWSClient``: ``import_rest_api``,
``update_rest_api``, ``add_permission_for_apigateway``, ``deploy_rest_api``, and
``update_api_from_swagger`` on a redeploy), in the order chalice's planner makes them, then
``scripts/deploy.py``'s API step (gateway responses, stage throttling, a new deployment). Requests
go to ``<endpoint>/restapis/<id>/<stage>/_user_request_/<path>`` with httpx.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from chalice.awsclient import TypedAWSClient

from infra.stage_settings import load_stage_settings
from infra.template import access_log_group_name
from localstage.apigateway import install
from localstage.apigateway.dataplane import ApiGatewayDataPlane
from localstage.iam import enforcement
from localstage.patches import Patches
from localstage.server import ACCOUNT_ID, REGION
from localstage.testing import emulated
from scripts.deploy import DeployedState
from scripts.deploy_finish import _configure_api
from tests.integration.apigateway_toy import (
    API_FUNCTION,
    AUTH_FUNCTION,
    FINISHED_STAGE,
    INTERNAL_SERVER_ERROR,
    Deployed,
    EmbeddedSession,
    api_reports,
    app,
    authorizer_tokens,
    chalice_deploy,
    error_body,
    narrowed_app,
    swagger,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployed]:
    with emulated(app) as harness, Patches() as patches:
        install(patches)
        harness.serve_through(ApiGatewayDataPlane)
        chalice = TypedAWSClient(EmbeddedSession(harness.aws.endpoint))
        api_id = chalice_deploy(chalice, swagger(app))
        # make deploy's step 4: gateway responses, a new deployment, stage throttling (25 rps, burst 50)
        state = DeployedState(Path("deployed.json"), {"rest_api": {"resource_type": "rest_api", "rest_api_id": api_id}})
        session = boto3.session.Session(botocore_session=EmbeddedSession(harness.aws.endpoint))
        harness.client("logs").create_log_group(logGroupName=access_log_group_name(FINISHED_STAGE))  # the stack's
        _configure_api(FINISHED_STAGE, session, state, load_stage_settings(FINISHED_STAGE, env={}))
        yield Deployed(harness, chalice, api_id)


# -- the control plane: what the import made ------------------------------------------------------


def test_given_chalices_swagger_when_imported_then_api_gateway_holds_its_resources_methods_and_authorizer(
    deployed: Deployed,
) -> None:
    api = deployed.harness.client("apigateway")
    resources = {r["path"]: r for r in api.get_resources(restApiId=deployed.api_id)["items"]}
    assert set(resources) == {
        "/",
        "/echo",
        "/items",
        "/items/{item_id}",
        "/private",
        "/broken",
        "/raises",
        "/keyed",
        "/blob",
    }
    (authorizer,) = api.get_authorizers(restApiId=deployed.api_id)["items"]
    assert (authorizer["name"], authorizer["type"], authorizer["authorizerResultTtlInSeconds"]) == (
        "token_auth",
        "TOKEN",
        300,
    )
    assert authorizer["identitySource"] == "method.request.header.Authorization"
    assert AUTH_FUNCTION in authorizer["authorizerUri"]
    private = resources["/private"]["resourceMethods"]["GET"]
    assert (private["authorizationType"], private["authorizerId"]) == ("CUSTOM", authorizer["id"])
    integration = private["methodIntegration"]
    assert (integration["type"], integration["httpMethod"]) == ("AWS_PROXY", "POST")
    assert integration["uri"].endswith(f"function:{API_FUNCTION}/invocations")
    item_method = resources["/items/{item_id}"]["resourceMethods"]["GET"]
    assert item_method["requestParameters"] == {"method.request.path.item_id": True}
    preflight = resources["/echo"]["resourceMethods"]["OPTIONS"]["methodIntegration"]
    assert preflight["type"] == "MOCK"
    allow_origin = preflight["integrationResponses"]["200"]["responseParameters"]
    assert allow_origin["method.response.header.Access-Control-Allow-Origin"] == "'*'"
    assert api.get_rest_api(restApiId=deployed.api_id)["binaryMediaTypes"] == app.api.binary_types


def test_given_a_document_api_gateway_refuses_when_imported_then_no_api_is_left_behind(deployed: Deployed) -> None:
    api = deployed.harness.client("apigateway")
    before = {a["id"] for a in api.get_rest_apis()["items"]}
    document = swagger(app)
    document["paths"]["/bad path!"] = document["paths"]["/echo"]  # a path part API Gateway refuses
    with pytest.raises(ClientError) as refused:
        api.import_rest_api(body=json.dumps(document))
    assert refused.value.response["Error"]["Code"] == "BadRequestException"
    assert {a["id"] for a in api.get_rest_apis()["items"]} == before


def test_given_a_merge_put_then_the_documents_methods_join_the_apis_and_the_others_stay(deployed: Deployed) -> None:
    api = deployed.harness.client("apigateway")
    rest_api_id = api.import_rest_api(body=json.dumps(swagger(narrowed_app)))["id"]
    addition = swagger(narrowed_app)
    addition["paths"] = {"/more": addition["paths"]["/echo"]}
    api.put_rest_api(restApiId=rest_api_id, mode="merge", body=json.dumps(addition))
    assert {r["path"] for r in api.get_resources(restApiId=rest_api_id)["items"]} == {"/", "/echo", "/more"}


# -- the data plane: Lambda proxy -----------------------------------------------------------------


def test_given_a_public_route_when_requested_then_the_function_gets_api_gateways_proxy_event(
    deployed: Deployed,
) -> None:
    response = httpx.get(deployed.url("/echo?a=1&a=2&b=x"), headers={"X-Custom": "yes"}, timeout=10)
    assert response.status_code == 200
    event = response.json()
    assert (event["resource"], event["path"], event["httpMethod"]) == ("/echo", "/echo", "GET")
    assert event["headers"]["X-Custom"] == "yes" and event["multiValueHeaders"]["X-Custom"] == ["yes"]
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert event["queryStringParameters"] == {"a": "2", "b": "x"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x"]}
    assert (event["pathParameters"], event["stageVariables"], event["body"], event["isBase64Encoded"]) == (
        None,
        None,
        None,
        False,
    )
    context = event["requestContext"]
    assert (context["stage"], context["resourcePath"], context["httpMethod"]) == ("api", "/echo", "GET")
    assert (context["apiId"], context["accountId"], context["path"]) == (deployed.api_id, ACCOUNT_ID, "/api/echo")
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["requestId"] == response.headers["x-amzn-RequestId"]
    assert "authorizer" not in context


def test_given_a_route_with_a_parameter_then_the_function_gets_the_path_parameter_and_the_resource(
    deployed: Deployed,
) -> None:
    response = httpx.get(deployed.url("/items/42"), timeout=10)
    assert response.status_code == 200
    answer = response.json()
    assert answer["item_id"] == "42"
    assert (answer["event"]["resource"], answer["event"]["path"]) == ("/items/{item_id}", "/items/42")
    assert answer["event"]["pathParameters"] == {"item_id": "42"}


def test_given_a_function_that_fails_then_502_and_a_handler_chalice_catches_then_chalices_own_500(
    deployed: Deployed,
) -> None:
    failed = httpx.get(deployed.url("/broken"), timeout=10)
    assert (failed.status_code, failed.content) == (502, INTERNAL_SERVER_ERROR)
    assert failed.headers["x-amzn-ErrorType"] == "InternalServerErrorException"
    answered = httpx.get(deployed.url("/raises"), timeout=10)
    assert answered.status_code == 500 and answered.json()["Code"] == "InternalServerError"


def test_given_a_binary_body_then_it_reaches_the_function_base64_and_returns_as_bytes_when_accepted(
    deployed: Deployed,
) -> None:
    payload = bytes([0, 255, 16, 128])
    headers = {"Content-Type": "application/octet-stream", "Accept": "application/octet-stream"}
    response = httpx.post(deployed.url("/blob"), content=payload, headers=headers, timeout=10)
    assert (response.status_code, response.content) == (200, payload)


def test_given_a_cors_route_when_preflighted_then_the_mock_answers_chalices_headers_without_an_invocation(
    deployed: Deployed,
) -> None:
    before = api_reports(deployed.harness)
    response = httpx.options(deployed.url("/echo"), timeout=10)
    assert response.status_code == 200
    integration = swagger(app)["paths"]["/echo"]["options"]["x-amazon-apigateway-integration"]
    for parameter, value in integration["responses"]["default"]["responseParameters"].items():
        assert response.headers[parameter.removeprefix("method.response.header.")] == value.strip("'")
    assert api_reports(deployed.harness) == before


def test_given_no_route_no_method_or_no_stage_then_api_gateways_refusals(deployed: Deployed) -> None:
    for unknown in (httpx.get(deployed.url("/nowhere"), timeout=10), httpx.delete(deployed.url("/echo"), timeout=10)):
        assert (unknown.status_code, unknown.content) == (403, b'{"message":"Missing Authentication Token"}')
        assert unknown.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    no_stage = httpx.get(deployed.url("/echo", stage="nostage"), timeout=10)
    assert (no_stage.status_code, no_stage.json()) == (403, {"message": "Forbidden"})
    no_api = httpx.get(deployed.url("/echo", api_id="noapi12345"), timeout=10)
    assert no_api.status_code == 404


def test_given_an_api_with_a_resource_policy_then_it_is_refused_rather_than_served_unevaluated(
    deployed: Deployed,
) -> None:
    document = swagger(narrowed_app)
    statement = {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}
    document["x-amazon-apigateway-policy"] = {"Version": "2012-10-17", "Statement": [statement]}
    rest_api_id = chalice_deploy(deployed.chalice, document)
    response = httpx.get(deployed.url("/echo", api_id=rest_api_id), timeout=10)
    assert (response.status_code, response.headers["x-amzn-ErrorType"]) == (403, "AccessDeniedException")


# -- the data plane: the TOKEN authorizer and the gateway responses make deploy configured --------


def test_given_an_authorized_route_without_the_token_header_then_401_with_the_stages_gateway_response(
    deployed: Deployed,
) -> None:
    before = len(authorizer_tokens)
    response = httpx.get(deployed.url("/private"), timeout=10)
    assert response.status_code == 401
    assert response.json() == error_body("unauthorized", "A valid bearer token is required", response)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["x-amzn-ErrorType"] == "UnauthorizedException"
    assert len(authorizer_tokens) == before  # THEN the authorizer was not invoked


def test_given_an_allowed_token_when_requested_twice_within_the_ttl_then_one_authorizer_invocation_and_its_context(
    deployed: Deployed,
) -> None:
    token = f"good-{uuid.uuid4()}"
    first = httpx.get(deployed.url("/private"), headers={"Authorization": token}, timeout=10)
    second = httpx.get(deployed.url("/private"), headers={"Authorization": token}, timeout=10)
    assert (first.status_code, second.status_code) == (200, 200)
    assert authorizer_tokens.count(token) == 1
    seen = first.json()["authorizer"]
    assert {k: seen[k] for k in ("principalId", "tier", "level")} == {
        "principalId": "user-1",
        "tier": "gold",
        "level": "3",
    }
    assert isinstance(seen["integrationLatency"], int)


def test_given_a_deny_policy_or_one_not_naming_the_route_then_403_access_denied(deployed: Deployed) -> None:
    for token in ("deny-1", "narrow-1"):
        response = httpx.get(deployed.url("/private"), headers={"Authorization": token}, timeout=10)
        assert response.status_code == 403, token
        assert response.json() == error_body("forbidden", "The token was refused", response)
        assert response.headers["x-amzn-ErrorType"] == "AccessDeniedException"


def test_given_an_authorizer_raising_unauthorized_then_401_and_failing_otherwise_then_500(deployed: Deployed) -> None:
    unauthorized = httpx.get(deployed.url("/private"), headers={"Authorization": "raise-unauthorized"}, timeout=10)
    assert unauthorized.status_code == 401
    failed = httpx.get(deployed.url("/private"), headers={"Authorization": "crash"}, timeout=10)
    assert (failed.status_code, failed.content) == (500, b'{"message":null}')
    assert failed.headers["x-amzn-ErrorType"] == "AuthorizerConfigurationException"


def test_given_stage_throttling_when_the_burst_is_spent_then_429_with_the_throttled_gateway_response(
    deployed: Deployed,
) -> None:
    api = deployed.harness.client("apigateway")
    api.create_deployment(restApiId=deployed.api_id, stageName="tight")
    api.update_stage(
        restApiId=deployed.api_id,
        stageName="tight",
        patchOperations=[  # one token back per 100 s: the third request finds the bucket empty
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "0.01"},
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "2"},
        ],
    )
    answers = [httpx.get(deployed.url("/items/1", stage="tight"), timeout=10) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json() == error_body("throttled", "Too many requests; retry with backoff", answers[2])
    assert httpx.get(deployed.url("/items/1"), timeout=10).status_code == 200  # THEN other stages are not affected
    # WHEN the stage is deployed again THEN it keeps its throttling (AWS does; moto alone replaces the stage)
    api.create_deployment(restApiId=deployed.api_id, stageName="tight")
    assert httpx.get(deployed.url("/items/1", stage="tight"), timeout=10).status_code == 429


def test_given_iam_enforced_when_api_gateways_permission_is_removed_then_500_as_api_gateway_answers(
    deployed: Deployed,
) -> None:
    lam = deployed.harness.client("lambda")
    authorizer = enforcement.Authorizer()
    enforcement.activate(authorizer)
    try:
        assert httpx.get(deployed.url("/items/7"), timeout=10).status_code == 200  # chalice's permission allows it
        for statement in json.loads(lam.get_policy(FunctionName=API_FUNCTION)["Policy"])["Statement"]:
            lam.remove_permission(FunctionName=API_FUNCTION, StatementId=statement["Sid"])
        refused = httpx.get(deployed.url("/items/7"), timeout=10)
        assert (refused.status_code, refused.content) == (500, INTERNAL_SERVER_ERROR)
        denied = authorizer.ledger.report()["denied"]
        assert [(d["principal"], d["action"]) for d in denied] == [
            ("apigateway.amazonaws.com", "lambda:InvokeFunction")
        ]
    finally:
        enforcement.deactivate(authorizer)
        deployed.chalice.add_permission_for_apigateway(API_FUNCTION, REGION, ACCOUNT_ID, deployed.api_id)


def test_given_iam_enforced_when_the_authorizers_permission_is_removed_then_500_authorizer_configuration_error(
    deployed: Deployed,
) -> None:
    lam = deployed.harness.client("lambda")
    authorizer = enforcement.Authorizer()
    enforcement.activate(authorizer)
    try:
        for statement in json.loads(lam.get_policy(FunctionName=AUTH_FUNCTION)["Policy"])["Statement"]:
            lam.remove_permission(FunctionName=AUTH_FUNCTION, StatementId=statement["Sid"])
        response = httpx.get(deployed.url("/private"), headers={"Authorization": f"good-{uuid.uuid4()}"}, timeout=10)
        assert (response.status_code, response.content) == (500, b'{"message":null}')
    finally:
        enforcement.deactivate(authorizer)
        deployed.chalice.add_permission_for_apigateway(AUTH_FUNCTION, REGION, ACCOUNT_ID, deployed.api_id)


def test_given_a_method_requiring_an_api_key_then_only_an_enabled_key_of_a_plan_for_the_stage_passes(
    deployed: Deployed,
) -> None:
    api = deployed.harness.client("apigateway")
    value = f"key-{uuid.uuid4()}"
    key = api.create_api_key(name="client", enabled=True, value=value)
    outside = api.create_api_key(name="outsider", enabled=True, value=f"other-{uuid.uuid4()}")
    plan = api.create_usage_plan(name="plan", apiStages=[{"apiId": deployed.api_id, "stage": "api"}])
    api.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    missing = httpx.get(deployed.url("/keyed"), timeout=10)
    assert (missing.status_code, missing.json(), missing.headers["x-amzn-ErrorType"]) == (
        403,
        {"message": "Forbidden"},
        "ForbiddenException",
    )
    not_in_plan = httpx.get(deployed.url("/keyed"), headers={"x-api-key": outside["value"]}, timeout=10)
    assert not_in_plan.status_code == 403
    allowed = httpx.get(deployed.url("/keyed"), headers={"x-api-key": value}, timeout=10)
    assert (allowed.status_code, allowed.json()) == (200, {"api_key": value})


# -- a later chalice deploy: put_rest_api overwrite -----------------------------------------------


def test_given_a_redeploy_with_fewer_routes_then_the_stage_serves_them_from_its_new_deployment_only(
    deployed: Deployed,
) -> None:
    rest_api_id = chalice_deploy(deployed.chalice, swagger(app))
    assert httpx.get(deployed.url("/items/5", api_id=rest_api_id), timeout=10).status_code == 200
    deployed.chalice.update_api_from_swagger(rest_api_id, swagger(narrowed_app))  # mode=overwrite
    # THEN until the next deployment the stage still serves the old definition, as on AWS
    assert httpx.get(deployed.url("/items/5", api_id=rest_api_id), timeout=10).status_code == 200
    chalice_deploy(deployed.chalice, swagger(narrowed_app), rest_api_id)
    paths = {r["path"] for r in deployed.harness.client("apigateway").get_resources(restApiId=rest_api_id)["items"]}
    assert paths == {"/", "/echo"}
    assert httpx.get(deployed.url("/items/5", api_id=rest_api_id), timeout=10).status_code == 403
    assert httpx.get(deployed.url("/echo", api_id=rest_api_id), timeout=10).status_code == 200


def test_given_create_deployment_with_tracing_then_the_stage_traces_and_a_later_deployment_keeps_it() -> None:
    from localstage import apigateway
    from localstage.patches import Patches
    from localstage.server import EmbeddedAws

    with Patches() as patches:
        apigateway.install(patches)
        aws = EmbeddedAws(port=0).start(environ={})
        try:
            api = boto3.session.Session(
                aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
            ).client("apigateway", endpoint_url=aws.endpoint)
            rest_api_id = api.create_rest_api(name="traced")["id"]
            root = api.get_resources(restApiId=rest_api_id)["items"][0]["id"]
            api.put_method(restApiId=rest_api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
            api.put_integration(restApiId=rest_api_id, resourceId=root, httpMethod="GET", type="MOCK")
            # WHEN deployed as chalice deploy does, with tracing, then again without saying
            api.create_deployment(restApiId=rest_api_id, stageName="api", tracingEnabled=True)
            assert api.get_stage(restApiId=rest_api_id, stageName="api")["tracingEnabled"] is True
            api.create_deployment(restApiId=rest_api_id, stageName="api")
            assert api.get_stage(restApiId=rest_api_id, stageName="api")["tracingEnabled"] is True
        finally:
            aws.stop()
