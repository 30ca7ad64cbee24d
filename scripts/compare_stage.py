"""Does a deployed stage match what ``make package`` declares for it? One configuration, two paths.

    make package STAGE=dev && python -m scripts.compare_stage --stage dev     # after make deploy STAGE=dev

It reads the SAM template ``make package`` writes (``build/<stage>/out/sam.json``) and the deployed
stage through the AWS APIs (AWS, or the embedded AWS with ``AWS_ENDPOINT_URL``), and prints every
difference in what the two deploy paths must agree on: each function's memory, timeout, runtime,
handler, environment, tracing, reserved concurrency and role policy; SQS mappings with their batch
settings and ``ReportBatchItemFailures``; asynchronous retries and destinations; the state machine's
type, logging and tracing; log groups and their retention; the API's gateway responses, throttling
and tracing; alarms. Differences the paths are known to have are in ``ACCEPTED`` with their reason
(``docs/deploy.md``); any other one fails (exit 1).

The template's ``Ref``/``GetAtt``/``Fn::Sub`` values are resolved with the deployed resource stack's
physical ids and the names the template itself gives, so a declared ``{"Ref": "OrdersTable"}`` is
compared with the table the function's environment names.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import boto3

from infra.pipeline import TASK_FUNCTIONS
from scripts.deploy import ROOT, DeployedState, DeployError, deploy_project, stack_name

Json = dict[str, Any]
Settings = dict[str, Any]  # "function ecommerce-backend-dev-process_order: MemorySize" -> 512

# Known differences between make package and make deploy, by setting (a pattern), with the reason.
ACCEPTED: dict[str, str] = {
    "function ecommerce-backend-dev: provisioned concurrency": (
        "make package puts 2 on a live alias API Gateway invokes; chalice deploy publishes no alias"
    ),
    **{
        f"function ecommerce-backend-*-{task}: environment STATE_MACHINE_ARN": (
            "chalice deploy gives every function the stage's whole environment; the packaged template leaves "
            "the workflow's own tasks without it (naming the machine there would be a dependency cycle) and "
            "none of them reads it"
        )
        for task in TASK_FUNCTIONS.values()
    },
}


class Resolver:
    """Evaluates the template's intrinsics against the deployed resource stack."""

    def __init__(self, template: Json, physical: Mapping[str, str], region: str, account: str) -> None:
        self.resources: Json = template["Resources"]
        self.physical = physical
        self.region, self.account = region, account

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            (key, argument), *_ = value.items()
            if key == "Ref":
                return self.ref(str(argument))
            if key == "Fn::GetAtt":
                return self.attribute(str(argument[0]), str(argument[1]))
            if key == "Fn::Sub" and isinstance(argument, str):
                return self.sub(argument)
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        return value

    def ref(self, logical_id: str) -> str:
        pseudo = {"AWS::Region": self.region, "AWS::AccountId": self.account, "AWS::Partition": "aws"}
        if logical_id in pseudo:
            return pseudo[logical_id]
        resource = self.resources.get(logical_id, {})
        if resource.get("Type") == "AWS::Serverless::Function":
            return str(resource["Properties"]["FunctionName"])
        if logical_id in self.physical:
            return self.physical[logical_id]
        # Only make package's own resources (roles, aliases, the API) get here: no compared setting uses
        # them, and if one ever does, the marker shows in the difference instead of a made-up value.
        return f"<unresolved Ref {logical_id}>"

    def attribute(self, logical_id: str, name: str) -> str:
        resource = self.resources.get(logical_id, {"Type": "?"})
        kind, props = resource["Type"], resource.get("Properties", {})
        arns: dict[str, Callable[[], str]] = {
            "AWS::SQS::Queue": lambda: f"arn:aws:sqs:{self.region}:{self.account}:{props['QueueName']}",
            "AWS::DynamoDB::Table": lambda: f"arn:aws:dynamodb:{self.region}:{self.account}:table/{props['TableName']}",
            "AWS::Logs::LogGroup": lambda: (
                f"arn:aws:logs:{self.region}:{self.account}:log-group:{self(props['LogGroupName'])}:*"
            ),
            "AWS::Events::EventBus": lambda: f"arn:aws:events:{self.region}:{self.account}:event-bus/{props['Name']}",
            "AWS::Serverless::Function": lambda: (
                f"arn:aws:lambda:{self.region}:{self.account}:function:{self.ref(logical_id)}"
            ),
            "AWS::SNS::Topic": lambda: self.ref(logical_id),
            "AWS::Cognito::UserPool": lambda: (
                f"arn:aws:cognito-idp:{self.region}:{self.account}:userpool/{self.ref(logical_id)}"
            ),
        }
        if name == "Arn" and kind in arns:
            return arns[kind]()
        if name == "QueueName":
            return str(props["QueueName"])
        return f"<unresolved GetAtt {logical_id}.{name}>"

    def sub(self, text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            logical_id, _, attribute = name.partition(".")
            return self.attribute(logical_id, attribute) if attribute else self.ref(name)

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def _environment(key: str, variables: Mapping[str, Any]) -> Settings:
    """One setting per variable, so an accepted difference names the variable, not the whole environment."""
    return {f"{key}: environment {name}": str(value) for name, value in variables.items()}


def _pairs(documents: list[Json]) -> list[str]:
    """A policy as sorted "action on resource" lines: statement layout and order do not matter."""
    found: set[str] = set()
    for document in documents:
        statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
        for statement in statements:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            found |= {f"{statement['Effect']} {a} on {r}" for a in actions for r in resources}
    return sorted(found)


def declared(template: Json, resolve: Resolver) -> Settings:
    """The settings the packaged template declares, keyed as ``deployed`` keys them."""
    settings: Settings = {}
    resources = template["Resources"]
    for resource in resources.values():
        props = resolve(resource.get("Properties", {}))
        kind = resource["Type"]
        if kind == "AWS::Serverless::Function":
            name = props["FunctionName"]
            key = f"function {name}"
            for setting in ("MemorySize", "Timeout", "Runtime", "Handler"):
                settings[f"{key}: {setting}"] = props.get(setting)
            settings[f"{key}: Tracing"] = props.get("Tracing", "PassThrough")
            settings.update(_environment(key, props.get("Environment", {}).get("Variables", {})))
            settings[f"{key}: reserved concurrency"] = props.get("ReservedConcurrentExecutions")
            settings[f"{key}: provisioned concurrency"] = (props.get("ProvisionedConcurrencyConfig") or {}).get(
                "ProvisionedConcurrentExecutions"
            )
            role = resources[resource["Properties"]["Role"]["Fn::GetAtt"][0]]
            policies = resolve(role["Properties"].get("Policies", []))
            settings[f"{key}: role policy"] = _pairs([p["PolicyDocument"] for p in policies])
            for event in props.get("Events", {}).values():
                if event["Type"] == "SQS":
                    queue = event["Properties"]["Queue"]
                    settings[f"{key}: mapping from {queue}"] = {
                        "BatchSize": event["Properties"].get("BatchSize", 10),
                        "MaximumBatchingWindowInSeconds": event["Properties"].get("MaximumBatchingWindowInSeconds", 0),
                        "FunctionResponseTypes": event["Properties"].get("FunctionResponseTypes", []),
                    }
        elif kind == "AWS::Lambda::EventInvokeConfig":
            settings[f"function {props['FunctionName']}: async invoke"] = {
                "MaximumRetryAttempts": props.get("MaximumRetryAttempts"),
                "OnFailure": props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"),
            }
        elif kind == "AWS::StepFunctions::StateMachine":
            logging = props.get("LoggingConfiguration", {})
            settings[f"state machine {props['StateMachineName']}"] = {
                "type": props.get("StateMachineType", "STANDARD"),
                "logging level": logging.get("Level", "OFF"),
                "includeExecutionData": logging.get("IncludeExecutionData", False),
                "log groups": [d["CloudWatchLogsLogGroup"]["LogGroupArn"] for d in logging.get("Destinations", [])],
                "tracing": props.get("TracingConfiguration", {}).get("Enabled", False),
            }
        elif kind == "AWS::Logs::LogGroup":
            settings[f"log group {props['LogGroupName']}: retention"] = props.get("RetentionInDays")
        elif kind == "AWS::Serverless::Api":
            settings.update(_declared_api(props))
        elif kind == "AWS::CloudWatch::Alarm":
            settings[f"alarm {props['AlarmName']}"] = _alarm(props)
    return settings


def _declared_api(props: Json) -> Settings:
    settings: Settings = {"api: tracing": bool(props.get("TracingEnabled", False))}
    for method in props.get("MethodSettings", []):
        settings["api: throttling"] = (float(method["ThrottlingRateLimit"]), int(method["ThrottlingBurstLimit"]))
    for kind, response in props.get("GatewayResponses", {}).items():
        headers = {
            f"gatewayresponse.header.{k}": v
            for k, v in response.get("ResponseParameters", {}).get("Headers", {}).items()
        }
        settings[f"api: gateway response {kind}"] = {
            "statusCode": str(response["StatusCode"]),
            "responseParameters": headers,
            "responseTemplates": response.get("ResponseTemplates", {}),
        }
    return settings


_ALARM_FIELDS = (
    "Namespace",
    "MetricName",
    "Statistic",
    "ExtendedStatistic",
    "Period",
    "EvaluationPeriods",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
)


def _alarm(props: Json) -> Json:
    shaped = {field: props[field] for field in _ALARM_FIELDS if field in props}
    shaped["Threshold"] = float(shaped.get("Threshold", 0))
    shaped["Dimensions"] = sorted((d["Name"], str(d["Value"])) for d in props.get("Dimensions", []))
    shaped["AlarmActions"] = sorted(props.get("AlarmActions", []))
    return shaped


def deployed(session: boto3.session.Session, want: Settings, rest_api_id: str | None, api_stage: str) -> Settings:
    """The same settings, read from the deployed stage (only the keys ``want`` names are looked up)."""
    lam, iam, logs = session.client("lambda"), session.client("iam"), session.client("logs")
    settings: Settings = {}
    mappings = [
        m for page in lam.get_paginator("list_event_source_mappings").paginate() for m in page["EventSourceMappings"]
    ]
    functions = {key.split(": ")[0].removeprefix("function ") for key in want if key.startswith("function ")}
    for name in sorted(functions):
        key = f"function {name}"
        try:
            config = lam.get_function_configuration(FunctionName=name)
        except lam.exceptions.ResourceNotFoundException:
            settings[f"{key}: MemorySize"] = "missing: no such function"
            continue
        for setting in ("MemorySize", "Timeout", "Runtime", "Handler"):
            settings[f"{key}: {setting}"] = config.get(setting)
        settings[f"{key}: Tracing"] = config.get("TracingConfig", {}).get("Mode", "PassThrough")
        settings.update(_environment(key, config.get("Environment", {}).get("Variables", {})))
        settings[f"{key}: reserved concurrency"] = lam.get_function_concurrency(FunctionName=name).get(
            "ReservedConcurrentExecutions"
        )
        settings[f"{key}: provisioned concurrency"] = None
        role = config["Role"].rsplit("/", 1)[-1]
        documents = [
            _document(iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"])
            for policy in iam.list_role_policies(RoleName=role)["PolicyNames"]
        ]
        settings[f"{key}: role policy"] = _pairs(documents)
        for mapping in mappings:
            if mapping["FunctionArn"] == config["FunctionArn"]:
                settings[f"{key}: mapping from {mapping['EventSourceArn']}"] = {
                    "BatchSize": mapping.get("BatchSize"),
                    "MaximumBatchingWindowInSeconds": mapping.get("MaximumBatchingWindowInSeconds", 0),
                    "FunctionResponseTypes": mapping.get("FunctionResponseTypes", []),
                }
        if f"{key}: async invoke" in want:
            try:
                invoke = lam.get_function_event_invoke_config(FunctionName=name)
                settings[f"{key}: async invoke"] = {
                    "MaximumRetryAttempts": invoke.get("MaximumRetryAttempts"),
                    "OnFailure": invoke.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"),
                }
            except lam.exceptions.ResourceNotFoundException:
                settings[f"{key}: async invoke"] = None
    settings.update(_deployed_state_machines(session, want))
    for key in want:
        if key.startswith("log group "):
            name = key.removeprefix("log group ").removesuffix(": retention")
            groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
            found = [g for g in groups if g["logGroupName"] == name]
            settings[key] = found[0].get("retentionInDays") if found else "missing: no such log group"
    if rest_api_id is not None:
        settings.update(_deployed_api(session, rest_api_id, api_stage, want))
    alarms = [key.removeprefix("alarm ") for key in want if key.startswith("alarm ")]
    cloudwatch = session.client("cloudwatch")
    for start in range(0, len(alarms), 100):
        for alarm in cloudwatch.describe_alarms(AlarmNames=alarms[start : start + 100])["MetricAlarms"]:
            settings[f"alarm {alarm['AlarmName']}"] = _alarm(
                {**alarm, "Dimensions": [{"Name": d["Name"], "Value": d["Value"]} for d in alarm.get("Dimensions", [])]}
            )
    return settings


def _document(document: Any) -> Json:
    parsed: Json = json.loads(document) if isinstance(document, str) else document
    return parsed


def _deployed_state_machines(session: boto3.session.Session, want: Settings) -> Settings:
    sfn = session.client("stepfunctions")
    machines = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    settings: Settings = {}
    for key in want:
        if not key.startswith("state machine "):
            continue
        name = key.removeprefix("state machine ")
        if name not in machines:
            settings[key] = "missing: no such state machine"
            continue
        described = sfn.describe_state_machine(stateMachineArn=machines[name])
        logging = described.get("loggingConfiguration", {})
        settings[key] = {
            "type": described.get("type"),
            "logging level": logging.get("level", "OFF"),
            "includeExecutionData": logging.get("includeExecutionData", False),
            "log groups": [d["cloudWatchLogsLogGroup"]["logGroupArn"] for d in logging.get("destinations", [])],
            "tracing": described.get("tracingConfiguration", {}).get("enabled", False),
        }
    return settings


def _deployed_api(session: boto3.session.Session, rest_api_id: str, api_stage: str, want: Settings) -> Settings:
    api = session.client("apigateway")
    stage = api.get_stage(restApiId=rest_api_id, stageName=api_stage)
    settings: Settings = {"api: tracing": bool(stage.get("tracingEnabled", False))}
    everything = stage.get("methodSettings", {}).get("*/*", {})
    if everything:
        settings["api: throttling"] = (
            float(everything["throttlingRateLimit"]),
            int(everything["throttlingBurstLimit"]),
        )
    for key in want:
        if key.startswith("api: gateway response "):
            kind = key.removeprefix("api: gateway response ")
            response = api.get_gateway_response(restApiId=rest_api_id, responseType=kind)
            settings[key] = {
                "statusCode": str(response.get("statusCode")),
                "responseParameters": response.get("responseParameters", {}),
                "responseTemplates": response.get("responseTemplates", {}),
            }
    return settings


def differences(want: Settings, have: Settings, accepted: Mapping[str, str] = ACCEPTED) -> list[str]:
    """Every setting whose deployed value differs from the declared one (or that only one side has),
    unless a pattern of ``accepted`` names it."""
    found = []
    for key in sorted(set(want) | set(have)):
        if any(fnmatch.fnmatchcase(key, pattern) for pattern in accepted):
            continue
        if key in want and have.get(key) != want[key]:
            found.append(f"{key}: make package declares {want[key]!r}, the stage has {have.get(key)!r}")
        elif key not in want:
            found.append(f"{key}: the stage has {have[key]!r}, make package declares nothing")
    return found


def compare(stage: str, session: boto3.session.Session, sam_path: Path, project: Path | None = None) -> list[str]:
    """The unaccepted differences between ``sam_path`` and the stage deployed by ``make deploy``."""
    template = json.loads(sam_path.read_text())
    cfn = session.client("cloudformation")
    resources = cfn.describe_stack_resources(StackName=stack_name(stage))["StackResources"]
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
    # A Ref to a parameter is the value the stack was deployed with.
    described = cfn.describe_stacks(StackName=stack_name(stage))["Stacks"][0]
    physical.update({p["ParameterKey"]: p["ParameterValue"] for p in described.get("Parameters", [])})
    account = session.client("sts").get_caller_identity()["Account"]
    resolve = Resolver(template, physical, session.region_name or "us-east-1", account)
    want = declared(template, resolve)
    state = DeployedState.load(project or deploy_project(stage), stage)
    rest_api_id = str(state.resource("rest_api", "rest_api", "REST API")["rest_api_id"])
    api_stage = str(
        json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"][stage].get("api_gateway_stage", "api")
    )
    return differences(want, deployed(session, want, rest_api_id, api_stage))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--sam", type=Path, help="the packaged template (default: build/<stage>/out/sam.json)")
    parser.add_argument("--project", type=Path, help="chalice deploy's project (default: build/<stage>/deploy)")
    args = parser.parse_args(argv)
    sam = args.sam or ROOT / "build" / args.stage / "out" / "sam.json"
    if not sam.is_file():
        print(f"no packaged template {sam}: run make package STAGE={args.stage}", file=sys.stderr)
        return 2
    try:
        found = compare(args.stage, boto3.session.Session(), sam, args.project)
    except DeployError as exc:
        print(f"compare --stage {args.stage}: {exc}", file=sys.stderr)
        return 2
    for line in found:
        print(line)
    print(f"{len(found)} differences ({len(ACCEPTED)} accepted, see docs/deploy.md)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
