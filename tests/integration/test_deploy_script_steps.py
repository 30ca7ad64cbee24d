"""``make deploy``'s steps around ``finish`` (``scripts/deploy.py``) against moto in-process: prepare, the
resource stack (its rollbacks, its size, its parameters), waiting for mappings, outputs and destroy.

What ``finish`` configures on a chalice-deployed stage is in test_deploy_script.py; the stage both use is
tests/integration/deploy_chalice.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
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
from infra.package import LOG_RETENTION_DAYS
from scripts.deploy import DeployError, deploy_resources, destroy, finish, invoke_url, main, outputs, prepare
from tests.integration.deploy_chalice import (
    API_FUNCTION,
    API_LOG_GROUP,
    APP,
    CHALICE_API_LOG_GROUP,
    STAGE,
    ChaliceDeployed,
    chalice_deploy,
    log_groups,
    resource_stack,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[ChaliceDeployed]:
    with mock_aws():
        yield chalice_deploy(boto3.session.Session(region_name="us-east-1"), tmp_path / "deploy")


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
        resource_stack(session, {"USER_POOL_ID": "us-east-1_example", "ORDERS_TABLE": f"{APP}-orders-{STAGE}"})

        assert prepare(STAGE, session, project) == project

        [group] = log_groups(session, API_LOG_GROUP)
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
        resource_stack(session, {"USER_POOL_ID": "us-east-1_example"})
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
            resource_stack(boto3.session.Session(region_name="us-east-1"), outputs)

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
    resource_stack(deployed.session, {"USER_POOL_ID": "us-east-1_pool", "ORDERS_TABLE": "orders"})
    written = outputs(STAGE, deployed.session, project=deployed.project)
    assert written["USER_POOL_ID"] == "us-east-1_pool" and written["ORDERS_TABLE"] == "orders"
    # THEN the URL of the API chalice recorded for this stage, not the other stage's of the same name
    assert written["api_url"] == f"https://{deployed.rest_api_id}.execute-api.us-east-1.amazonaws.com/api/"


def test_given_a_deployed_stage_when_destroying_twice_then_the_stack_and_the_api_log_group_are_gone(
    deployed: ChaliceDeployed,
) -> None:
    resource_stack(deployed.session, {"USER_POOL_ID": "us-east-1_pool"})
    finish(STAGE, deployed.session, deployed.project)  # makes the API handler's log group
    assert log_groups(deployed.session, API_LOG_GROUP)
    destroy(STAGE, deployed.session)
    cfn = deployed.session.client("cloudformation")
    with pytest.raises(ClientError, match="does not exist"):
        cfn.describe_stacks(StackName=f"{APP}-{STAGE}-resources")
    assert log_groups(deployed.session, API_LOG_GROUP) == []
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
