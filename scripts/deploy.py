"""``make deploy STAGE=dev``: the ``chalice deploy`` path, for those who do not deploy the SAM package.

``chalice deploy`` creates functions, roles and the API, but not the stage's tables, queues, pool...
and cannot set what ``make package`` merges into the template. So, in order:

    python -m scripts.deploy resources --stage dev   # 1. the stage template as its own stack
    python -m scripts.deploy prepare --stage dev     # 2. build/<stage>/deploy: env = stack outputs, policies, vendor/
    (cd build/dev/deploy && chalice deploy --stage dev)  # 3. functions, roles, API
    python -m scripts.deploy finish --stage dev      # 4. what chalice deploy cannot configure
    python -m scripts.deploy outputs --stage dev > stage-outputs.json  # env + api_url, for `make admin`
    python -m scripts.deploy outputs --stage dev --stack ecommerce-backend-dev   # the SAM stack's

    (cd build/dev/deploy && chalice delete --stage dev)  # make destroy: functions, roles, API
    python -m scripts.deploy destroy --stage dev     # then the resource stack and the API's log group

Step 2 also creates the API handler's log group (``chalice deploy`` would name it after the Chalice
function, not the deployed one). Step 4 works from what ``chalice deploy`` recorded it made
(``build/<stage>/deploy/.chalice/deployed/<stage>.json``): it sets ``ReportBatchItemFailures`` on the
SQS mappings, the on-failure destination of the asynchronously invoked functions, the API stage's
throttling, access logs and 401/403/429 error bodies, and the custom domain (``scripts/deploy_edge.py``;
``unmap`` removes it before ``chalice delete``). Every step can run again, and stops with a one-line
message naming what it could not find (``DeployError``), never half done in silence.
Provisioned concurrency needs an alias that API Gateway invokes: only the packaged template has it.
Step 4 lives in ``scripts/deploy_finish.py`` (the API's edge in ``scripts/deploy_edge.py``), what the
steps share in ``scripts/deploy_state.py``.
``chalice deploy`` keeps its state in ``build/<stage>/deploy/.chalice/deployed``; ``prepare`` keeps it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from infra.package import (
    ROOT,
    PackageError,
    app_functions,
    named_outputs,
    policy_file,
    write_project,
)
from infra.policies import concrete, policy_document
from infra.stage_settings import StageSettingsError, load_stage_settings
from infra.template import APP, stage_template
from infra.vendor import VendorError, stage_architecture, vendor_packages
from scripts.deploy_edge import EdgeError, remove_custom_domain
from scripts.deploy_finish import finish
from scripts.deploy_state import (
    DeployedState,
    DeployError,
    api_log_group,
    deploy_project,
    ensure_api_log_group,
    find_log_group,
    stack_name,
)

Json = dict[str, Any]

OPERATION_STARTS = frozenset({"CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS"})  # the stack's own events


def _missing_stack(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") == "ValidationError" and "does not exist" in error.get("Message", "")


TEMPLATE_BODY_LIMIT = 51_200  # bytes CloudFormation takes inline (TemplateBody); larger ones go by TemplateURL


def template_bucket(session: boto3.session.Session) -> str:
    """The bucket the stack templates go through, one per account and region (as SAM's managed bucket)."""
    account = session.client("sts").get_caller_identity()["Account"]
    return f"{APP}-templates-{account}-{session.region_name or 'us-east-1'}"


def _template_source(stage: str, session: boto3.session.Session, body: str) -> Json:
    """``TemplateBody`` when it fits, else the template uploaded to S3 and named by ``TemplateURL``.

    The stage template is about 80 KB, over CloudFormation's 51,200-byte inline limit: as
    ``aws cloudformation deploy --s3-bucket`` does, it goes through a private bucket, under a key
    named by its content (re-deploying an unchanged template uploads nothing new).
    """
    if len(body.encode()) <= TEMPLATE_BODY_LIMIT:
        return {"TemplateBody": body}
    s3 = session.client("s3")
    bucket, region = template_bucket(session), session.region_name or "us-east-1"
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
            raise
        location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **location)
        blocked = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=dict.fromkeys(blocked, True))
    key = f"{stack_name(stage)}/{hashlib.sha256(body.encode()).hexdigest()}.json"
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    return {"TemplateURL": f"https://{bucket}.s3.{region}.amazonaws.com/{key}"}


def parse_parameters(items: list[str], declared: Json) -> list[Json]:
    """Every parameter the template declares: the ``Name=value`` given, else its default.

    Passed explicitly, so an update means the same everywhere (CloudFormation takes the default for an
    omitted parameter, other tools keep the previous value). An undeclared name is refused.
    """
    given: dict[str, str] = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or key not in declared:
            known = ", ".join(sorted(declared))
            raise DeployError(f"parameter {item!r}: give Name=value, where Name is one of {known}")
        given[key] = value
    return [
        {"ParameterKey": name, "ParameterValue": given.get(name, str(spec.get("Default", "")))}
        for name, spec in declared.items()
    ]


def deploy_resources(
    stage: str, session: boto3.session.Session, parameters: Sequence[str] = (), settings_file: Path | None = None
) -> None:
    """Create or update the stack of the stage's resources, and wait for it.

    ``parameters`` (``PaymentWaitSeconds=5``) set the template's parameters; the others take their
    defaults, on an update too (a setting lasts only as long as it is given).
    """
    cfn = session.client("cloudformation")
    template = stage_template(stage, settings=load_stage_settings(stage, settings_file))
    template["Outputs"] = named_outputs(template["Outputs"])
    values = parse_parameters(list(parameters), template.get("Parameters", {}))
    source = {**_template_source(stage, session, json.dumps(template)), "Parameters": values}
    name = stack_name(stage)
    capabilities = ["CAPABILITY_NAMED_IAM"]  # the workflow's role has a name
    try:
        cfn.describe_stacks(StackName=name)
    except ClientError as exc:
        if not _missing_stack(exc):  # denied or throttled: creating it would only fail less clearly
            raise
        cfn.create_stack(StackName=name, Capabilities=capabilities, **source)
        _wait_for_stack(cfn, "stack_create_complete", name)
        return
    try:
        cfn.update_stack(StackName=name, Capabilities=capabilities, **source)
    except ClientError as exc:
        if "No updates are to be performed" in str(exc):
            return
        raise
    _wait_for_stack(cfn, "stack_update_complete", name)


def _wait_for_stack(cfn: Any, waiter: str, stack: str) -> None:
    """Wait for ``stack``; if it fails, say which resources failed and why (the waiter only says it failed)."""
    try:
        cfn.get_waiter(waiter).wait(StackName=stack)
    except WaiterError as exc:
        status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        reasons = "; ".join(_failures(cfn, stack)[:5]) or "no failed resource reported"
        raise DeployError(f"stack {stack} ended {status}: {reasons}") from exc


def _failures(cfn: Any, stack: str) -> list[str]:
    """This operation's failed resources, first failure first (the cause; later ones are often "cancelled")."""
    failed: list[str] = []
    for page in cfn.get_paginator("describe_stack_events").paginate(StackName=stack):
        for event in page["StackEvents"]:  # newest first, back to the stack's first creation
            if event["LogicalResourceId"] == stack and event.get("ResourceStatus") in OPERATION_STARTS:
                return failed[::-1]
            if event.get("ResourceStatus", "").endswith("_FAILED"):
                failed.append(f"{event['LogicalResourceId']}: {event.get('ResourceStatusReason', 'no reason given')}")
    return failed[::-1]


def stack_outputs(stack: str, session: boto3.session.Session) -> dict[str, str]:
    """The functions' environment from a stack's outputs (either path's: each names its variable)."""
    try:
        described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as exc:
        if _missing_stack(exc):
            region = session.region_name or "the default region"
            raise DeployError(f"no CloudFormation stack {stack} in {region}") from exc
        raise
    outputs = {
        o["Description"]: o["OutputValue"] for o in described.get("Outputs", []) if o.get("Description", "").isupper()
    }
    if not outputs:
        raise DeployError(f"stack {stack} ({described['StackStatus']}) has no output naming an environment variable")
    return outputs


def prepare(
    stage: str, session: boto3.session.Session, project: Path | None = None, settings_file: Path | None = None
) -> Path:
    """Write ``project`` (default ``build/<stage>/deploy``) for ``chalice deploy``: concrete policies,
    the stack's outputs and the X-Ray SDK in ``vendor/`` (``infra.vendor``); create the API handler's
    log group, so that it exists before the function does."""
    project = project or deploy_project(stage)
    # The stack first: without it nothing below is of use, and pip (vendor/) takes a while.
    stack = stack_name(stage)
    outputs = stack_outputs(stack, session)
    if "USER_POOL_ID" not in outputs:
        raise DeployError(f"stack {stack} has no output USER_POOL_ID (the policies name the pool)")
    state = project / ".chalice" / "deployed"
    kept = project.parent / "deployed.kept"
    if state.exists():
        shutil.rmtree(kept, ignore_errors=True)
        shutil.move(str(state), kept)
    functions = app_functions()
    stage_settings = load_stage_settings(stage, settings_file)
    template = stage_template(stage, settings=stage_settings)
    # No api_gateway_custom_domain for chalice deploy: finish makes the domain (scripts/deploy_edge.py).
    settings = write_project(stage, project, functions, template)
    if kept.exists():
        shutil.move(str(kept), state)
    vendor_packages(project, stage_architecture(project, stage))
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
    stage_config = config["stages"][stage]
    stage_config["environment_variables"].update(outputs)
    if "api_handler" in functions:
        # 0 turns off, for this function only, the group chalice_api_log_group() names (no one writes
        # there); ensure_api_log_group() makes the one the function writes to. Every other function's
        # Chalice name is its deployed name, so chalice deploy names their groups right.
        stage_config["lambda_functions"].setdefault("api_handler", {})["log_retention_in_days"] = 0
        ensure_api_log_group(stage, session)
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    return project


def invoke_url(session: boto3.session.Session, rest_api_id: str, api_stage: str) -> str:
    """Where clients call the stage's REST API, from where this session reaches API Gateway's control plane.

    On AWS the control plane is ``apigateway.<region>.<suffix>`` and a stage answers at
    ``https://<id>.execute-api.<region>.<suffix>/<stage>/``. An endpoint set with ``AWS_ENDPOINT_URL``
    (an emulator: the local stage, LocalStack) serves both planes, the data plane at
    ``<endpoint>/restapis/<id>/<stage>/_user_request_/`` (LocalStack's convention, which the local
    stage follows). This is the one place the deploy scripts look at an endpoint: to name the URL.
    """
    endpoint = str(session.client("apigateway").meta.endpoint_url).rstrip("/")
    host = urlparse(endpoint).hostname or ""
    if host.startswith("apigateway."):
        return f"https://{rest_api_id}.execute-api.{host.removeprefix('apigateway.')}/{api_stage}/"
    return f"{endpoint}/restapis/{rest_api_id}/{api_stage}/_user_request_/"


def outputs(
    stage: str, session: boto3.session.Session, stack: str | None = None, project: Path | None = None
) -> dict[str, str]:
    """The functions' environment from the stack's outputs, and ``api_url``: what ``make admin``, the
    runbooks and clients need. The REST API is the SAM stack's ``RestAPI`` (``--stack``) or the one
    ``chalice deploy`` recorded (the resource stack's path)."""
    found = stack_outputs(stack or stack_name(stage), session)
    api_stage = str(
        json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"][stage].get("api_gateway_stage", "api")
    )
    if stack is not None:
        cfn = session.client("cloudformation")
        try:
            resource = cfn.describe_stack_resource(StackName=stack, LogicalResourceId="RestAPI")
        except ClientError as exc:
            raise DeployError(f"stack {stack} has no RestAPI resource: {exc}") from exc
        rest_api_id = str(resource["StackResourceDetail"]["PhysicalResourceId"])
    else:
        state = DeployedState.load(project or deploy_project(stage), stage)
        rest_api_id = str(state.resource("rest_api", "rest_api", "REST API")["rest_api_id"])
    return {**found, "api_url": invoke_url(session, rest_api_id, api_stage)}


def destroy(stage: str, session: boto3.session.Session, settings_file: Path | None = None) -> None:
    """Remove what ``resources``, ``prepare`` and ``finish`` made (``chalice delete`` removes the rest):
    the custom domain (if ``unmap`` did not already), the resource stack, then the API handler's log
    group. Absent things count as removed."""
    remove_custom_domain(stage, load_stage_settings(stage, settings_file), session)
    cfn = session.client("cloudformation")
    name = stack_name(stage)
    try:
        cfn.describe_stacks(StackName=name)
    except ClientError as exc:
        if not _missing_stack(exc):
            raise
    else:
        cfn.delete_stack(StackName=name)
        _wait_for_stack(cfn, "stack_delete_complete", name)
    logs = session.client("logs")
    if find_log_group(logs, api_log_group(stage)) is not None:
        logs.delete_log_group(logGroupName=api_log_group(stage))
    _delete_templates(stage, session)


def _delete_templates(stage: str, session: boto3.session.Session) -> None:
    """The stage's uploaded templates; the bucket too once no stage has any left in it."""
    s3, bucket = session.client("s3"), template_bucket(session)
    try:
        pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket))
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchBucket"):
            return
        raise
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    mine = [k for k in keys if k.startswith(f"{stack_name(stage)}/")]
    for start in range(0, len(mine), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in mine[start : start + 1000]]})
    if len(mine) == len(keys):
        s3.delete_bucket(Bucket=bucket)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=["resources", "prepare", "finish", "outputs", "unmap", "destroy"])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--stack", help="for outputs: the stack to read (default: the resource stack)")
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        help="for resources: Name=value for one of the stage template's parameters (PaymentWaitSeconds=5)",
    )
    parser.add_argument("--settings", type=Path, help="stage settings over the config's (docs/deploy.md)")
    parser.add_argument(
        "--project",
        type=Path,
        help="for prepare, finish and outputs: chalice deploy's project (default: build/<stage>/deploy)",
    )
    args = parser.parse_args(argv)
    if args.stage == "local":
        print("the local stage is not deployed: `make run` provisions it", file=sys.stderr)
        return 1
    session = boto3.session.Session()
    try:
        if args.step == "resources":
            deploy_resources(args.stage, session, args.parameter, args.settings)
        elif args.step == "prepare":
            project = prepare(args.stage, session, args.project, args.settings)
            print(project.relative_to(ROOT) if project.is_relative_to(ROOT) else project)
        elif args.step == "finish":
            finish(args.stage, session, args.project, args.settings)
        elif args.step == "unmap":  # make destroy, before chalice delete: the domain that maps the API
            remove_custom_domain(args.stage, load_stage_settings(args.stage, args.settings), session)
        elif args.step == "destroy":
            destroy(args.stage, session, args.settings)
        else:
            print(json.dumps(outputs(args.stage, session, args.stack, args.project), indent=2))
    # Ours name what is missing; AWS's own refusals (credentials, permissions) name the call and the reason.
    except (DeployError, EdgeError, StageSettingsError, PackageError, VendorError, ClientError, BotoCoreError) as exc:
        print(f"{args.step} --stage {args.stage}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
