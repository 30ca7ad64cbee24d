"""``make deploy``'s step 4, ``python -m scripts.deploy finish``: what ``chalice deploy`` cannot configure.

It works from what ``chalice deploy`` recorded it made (``DeployedState``), not from names: the API
handler's log group, ``ReportBatchItemFailures`` on the SQS mappings, the on-failure destination of
the asynchronously invoked functions, and the API (gateway responses, throttling, access logs, the
custom domain: ``scripts/deploy_edge.py``). docs/deploy.md, "Path 2", lists each.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from infra.package import DEFAULT_DEPLOYMENT, ROOT, STAGE_DEPLOYMENTS, app_functions
from infra.pipeline import ASYNC_HANDLERS, PARTIAL_BATCH_HANDLERS
from infra.policies import function_name
from infra.stage_settings import StageSettings, load_stage_settings
from infra.template import APP
from scripts.deploy_edge import access_log_operations, ensure_custom_domain, put_gateway_responses
from scripts.deploy_state import (
    DeployedState,
    DeployError,
    chalice_api_log_group,
    deploy_project,
    ensure_api_log_group,
    find_log_group,
    stack_name,
)

Json = dict[str, Any]

# Event source mapping states in which Lambda refuses an update (ResourceInUseException).
MAPPING_BUSY_STATES = frozenset({"Creating", "Enabling", "Disabling", "Updating"})
MAPPING_WAIT_SECONDS = 120


def finish(
    stage: str, session: boto3.session.Session, project: Path | None = None, settings_file: Path | None = None
) -> None:
    """Configure what ``chalice deploy`` cannot, on what it recorded it made in ``project``'s state.

    Safe to run again (every call sets a value). Anything it cannot find stops it with a
    ``DeployError`` naming it: a stage configured in part looks deployed, and an SQS mapping without
    ``ReportBatchItemFailures`` deletes a batch's failed orders with the good ones.
    """
    project = project or deploy_project(stage)
    state = DeployedState.load(project, stage)
    functions = set(app_functions())
    lam = session.client("lambda")
    if "api_handler" in functions:
        ensure_api_log_group(stage, session)  # prepare made it; again here in case it was removed since
        _remove_chalice_api_log_group(stage, session, state)
    for handler in PARTIAL_BATCH_HANDLERS:
        if handler in functions:
            _report_batch_item_failures(handler, stage, lam, state)
    async_handlers = [h for h in ASYNC_HANDLERS if h in functions]
    if async_handlers:
        dlq_arn = _async_invoke_dlq_arn(stage, session)
        for handler in async_handlers:
            name = function_name(handler, stage)
            _function_arn(lam, name)  # a missing function is named, not reported as a failed put
            lam.put_function_event_invoke_config(
                FunctionName=name,
                MaximumRetryAttempts=2,
                DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
            )
    settings = load_stage_settings(stage, settings_file)
    _configure_api(stage, session, state, settings)


def _function_arn(lam: Any, name: str) -> str:
    try:
        return str(lam.get_function_configuration(FunctionName=name)["FunctionArn"])
    except lam.exceptions.ResourceNotFoundException as exc:
        raise DeployError(f"no Lambda function {name}: run chalice deploy for this stage") from exc


def _remove_chalice_api_log_group(stage: str, session: boto3.session.Session, state: DeployedState) -> None:
    """Delete the empty group an earlier ``chalice deploy`` made for the API handler under its Chalice name.

    It only misleads whoever looks there for the API's logs. ``prepare`` now stops chalice from making
    it; its next deploy forgets it (and drops its retention). Only then is it deleted: chalice would
    fail to drop the retention of a group that is gone. A group holding log streams is kept and named.
    """
    logs = session.client("logs")
    name = chalice_api_log_group(stage)
    if find_log_group(logs, name) is None:
        return
    if "api_handler-log-group" in state.resources:
        print(f"kept {name}: {state.path} still records it; `make deploy` stops chalice making it", file=sys.stderr)
        return
    if logs.describe_log_streams(logGroupName=name, limit=1)["logStreams"]:
        print(f"kept {name}: it holds log streams, although nothing should write there", file=sys.stderr)
        return
    logs.delete_log_group(logGroupName=name)


def _report_batch_item_failures(handler: str, stage: str, lam: Any, state: DeployedState) -> None:
    """``ReportBatchItemFailures`` on the mapping from ``handler``'s queue to its function."""
    name = function_name(handler, stage)
    source = state.resource(f"{handler}-sqs-event-source", "sqs_event", f"SQS event source for {name}")
    queue_arn = str(source["queue_arn"])
    queue = source.get("queue") or queue_arn
    function_arn = _function_arn(lam, name)
    # Listed by queue, then matched on the function. On AWS the FunctionName filter would do as well,
    # but moto (the embedded AWS) compares it with the exact text the mapping was created with, and
    # chalice creates mappings with the function's ARN. A queue has few mappings.
    pages = lam.get_paginator("list_event_source_mappings").paginate(EventSourceArn=queue_arn)
    mappings = [
        m
        for page in pages
        for m in page["EventSourceMappings"]
        if m["FunctionArn"] == function_arn or m["FunctionArn"].startswith(f"{function_arn}:")  # or an alias
    ]
    if not mappings:
        raise DeployError(
            f"no event source mapping from SQS queue {queue} to function {name}: "
            "run chalice deploy for this stage (without the mapping, orders wait in the queue)"
        )
    for mapping in mappings:
        _wait_until_settled(lam, mapping)
        lam.update_event_source_mapping(UUID=mapping["UUID"], FunctionResponseTypes=["ReportBatchItemFailures"])


def _wait_until_settled(lam: Any, mapping: Json, sleep: Callable[[float], None] = time.sleep) -> None:
    """Lambda refuses to update a mapping that is still being created or updated (as right after
    ``chalice deploy``, or a previous ``finish``); wait for it, up to ``MAPPING_WAIT_SECONDS``."""
    state = mapping.get("State", "")
    waited = 0
    while state in MAPPING_BUSY_STATES:
        if waited >= MAPPING_WAIT_SECONDS:
            raise DeployError(f"event source mapping {mapping['UUID']} still {state} after {waited} s")
        sleep(5)
        waited += 5
        state = lam.get_event_source_mapping(UUID=mapping["UUID"]).get("State", "")


def _async_invoke_dlq_arn(stage: str, session: boto3.session.Session) -> str:
    sqs = session.client("sqs")
    name = f"{APP}-async-invoke-dlq-{stage}"
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist as exc:
        raise DeployError(
            f"no SQS queue {name}: the stack {stack_name(stage)} makes it "
            f"(`python -m scripts.deploy resources --stage {stage}`)"
        ) from exc
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _configure_api(stage: str, session: boto3.session.Session, state: DeployedState, settings: StageSettings) -> None:
    api = session.client("apigateway")
    # chalice deploy names the REST API after the app alone, so stages sharing an account share the
    # name: the id it recorded is the only sure way to this stage's API.
    rest_api_id = str(state.resource("rest_api", "rest_api", "REST API")["rest_api_id"])
    try:
        api.get_rest_api(restApiId=rest_api_id)
    except api.exceptions.NotFoundException as exc:
        raise DeployError(
            f"no REST API {rest_api_id}, which {state.path} records: run chalice deploy for this stage"
        ) from exc
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"][stage]
    api_stage = config.get("api_gateway_stage", "api")
    put_gateway_responses(api, rest_api_id, settings.cors_origin)  # infra.gateway, as make package writes them
    # Gateway responses take effect with the next deployment of the stage; stage settings at once.
    # So the stage is updated after the deployment: moto's create_deployment replaces an existing
    # stage and its settings (AWS keeps them), and this order is right on both.
    api.create_deployment(restApiId=rest_api_id, stageName=api_stage)  # makes the stage if it was deleted
    deployment = STAGE_DEPLOYMENTS.get(stage, DEFAULT_DEPLOYMENT)
    api.update_stage(
        restApiId=rest_api_id,
        stageName=api_stage,
        patchOperations=[
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": str(deployment.throttle_rate)},
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(deployment.throttle_burst)},
            {"op": "replace", "path": "/*/*/metrics/enabled", "value": "true"},
            *access_log_operations(stage, session),
        ],
    )
    endpoint_type = str(config.get("api_gateway_endpoint_type", "EDGE"))
    ensure_custom_domain(stage, settings, rest_api_id, api_stage, endpoint_type, session)
