"""``make deploy``'s own steps (``scripts/deploy.py``) against moto in-process.

``finish`` runs on what ``chalice deploy --stage dev`` leaves behind, built here as chalice builds it
(chalice/deploy/appgraph.py, planner.py, deployer.py): functions under chalice's deploy names, a REST
API named after the app alone with the stage ``api``, SQS mappings created with the function's ARN,
and chalice's state file in a temporary project. Another stage's REST API of the same name sits in
the same account, created first, so that finding the API by name would configure the wrong one.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, WaiterError
from chalice.config import Config
from chalice.deploy import models
from chalice.deploy.appgraph import ApplicationGraphBuilder, DependencyBuilder
from moto import mock_aws

import scripts.deploy as deploy
import scripts.deploy_finish as deploy_finish
from infra.gateway import ACCESS_LOG_FORMAT
from infra.package import LOG_RETENTION_DAYS
from infra.template import access_log_group_name
from scripts.deploy import DeployError, deploy_resources, destroy, finish, invoke_url, main, outputs, prepare

pytestmark = pytest.mark.integration

STAGE = "dev"
APP = "ecommerce-backend"
API_FUNCTION = f"{APP}-{STAGE}"  # chalice deploy: the API handler is <app>-<stage>, the others <app>-<stage>-<name>
API_LOG_GROUP = f"/aws/lambda/{API_FUNCTION}"  # where Lambda writes the API handler's logs
CHALICE_API_LOG_GROUP = f"/aws/lambda/{APP}-{STAGE}-api_handler"  # what chalice deploy would create instead
QUEUES = {  # handler -> the stage's queue it consumes (app.py, infra/pipeline.py)
    "process_order": f"{APP}-order-processing-{STAGE}",
    "route_notification_events": f"{APP}-notification-events-{STAGE}",
    "recheck_payment": f"{APP}-payment-rechecks-{STAGE}",
}
ASYNC_INVOKE_DLQ = f"{APP}-async-invoke-dlq-{STAGE}"
ASYNC_FUNCTIONS = (f"{APP}-{STAGE}-send_notification", f"{APP}-{STAGE}-handle_workflow_event")


@dataclass
class ChaliceDeployed:
    """What ``chalice deploy`` left: ids to look at, and its state file to edit."""

    session: boto3.session.Session
    project: Path
    rest_api_id: str
    other_stage_rest_api_id: str
    function_arns: dict[str, str]
    mappings: dict[str, str] = field(default_factory=dict)  # handler -> mapping UUID
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def state_file(self) -> Path:
        return self.project / ".chalice" / "deployed" / f"{STAGE}.json"

    def write_state(self) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(self.state, indent=2))

    def drop_from_state(self, name: str) -> None:
        self.state["resources"] = [r for r in self.state["resources"] if r["name"] != name]
        self.write_state()


def _code() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def _rest_api(api: Any) -> str:
    """A REST API as chalice deploy leaves it: named after the app, deployed to the stage ``api``.

    chalice imports a swagger document whose title is the app name; moto's import_rest_api requires
    an ``info.description`` chalice does not write, so the API is created directly, with one method.
    """
    rest_api_id = api.create_rest_api(name=APP)["id"]
    root = api.get_resources(restApiId=rest_api_id)["items"][0]["id"]
    api.put_method(restApiId=rest_api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    api.put_integration(restApiId=rest_api_id, resourceId=root, httpMethod="GET", type="MOCK")
    api.create_deployment(restApiId=rest_api_id, stageName="api")
    return str(rest_api_id)


def chalice_deploy(session: boto3.session.Session, project: Path) -> ChaliceDeployed:
    lam, sqs, api = session.client("lambda"), session.client("sqs"), session.client("apigateway")
    other_stage = _rest_api(api)  # prod's API: same name, created first
    role = session.client("iam").create_role(RoleName=f"{APP}-{STAGE}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    names = {"api_handler": API_FUNCTION} | {
        h: f"{APP}-{STAGE}-{h}" for h in ("send_notification", "handle_workflow_event", *QUEUES)
    }
    arns = {
        handler: lam.create_function(
            FunctionName=name, Runtime="python3.11", Role=role, Handler="app.handler", Code={"ZipFile": _code()}
        )["FunctionArn"]
        for handler, name in names.items()
    }
    resources: list[dict[str, Any]] = [
        {"name": handler, "resource_type": "lambda_function", "lambda_arn": arn} for handler, arn in arns.items()
    ]
    sqs.create_queue(QueueName=ASYNC_INVOKE_DLQ)
    session.client("logs").create_log_group(logGroupName=access_log_group_name(STAGE))  # the resource stack's
    mappings = {}
    for handler, queue in QUEUES.items():
        url = sqs.create_queue(QueueName=queue)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        # chalice's create_lambda_event_source passes the function's ARN as FunctionName
        uuid = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=arns[handler], BatchSize=10)[
            "UUID"
        ]
        mappings[handler] = uuid
        resources.append(
            {
                "name": f"{handler}-sqs-event-source",
                "resource_type": "sqs_event",
                "queue_arn": queue_arn,
                "event_uuid": uuid,
                "queue": queue,
                "lambda_arn": arns[handler],
            }
        )
    rest_api_id = _rest_api(api)
    resources.append(
        {
            "name": "rest_api",
            "resource_type": "rest_api",
            "rest_api_id": rest_api_id,
            "rest_api_url": f"https://{rest_api_id}.execute-api.us-east-1.amazonaws.com/api/",
        }
    )
    deployed = ChaliceDeployed(
        session=session,
        project=project,
        rest_api_id=rest_api_id,
        other_stage_rest_api_id=other_stage,
        function_arns=arns,
        mappings=mappings,
        state={"resources": resources, "schema_version": "2.0", "backend": "api"},
    )
    deployed.write_state()
    return deployed


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[ChaliceDeployed]:
    with mock_aws():
        yield chalice_deploy(boto3.session.Session(region_name="us-east-1"), tmp_path / "deploy")


def _log_groups(session: boto3.session.Session, name: str) -> list[dict[str, Any]]:
    groups = session.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    return [g for g in groups if g["logGroupName"] == name]


def _throttling(api: Any, rest_api_id: str) -> dict[str, tuple[float, int, bool]]:
    """The stage ``api``'s method settings: rate, burst and metrics, by method path."""
    settings = api.get_stage(restApiId=rest_api_id, stageName="api").get("methodSettings", {})
    return {
        path: (s["throttlingRateLimit"], s["throttlingBurstLimit"], s["metricsEnabled"]) for path, s in settings.items()
    }


# -- finish: what it configures -------------------------------------------------------------------


def test_given_two_stages_apis_of_one_name_when_finishing_dev_then_only_the_api_chalice_recorded_is_configured(
    deployed: ChaliceDeployed,
) -> None:
    finish(STAGE, deployed.session, deployed.project)

    api = deployed.session.client("apigateway")
    assert _throttling(api, deployed.rest_api_id) == {"*/*": (25.0, 50, True)}  # dev's, in STAGE_DEPLOYMENTS
    for kind, status in (("UNAUTHORIZED", "401"), ("ACCESS_DENIED", "403"), ("THROTTLED", "429")):
        response = api.get_gateway_response(restApiId=deployed.rest_api_id, responseType=kind)
        assert response["statusCode"] == status
        body = json.loads(response["responseTemplates"]["application/json"])
        assert set(body) == {"error", "message", "details", "request_id"}
        assert body["request_id"] == "$context.requestId"
    assert _throttling(api, deployed.other_stage_rest_api_id) == {}, "the other stage's API was configured"


def test_given_a_chalice_deployed_stage_when_finishing_then_the_api_handler_log_group_exists_with_the_package_retention(
    deployed: ChaliceDeployed,
) -> None:
    assert _log_groups(deployed.session, API_LOG_GROUP) == []

    finish(STAGE, deployed.session, deployed.project)

    [group] = _log_groups(deployed.session, API_LOG_GROUP)
    assert group["retentionInDays"] == LOG_RETENTION_DAYS == 14


def test_given_a_chalice_deployed_stage_when_finishing_then_both_sqs_mappings_report_batch_item_failures(
    deployed: ChaliceDeployed,
) -> None:
    finish(STAGE, deployed.session, deployed.project)

    lam = deployed.session.client("lambda")
    for handler, uuid in deployed.mappings.items():
        mapping = lam.get_event_source_mapping(UUID=uuid)
        assert mapping.get("FunctionResponseTypes") == ["ReportBatchItemFailures"], handler


def test_given_a_chalice_deployed_stage_when_finishing_then_async_functions_fail_into_the_async_invoke_dlq(
    deployed: ChaliceDeployed,
) -> None:
    finish(STAGE, deployed.session, deployed.project)

    dlq_arn = f"arn:aws:sqs:us-east-1:123456789012:{ASYNC_INVOKE_DLQ}"
    lam = deployed.session.client("lambda")
    for function in ASYNC_FUNCTIONS:
        config = lam.get_function_event_invoke_config(FunctionName=function)
        assert config["DestinationConfig"] == {"OnFailure": {"Destination": dlq_arn}}, function
        assert config["MaximumRetryAttempts"] == 2


def test_given_a_chalice_deployed_stage_when_finishing_then_access_logs_and_refusals_carry_cors_and_the_request_id(
    deployed: ChaliceDeployed,
) -> None:
    # GIVEN the stage's access log group (the resource stack's) and the API chalice deploy made
    api = deployed.session.client("apigateway")
    # WHEN finish runs
    finish(STAGE, deployed.session, deployed.project)
    # THEN the stage writes one JSON line per request to that group
    settings = api.get_stage(restApiId=deployed.rest_api_id, stageName="api")["accessLogSettings"]
    assert settings["destinationArn"].endswith(f":log-group:{access_log_group_name(STAGE)}")
    assert settings["format"] == ACCESS_LOG_FORMAT and json.loads(settings["format"])["requestId"]
    # AND the gateway's own refusals carry dev's CORS origin and the request id in X-Request-Id
    for kind in ("UNAUTHORIZED", "ACCESS_DENIED", "THROTTLED"):
        parameters = api.get_gateway_response(restApiId=deployed.rest_api_id, responseType=kind)["responseParameters"]
        assert parameters == {
            "gatewayresponse.header.Access-Control-Allow-Origin": "'*'",
            "gatewayresponse.header.X-Request-Id": "context.requestId",
        }


def _domain_settings(tmp_path: Path) -> tuple[Path, str]:
    """A settings file with a custom domain, and the id of the hosted zone it names."""
    zone = boto3.client("route53", region_name="us-east-1").create_hosted_zone(Name="example.com", CallerReference="t")
    zone_id = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]
    certificate = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
    path = tmp_path / "dev-settings.json"
    path.write_text(json.dumps({"domain": "example.com", "certificate_arn": certificate, "hosted_zone_id": zone_id}))
    return path, zone_id


def test_given_a_custom_domain_when_finishing_then_api_dev_maps_v1_to_the_api_and_route53_points_at_it(
    deployed: ChaliceDeployed, tmp_path: Path
) -> None:
    # GIVEN a domain in the stage settings, its hosted zone, and the API chalice deploy made
    settings, zone_id = _domain_settings(tmp_path)
    api, route53 = deployed.session.client("apigateway"), deployed.session.client("route53")
    # WHEN finish runs, twice (nothing changes the second time)
    for _ in range(2):
        assert main(["finish", "--stage", STAGE, "--project", str(deployed.project), "--settings", str(settings)]) == 0
    # THEN api.dev.example.com exists with the certificate, edge-optimized, TLS 1.2
    domain = api.get_domain_name(domainName="api.dev.example.com")
    assert domain["certificateArn"] == "arn:aws:acm:us-east-1:123456789012:certificate/abc"
    assert domain["securityPolicy"] == "TLS_1_2"
    # AND its base path v1 maps to the stage api of the API chalice deploy recorded, once
    [mapping] = api.get_base_path_mappings(domainName="api.dev.example.com")["items"]
    assert (mapping["basePath"].strip("/"), mapping["restApiId"], mapping["stage"]) == (
        "v1",
        deployed.rest_api_id,
        "api",
    )
    # AND the zone has one alias A record of the name to the domain's distribution
    records = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    [record] = [r for r in records if r["Type"] == "A"]
    assert record["Name"].rstrip(".") == "api.dev.example.com"
    assert record["AliasTarget"]["DNSName"].rstrip(".") == domain["distributionDomainName"]
    assert record["AliasTarget"]["HostedZoneId"] == domain["distributionHostedZoneId"]
    # WHEN make destroy unmaps it (before chalice delete), twice: nothing left is no error
    for _ in range(2):
        assert main(["unmap", "--stage", STAGE, "--settings", str(settings)]) == 0
    # THEN the record and the domain are gone
    assert not [
        r for r in route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"] if r["Type"] == "A"
    ]
    with pytest.raises(ClientError, match="NotFound"):
        api.get_domain_name(domainName="api.dev.example.com")


def test_given_no_domain_when_finishing_then_no_domain_name_or_record_is_made(deployed: ChaliceDeployed) -> None:
    finish(STAGE, deployed.session, deployed.project)
    assert deployed.session.client("apigateway").get_domain_names().get("items", []) == []


def test_given_a_finished_stage_when_finishing_again_then_it_succeeds_and_the_configuration_is_unchanged(
    deployed: ChaliceDeployed,
) -> None:
    lam, api = deployed.session.client("lambda"), deployed.session.client("apigateway")

    def configuration() -> tuple[Any, ...]:
        return (
            _log_groups(deployed.session, API_LOG_GROUP)[0]["retentionInDays"],
            [lam.get_event_source_mapping(UUID=u).get("FunctionResponseTypes") for u in deployed.mappings.values()],
            [lam.get_function_event_invoke_config(FunctionName=f)["DestinationConfig"] for f in ASYNC_FUNCTIONS],
            api.get_stage(restApiId=deployed.rest_api_id, stageName="api")["methodSettings"],
            api.get_gateway_response(restApiId=deployed.rest_api_id, responseType="THROTTLED")["responseTemplates"],
        )

    assert main(["finish", "--stage", STAGE, "--project", str(deployed.project)]) == 0
    first = configuration()
    assert main(["finish", "--stage", STAGE, "--project", str(deployed.project)]) == 0

    assert configuration() == first
    assert len(_log_groups(deployed.session, API_LOG_GROUP)) == 1


def test_given_the_group_an_earlier_chalice_deploy_made_under_the_chalice_name_when_finishing_then_it_is_deleted(
    deployed: ChaliceDeployed,
) -> None:
    logs = deployed.session.client("logs")
    logs.create_log_group(logGroupName=CHALICE_API_LOG_GROUP)  # made by a chalice deploy before prepare stopped it

    finish(STAGE, deployed.session, deployed.project)

    assert _log_groups(deployed.session, CHALICE_API_LOG_GROUP) == []


def test_given_chalice_state_still_records_the_misnamed_group_when_finishing_then_it_is_kept_for_chalice_to_release(
    deployed: ChaliceDeployed, capsys: pytest.CaptureFixture[str]
) -> None:
    # Deleting it now would make chalice's next deploy fail: it drops the retention of groups it forgets.
    deployed.session.client("logs").create_log_group(logGroupName=CHALICE_API_LOG_GROUP)
    deployed.state["resources"].append(
        {"name": "api_handler-log-group", "resource_type": "log_group", "log_group_name": CHALICE_API_LOG_GROUP}
    )
    deployed.write_state()

    finish(STAGE, deployed.session, deployed.project)

    assert len(_log_groups(deployed.session, CHALICE_API_LOG_GROUP)) == 1
    assert f"kept {CHALICE_API_LOG_GROUP}" in capsys.readouterr().err


# -- finish: what it cannot find --------------------------------------------------------------------


def _delete_mapping(deployed: ChaliceDeployed) -> None:
    deployed.session.client("lambda").delete_event_source_mapping(UUID=deployed.mappings["process_order"])


def _map_queue_to_another_function(deployed: ChaliceDeployed) -> None:
    """The queue still has a mapping, but to another function: it does not count."""
    lam = deployed.session.client("lambda")
    queue_arn = lam.get_event_source_mapping(UUID=deployed.mappings["process_order"])["EventSourceArn"]
    lam.delete_event_source_mapping(UUID=deployed.mappings["process_order"])
    lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=deployed.function_arns["send_notification"])


def _delete_state_file(deployed: ChaliceDeployed) -> None:
    deployed.state_file.unlink()


def _delete_rest_api(deployed: ChaliceDeployed) -> None:
    deployed.session.client("apigateway").delete_rest_api(restApiId=deployed.rest_api_id)


def _delete_async_function(deployed: ChaliceDeployed) -> None:
    deployed.session.client("lambda").delete_function(FunctionName=ASYNC_FUNCTIONS[1])


def _delete_async_invoke_dlq(deployed: ChaliceDeployed) -> None:
    sqs = deployed.session.client("sqs")
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=ASYNC_INVOKE_DLQ)["QueueUrl"])


BROKEN: dict[str, tuple[Callable[[ChaliceDeployed], None], Callable[[ChaliceDeployed], list[str]]]] = {
    "mapping deleted": (_delete_mapping, lambda d: [QUEUES["process_order"], f"{APP}-{STAGE}-process_order"]),
    "mapping to another function": (
        _map_queue_to_another_function,
        lambda d: [QUEUES["process_order"], f"{APP}-{STAGE}-process_order"],
    ),
    "mapping missing from chalice state": (
        lambda d: d.drop_from_state("route_notification_events-sqs-event-source"),
        lambda d: ["SQS event source", f"{APP}-{STAGE}-route_notification_events", str(d.state_file)],
    ),
    "no state file": (_delete_state_file, lambda d: [str(d.state_file), "chalice deploy"]),
    "REST API missing from chalice state": (
        lambda d: d.drop_from_state("rest_api"),
        lambda d: ["REST API", str(d.state_file)],
    ),
    "REST API deleted": (_delete_rest_api, lambda d: ["REST API", d.rest_api_id]),
    "async function deleted": (_delete_async_function, lambda d: [ASYNC_FUNCTIONS[1]]),
    "async-invoke DLQ deleted": (_delete_async_invoke_dlq, lambda d: [ASYNC_INVOKE_DLQ, f"{APP}-{STAGE}-resources"]),
}


@pytest.mark.parametrize("broken", list(BROKEN))
def test_given_a_stage_missing_something_when_finishing_then_it_exits_1_naming_what_is_missing(
    deployed: ChaliceDeployed, broken: str, capsys: pytest.CaptureFixture[str]
) -> None:
    breaks, named = BROKEN[broken]
    breaks(deployed)

    status = main(["finish", "--stage", STAGE, "--project", str(deployed.project)])

    message = capsys.readouterr().err
    assert status == 1
    assert message.startswith(f"finish --stage {STAGE}: ") and "Traceback" not in message
    for fragment in named(deployed):
        assert fragment in message


# -- prepare, outputs, resources -------------------------------------------------------------------


def _resource_stack(session: boto3.session.Session, outputs: dict[str, str]) -> None:
    """A stand-in for the resource stack: only its outputs matter to prepare (moto cannot create the real one)."""
    template = {
        "Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {f"Out{i}": {"Description": var, "Value": value} for i, (var, value) in enumerate(outputs.items())},
    }
    session.client("cloudformation").create_stack(
        StackName=f"{APP}-{STAGE}-resources", TemplateBody=json.dumps(template)
    )


@pytest.fixture
def vendored(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """No pip: vendoring the X-Ray SDK is tested in test_package.py; here only that prepare asks for it."""
    projects: list[Path] = []
    monkeypatch.setattr(deploy, "vendor_packages", lambda project, architecture: projects.append(project))
    return projects


def _chalice_graph(project: Path) -> list[models.Model]:
    """The resources chalice deploy would make from ``project``, as its own appgraph builds them."""
    import app

    config = Config(
        chalice_stage=STAGE,
        user_provided_params={"chalice_app": app.app, "project_dir": str(project)},
        config_from_disk=json.loads((project / ".chalice" / "config.json").read_text()),
    )
    return DependencyBuilder().build_dependencies(ApplicationGraphBuilder().build(config, STAGE))


def test_given_the_resource_stack_when_preparing_then_the_api_log_group_exists_before_chalice_deploys_the_function(
    tmp_path: Path, vendored: list[Path]
) -> None:
    project = tmp_path / "deploy"
    state = project / ".chalice" / "deployed" / f"{STAGE}.json"
    state.parent.mkdir(parents=True)
    state.write_text('{"resources": [], "schema_version": "2.0"}')
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        _resource_stack(session, {"USER_POOL_ID": "us-east-1_example", "ORDERS_TABLE": f"{APP}-orders-{STAGE}"})

        assert prepare(STAGE, session, project) == project

        [group] = _log_groups(session, API_LOG_GROUP)
        assert group["retentionInDays"] == LOG_RETENTION_DAYS
        assert session.client("lambda").list_functions()["Functions"] == []
    assert vendored == [project]
    assert state.read_text() == '{"resources": [], "schema_version": "2.0"}', "chalice's state was not kept"


def test_given_the_prepared_project_when_chalice_builds_it_then_each_log_group_is_the_one_its_function_writes_to(
    tmp_path: Path, vendored: list[Path]
) -> None:
    project = tmp_path / "deploy"
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        _resource_stack(session, {"USER_POOL_ID": "us-east-1_example"})
        prepare(STAGE, session, project)

    resources = _chalice_graph(project)

    functions = [r for r in resources if isinstance(r, models.LambdaFunction)]
    groups = {r.log_group_name for r in resources if isinstance(r, models.LogGroup)}
    assert len(functions) > 10
    assert CHALICE_API_LOG_GROUP not in groups
    assert groups == {f"/aws/lambda/{f.function_name}" for f in functions if f.function_name != API_FUNCTION}
    assert all(r.retention_in_days == LOG_RETENTION_DAYS for r in resources if isinstance(r, models.LogGroup))


@pytest.mark.parametrize(
    ("argv", "outputs", "named"),
    [
        (["prepare"], None, f"no CloudFormation stack {APP}-{STAGE}-resources"),
        (["prepare"], {"ORDERS_TABLE": "t"}, "USER_POOL_ID"),
        (["outputs"], None, f"no CloudFormation stack {APP}-{STAGE}-resources"),
        (["outputs", "--stack", "ecommerce-backend-dev"], None, "no CloudFormation stack ecommerce-backend-dev "),
    ],
    ids=["prepare without the stack", "prepare without the pool output", "outputs without the stack", "sam stack"],
)
def test_given_a_missing_stack_or_output_when_running_a_step_then_it_exits_1_naming_it(
    argv: list[str],
    outputs: dict[str, str] | None,
    named: str,
    tmp_path: Path,
    vendored: list[Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    with mock_aws():
        if outputs is not None:
            _resource_stack(boto3.session.Session(region_name="us-east-1"), outputs)

        status = main([*argv, "--stage", STAGE, "--project", str(tmp_path / "deploy")])

    message = capsys.readouterr().err
    assert status == 1
    assert named in message and "Traceback" not in message
    assert vendored == [], "prepare spent its time on pip before finding out"


class _RollingBackCloudFormation:
    """CloudFormation whose new stacks roll back: moto completes every stack, so it cannot show this."""

    def __init__(self) -> None:
        self.created = False

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        if not self.created:
            error = {"Code": "ValidationError", "Message": f"Stack with id {StackName} does not exist"}
            raise ClientError({"Error": error}, "DescribeStacks")
        return {"Stacks": [{"StackName": StackName, "StackStatus": "ROLLBACK_COMPLETE"}]}

    def create_stack(self, **kwargs: Any) -> None:
        self.created = True

    def get_waiter(self, name: str) -> _RollingBackCloudFormation:
        return self

    def wait(self, StackName: str) -> None:
        raise WaiterError("StackCreateComplete", "Waiter encountered a terminal failure state", {})

    def get_paginator(self, name: str) -> _RollingBackCloudFormation:
        return self

    def paginate(self, StackName: str) -> list[dict[str, Any]]:
        """DescribeStackEvents: newest first, then an earlier, finished operation's failure."""

        def event(resource: str, status: str, reason: str = "") -> dict[str, str]:
            return {"LogicalResourceId": resource, "ResourceStatus": status, "ResourceStatusReason": reason}

        newest_first = [
            event(StackName, "ROLLBACK_COMPLETE"),
            event("OrdersTable", "DELETE_COMPLETE"),
            event("EventBus", "CREATE_FAILED", "Resource creation cancelled"),
            event("UserPool", "CREATE_FAILED", "Resource handler returned message: quota exceeded"),
            event("OrdersTable", "CREATE_COMPLETE"),
            event(StackName, "CREATE_IN_PROGRESS", "User Initiated"),
            event("OldResource", "UPDATE_FAILED", "an earlier operation's failure"),
        ]
        return [{"StackEvents": newest_first[:4]}, {"StackEvents": newest_first[4:]}]


class _Session:
    def __init__(self, cloudformation: _RollingBackCloudFormation) -> None:
        self._cloudformation = cloudformation

    def client(self, service: str) -> _RollingBackCloudFormation:
        assert service == "cloudformation"
        return self._cloudformation


def test_given_a_stack_that_rolls_back_when_deploying_resources_then_the_error_names_it_and_its_first_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the template's way to CloudFormation (inline or through S3) is tested with the embedded AWS
    monkeypatch.setattr(deploy, "_template_source", lambda stage, session, body: {"TemplateBody": body})
    with pytest.raises(DeployError) as raised:
        deploy_resources(STAGE, _Session(_RollingBackCloudFormation()))

    assert str(raised.value) == (
        f"stack {APP}-{STAGE}-resources ended ROLLBACK_COMPLETE: "
        "UserPool: Resource handler returned message: quota exceeded; EventBus: Resource creation cancelled"
    )


class _SettlingLambda:
    """A mapping Lambda is still creating: moto's are ready at once."""

    def __init__(self, states: list[str]) -> None:
        self.states = states

    def get_event_source_mapping(self, UUID: str) -> dict[str, Any]:
        return {"UUID": UUID, "State": self.states.pop(0)}


def test_given_a_mapping_still_being_created_when_waiting_then_it_polls_until_lambda_accepts_updates() -> None:
    lam, slept = _SettlingLambda(["Creating", "Enabled"]), list[float]()

    deploy_finish._wait_until_settled(lam, {"UUID": "u", "State": "Creating"}, slept.append)

    assert (slept, lam.states) == ([5, 5], [])


def test_given_a_mapping_that_never_settles_when_waiting_then_it_gives_up_naming_it() -> None:
    lam = _SettlingLambda(["Updating"] * 100)

    with pytest.raises(DeployError, match=r"event source mapping u still Updating after 120 s"):
        deploy_finish._wait_until_settled(lam, {"UUID": "u", "State": "Updating"}, lambda seconds: None)


# -- outputs and destroy ---------------------------------------------------------------------------


def test_given_the_control_plane_endpoint_then_the_invoke_url_is_awss_or_the_emulators_data_plane(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN AWS itself: the stage's execute-api host in the session's region
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws = boto3.session.Session(region_name="eu-west-1")
    assert invoke_url(aws, "abc123", "api") == "https://abc123.execute-api.eu-west-1.amazonaws.com/api/"
    # GIVEN an endpoint set with AWS_ENDPOINT_URL: the emulator's data plane, on the same endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    local = boto3.session.Session(region_name="us-east-1")
    assert invoke_url(local, "abc123", "api") == "http://127.0.0.1:4566/restapis/abc123/api/_user_request_/"


def test_given_a_deployed_stage_when_writing_outputs_then_the_environment_and_the_recorded_apis_url(
    deployed: ChaliceDeployed,
) -> None:
    _resource_stack(deployed.session, {"USER_POOL_ID": "us-east-1_pool", "ORDERS_TABLE": "orders"})
    written = outputs(STAGE, deployed.session, project=deployed.project)
    assert written["USER_POOL_ID"] == "us-east-1_pool" and written["ORDERS_TABLE"] == "orders"
    # THEN the URL of the API chalice recorded for this stage, not the other stage's of the same name
    assert written["api_url"] == f"https://{deployed.rest_api_id}.execute-api.us-east-1.amazonaws.com/api/"


def test_given_a_deployed_stage_when_destroying_twice_then_the_stack_and_the_api_log_group_are_gone(
    deployed: ChaliceDeployed,
) -> None:
    _resource_stack(deployed.session, {"USER_POOL_ID": "us-east-1_pool"})
    finish(STAGE, deployed.session, deployed.project)  # makes the API handler's log group
    assert _log_groups(deployed.session, API_LOG_GROUP)
    destroy(STAGE, deployed.session)
    cfn = deployed.session.client("cloudformation")
    with pytest.raises(ClientError, match="does not exist"):
        cfn.describe_stacks(StackName=f"{APP}-{STAGE}-resources")
    assert _log_groups(deployed.session, API_LOG_GROUP) == []
    destroy(STAGE, deployed.session)  # THEN a second run finds nothing to remove, and says nothing


def test_given_a_template_over_the_inline_limit_when_deploying_then_it_goes_through_s3_once_per_content() -> None:
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        big = json.dumps({"Resources": {}, "Padding": "x" * 60_000})
        # WHEN the same template is sent twice, and a small one once
        first = deploy._template_source(STAGE, session, big)
        again = deploy._template_source(STAGE, session, big)
        small = deploy._template_source(STAGE, session, json.dumps({"Resources": {}}))
        # THEN the big one is uploaded (under a key named by its content) and named by URL; the small one is inline
        bucket = deploy.template_bucket(session)
        assert first == again and set(first) == {"TemplateURL"}
        assert first["TemplateURL"].startswith(f"https://{bucket}.s3.us-east-1.amazonaws.com/{APP}-{STAGE}-resources/")
        assert small == {"TemplateBody": json.dumps({"Resources": {}})}
        s3 = session.client("s3")
        assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 1
        assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["BlockPublicPolicy"]
        # AND destroy removes the upload and the bucket it emptied
        destroy(STAGE, session)
        with pytest.raises(ClientError):
            s3.head_bucket(Bucket=bucket)


def test_given_a_parameter_the_template_does_not_declare_when_deploying_then_it_is_refused_naming_the_known_ones() -> (
    None
):
    with pytest.raises(DeployError, match="PaymentWaitSeconds"):
        deploy.parse_parameters(["PaymentWait=5"], {"PaymentWaitSeconds": {}})
    with pytest.raises(DeployError, match="Name=value"):
        deploy.parse_parameters(["PaymentWaitSeconds"], {"PaymentWaitSeconds": {}})
    declared = {"PaymentWaitSeconds": {"Default": 300}, "Other": {"Default": "x"}}
    assert deploy.parse_parameters(["PaymentWaitSeconds=5"], declared) == [
        {"ParameterKey": "PaymentWaitSeconds", "ParameterValue": "5"},
        {"ParameterKey": "Other", "ParameterValue": "x"},
    ]
