"""The stage's hooks on moto's Step Functions tasks, through moto's own interpreter (in process).

A Task state's call is made by moto's interpreter with a client of its own (``boto_client_for``):
the stage makes it act as the execution's role (``localstage/iam/stage.py``) and carry the
execution's trace header (``localstage/xray_moto.py``). The order workflow's tasks are all Lambda
invokes, so the service-integration path and the two trace hooks are proved here, each alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localstage import xray_moto
from localstage.iam.principals import Acting, current
from localstage.iam.stage import WorkflowSessions, install_workflow_principal
from localstage.patches import Patches
from localstage.xray import HEADER, ServiceTracing, XRayDaemon, child_header, new_segment_id, new_trace_id

pytestmark = pytest.mark.integration

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/workflow"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:task"


@pytest.fixture
def sfn() -> Iterator[Any]:
    """GIVEN moto running executions in process."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name=REGION)


def _run(sfn: Any, task: dict[str, Any], start: Callable[..., Any] | None = None, name: str = "run") -> dict[str, Any]:
    """One execution of a one-Task machine (``start``: the StartExecution call), to its end."""
    definition = {"StartAt": "Task", "States": {"Task": {"Type": "Task", **task, "End": True}}}
    machine = sfn.create_state_machine(name=f"m-{name}", definition=json.dumps(definition), roleArn=ROLE)
    arn = (start or sfn.start_execution)(stateMachineArn=machine["stateMachineArn"], name=name)["executionArn"]
    deadline = time.monotonic() + 20
    while (execution := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not end"
        time.sleep(0.05)
    return dict(execution)


def test_given_a_service_integration_task_when_it_runs_then_its_call_is_made_as_the_execution_role(
    sfn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.models import DynamoDBBackend

    # GIVEN the workflow principal installed, and DynamoDB noting who each PutItem acts for
    callers: list[Acting | None] = []
    put_item = DynamoDBBackend.put_item
    monkeypatch.setattr(
        DynamoDBBackend, "put_item", lambda self, *a, **k: callers.append(current()) or put_item(self, *a, **k)
    )
    db = boto3.client("dynamodb", region_name=REGION)
    key = [{"AttributeName": "pk", "KeyType": "HASH"}]
    db.create_table(
        TableName="t",
        KeySchema=key,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with Patches() as patches:
        install_workflow_principal(patches, WorkflowSessions(lambda: boto3.client("sts", region_name=REGION)))
        # WHEN a state machine's direct DynamoDB integration runs
        put = {
            "Resource": "arn:aws:states:::dynamodb:putItem",
            "Parameters": {"TableName": "t", "Item": {"pk": {"S": "x"}}},
        }
        execution = _run(sfn, put)
    # THEN the item was written by a session of the execution's role, not with the interpreter's fixed keys
    assert execution["status"] == "SUCCEEDED", execution
    assert [caller.role_arn if caller else None for caller in callers] == [ROLE]


@pytest.fixture
def invokes(sfn: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str | None]]:
    """GIVEN the X-Ray hooks, and Lambda answering every invoke with ``{}``, noting its trace header."""
    from moto.awslambda.models import LambdaBackend

    headers: list[str | None] = []

    def invoke(self: Any, name: str, qualifier: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
        headers.append(request_headers.get(HEADER))
        return b"{}"

    monkeypatch.setattr(LambdaBackend, "invoke", invoke)
    tracing = ServiceTracing(XRayDaemon(boto3.client("xray", region_name=REGION)), REGION, "123456789012")
    with Patches() as patches:
        xray_moto.install(patches, tracing)
        yield headers


def _traced_start(sfn: Any, header: str) -> Callable[..., Any]:
    def start(**kwargs: Any) -> Any:
        def add_header(request: Any, **_: Any) -> None:  # what the X-Ray SDK's botocore patch does
            request.headers[HEADER] = header

        sfn.meta.events.register("before-send.states.StartExecution", add_header)
        try:
            return sfn.start_execution(**kwargs)
        finally:
            sfn.meta.events.unregister("before-send.states.StartExecution", add_header)

    return start


def test_given_a_traced_execution_when_its_lambda_task_runs_then_the_invoke_carries_its_trace(
    sfn: Any, invokes: list[str | None]
) -> None:
    # GIVEN an execution started inside a trace
    trace_id = new_trace_id()
    # WHEN its Lambda task runs, and then a task of an execution started outside any trace
    assert (
        _run(sfn, {"Resource": FUNCTION}, _traced_start(sfn, child_header(trace_id, new_segment_id())))["status"]
        == "SUCCEEDED"
    )
    assert _run(sfn, {"Resource": FUNCTION}, name="untraced")["status"] == "SUCCEEDED"
    # THEN the first invoke carries a header of that trace (the execution's segment), the second a trace of its own
    assert len(invokes) == 2 and all(invokes), invokes
    assert f"Root={trace_id}" in str(invokes[0]) and f"Root={trace_id}" not in str(invokes[1]), invokes


def test_given_many_lambda_tasks_when_they_run_then_moto_builds_one_client_for_them(
    sfn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    built: list[str] = []
    original = lambda_eval_utils.boto_client_for
    monkeypatch.setattr(
        lambda_eval_utils,
        "boto_client_for",
        lambda region, service, creds=None: built.append(service) or original(region, service, creds),
    )
    from moto.awslambda.models import LambdaBackend

    monkeypatch.setattr(LambdaBackend, "invoke", lambda self, *args: b"{}")
    tracing = ServiceTracing(XRayDaemon(boto3.client("xray", region_name=REGION)), REGION, "123456789012")
    with Patches() as patches:
        xray_moto.install(patches, tracing)
        # WHEN three executions each run a Lambda task
        for n in range(3):
            assert _run(sfn, {"Resource": FUNCTION}, name=f"run-{n}")["status"] == "SUCCEEDED"
    # THEN moto's interpreter built one Lambda client (about 5 ms of CPU each), not one per task
    assert built == ["lambda"]
