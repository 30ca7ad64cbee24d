"""``make deploy STAGE=dev``: the ``chalice deploy`` path, for those who do not deploy the SAM package.

``chalice deploy`` creates functions, roles and the API, but not the stage's tables, queues, pool...
and cannot set what ``make package`` merges into the template. So, in order:

    python -m scripts.deploy resources --stage dev   # 1. the stage template as its own stack
    python -m scripts.deploy prepare --stage dev     # 2. build/<stage>/deploy: env = stack outputs, policies, vendor/
    (cd build/dev/deploy && chalice deploy --stage dev)  # 3. functions, roles, API
    python -m scripts.deploy finish --stage dev      # 4. what chalice deploy cannot configure
    python -m scripts.deploy outputs --stage dev > stage-outputs.json  # for `make admin`
    python -m scripts.deploy outputs --stage dev --stack ecommerce-backend-dev   # the SAM stack's

Step 4 sets ``ReportBatchItemFailures`` on the SQS mappings, the on-failure destination of the
asynchronously invoked functions, the API stage's throttling and its 401/403/429 error bodies.
Provisioned concurrency needs an alias that API Gateway invokes: only the packaged template has it.
``chalice deploy`` keeps its state in ``build/<stage>/deploy/.chalice/deployed``; ``prepare`` keeps it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import boto3

from infra.package import (
    DEFAULT_DEPLOYMENT,
    ROOT,
    STAGE_DEPLOYMENTS,
    app_functions,
    error_body,
    named_outputs,
    policy_file,
    write_project,
)
from infra.pipeline import ASYNC_HANDLERS, PARTIAL_BATCH_HANDLERS
from infra.policies import concrete, function_name, policy_document
from infra.template import APP, stage_template
from infra.vendor import VendorError, stage_architecture, vendor_packages

Json = dict[str, Any]


def stack_name(stage: str) -> str:
    return f"{APP}-{stage}-resources"


def deploy_resources(stage: str, session: boto3.session.Session) -> None:
    """Create or update the stack of the stage's resources, and wait for it."""
    cfn = session.client("cloudformation")
    template = stage_template(stage)
    template["Outputs"] = named_outputs(template["Outputs"])
    body = json.dumps(template)
    name = stack_name(stage)
    capabilities = ["CAPABILITY_NAMED_IAM"]  # the workflow's role has a name
    try:
        cfn.describe_stacks(StackName=name)
    except cfn.exceptions.ClientError:
        cfn.create_stack(StackName=name, TemplateBody=body, Capabilities=capabilities)
        cfn.get_waiter("stack_create_complete").wait(StackName=name)
        return
    try:
        cfn.update_stack(StackName=name, TemplateBody=body, Capabilities=capabilities)
    except cfn.exceptions.ClientError as exc:
        if "No updates are to be performed" in str(exc):
            return
        raise
    cfn.get_waiter("stack_update_complete").wait(StackName=name)


def stack_outputs(stack: str, session: boto3.session.Session) -> dict[str, str]:
    """The functions' environment from a stack's outputs (either path's: each names its variable)."""
    described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {
        o["Description"]: o["OutputValue"] for o in described.get("Outputs", []) if o.get("Description", "").isupper()
    }


def prepare(stage: str, session: boto3.session.Session) -> Path:
    """Write ``build/<stage>/deploy`` for ``chalice deploy``: concrete policies, the stack's outputs and
    the X-Ray SDK in ``vendor/`` (``infra.vendor``)."""
    project = ROOT / "build" / stage / "deploy"
    state = project / ".chalice" / "deployed"
    kept = ROOT / "build" / stage / "deployed.kept"
    if state.exists():
        shutil.rmtree(kept, ignore_errors=True)
        shutil.move(str(state), kept)
    functions = app_functions()
    template = stage_template(stage)
    settings = write_project(stage, project, functions, template)
    if kept.exists():
        shutil.move(str(kept), state)
    vendor_packages(project, stage_architecture(project, stage))
    outputs = stack_outputs(stack_name(stage), session)
    account = session.client("sts").get_caller_identity()["Account"]
    region = session.region_name or "us-east-1"
    partition = session.get_partition_for_region(region)
    pool_arn = f"arn:{partition}:cognito-idp:{region}:{account}:userpool/{outputs['USER_POOL_ID']}"
    for function in functions:
        document = policy_document(function, stage, template, bool(settings.get("xray", False)))
        rendered = concrete(document, partition, region, account, pool_arn)
        (project / ".chalice" / policy_file(stage, function)).write_text(json.dumps(rendered, indent=2) + "\n")
    config_path = project / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    config["stages"][stage]["environment_variables"].update(outputs)
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    return project


def finish(stage: str, session: boto3.session.Session) -> None:
    """Configure what ``chalice deploy`` cannot: batch failures, destinations, throttling, error bodies."""
    lam = session.client("lambda")
    sqs = session.client("sqs")
    functions = set(app_functions())
    for handler in PARTIAL_BATCH_HANDLERS:
        if handler in functions:
            for mapping in lam.list_event_source_mappings(FunctionName=function_name(handler, stage))[
                "EventSourceMappings"
            ]:
                lam.update_event_source_mapping(UUID=mapping["UUID"], FunctionResponseTypes=["ReportBatchItemFailures"])
    dlq_url = sqs.get_queue_url(QueueName=f"{APP}-async-invoke-dlq-{stage}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for handler in ASYNC_HANDLERS:
        if handler in functions:
            lam.put_function_event_invoke_config(
                FunctionName=function_name(handler, stage),
                MaximumRetryAttempts=2,
                DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
            )
    _configure_api(stage, session)


def _configure_api(stage: str, session: boto3.session.Session) -> None:
    api = session.client("apigateway")
    name = function_name("api_handler", stage)  # chalice deploy names the REST API after the app and stage
    found = [a["id"] for a in api.get_rest_apis(limit=500)["items"] if a["name"] == name]
    if not found:
        raise SystemExit(f"no REST API named {name}: run chalice deploy first")
    rest_api_id = found[0]
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"][stage]
    deployment = STAGE_DEPLOYMENTS.get(stage, DEFAULT_DEPLOYMENT)
    api.update_stage(
        restApiId=rest_api_id,
        stageName=config.get("api_gateway_stage", "api"),
        patchOperations=[
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": str(deployment.throttle_rate)},
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(deployment.throttle_burst)},
            {"op": "replace", "path": "/*/*/metrics/enabled", "value": "true"},
        ],
    )
    origin = config["environment_variables"].get("CORS_ALLOW_ORIGIN", "*")
    for kind, status, code, message in (
        ("UNAUTHORIZED", "401", "unauthorized", "A valid bearer token is required"),
        ("ACCESS_DENIED", "403", "forbidden", "The token was refused"),
        ("THROTTLED", "429", "throttled", "Too many requests; retry with backoff"),
    ):
        api.put_gateway_response(
            restApiId=rest_api_id,
            responseType=kind,
            statusCode=status,
            responseParameters={"gatewayresponse.header.Access-Control-Allow-Origin": f"'{origin}'"},
            responseTemplates={"application/json": error_body(code, message)},
        )
    # Gateway responses take effect with the next deployment of the stage.
    api.create_deployment(restApiId=rest_api_id, stageName=config.get("api_gateway_stage", "api"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=["resources", "prepare", "finish", "outputs"])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--stack", help="for outputs: the stack to read (default: the resource stack)")
    args = parser.parse_args(argv)
    if args.stage == "local":
        print("the local stage is not deployed: `make run` provisions it", file=sys.stderr)
        return 1
    session = boto3.session.Session()
    if args.step == "resources":
        deploy_resources(args.stage, session)
    elif args.step == "prepare":
        try:
            print(prepare(args.stage, session).relative_to(ROOT))
        except VendorError as exc:
            print(exc, file=sys.stderr)
            return 1
    elif args.step == "finish":
        finish(args.stage, session)
    else:
        print(json.dumps(stack_outputs(args.stack or stack_name(args.stage), session), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
