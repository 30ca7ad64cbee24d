"""What ``chalice deploy --stage dev`` leaves behind, built in moto as chalice builds it: the deploy-script tests' stage.

Shared by test_deploy_script.py (what ``finish`` configures) and test_deploy_script_steps.py (prepare, outputs,
destroy, and the resource stack's own failures), so each test module stays about one subject.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from infra.template import access_log_group_name

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


def log_groups(session: boto3.session.Session, name: str) -> list[dict[str, Any]]:
    groups = session.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    return [g for g in groups if g["logGroupName"] == name]


def throttling(api: Any, rest_api_id: str) -> dict[str, tuple[float, int, bool]]:
    """The stage ``api``'s method settings: rate, burst and metrics, by method path."""
    settings = api.get_stage(restApiId=rest_api_id, stageName="api").get("methodSettings", {})
    return {
        path: (s["throttlingRateLimit"], s["throttlingBurstLimit"], s["metricsEnabled"]) for path, s in settings.items()
    }


def resource_stack(session: boto3.session.Session, outputs: dict[str, str]) -> None:
    """A stand-in for the resource stack: only its outputs matter to prepare (moto cannot create the real one)."""
    template = {
        "Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {f"Out{i}": {"Description": var, "Value": value} for i, (var, value) in enumerate(outputs.items())},
    }
    session.client("cloudformation").create_stack(
        StackName=f"{APP}-{STAGE}-resources", TemplateBody=json.dumps(template)
    )
