"""``make package STAGE=dev``: one SAM template with the functions, the API and every stage resource.

Chalice writes the functions and the API; ``infra.template`` defines everything else. This module
builds a Chalice project in ``build/<stage>/project`` (the repo's own ``.chalice/config.json`` never
depends on generated files), with ``autogen_policy`` off, one generated policy file per function
(``infra.policies``) and the X-Ray SDK in ``vendor/`` (``infra.vendor``), and a merge template
(``build/<stage>/merge.json``) that ``chalice package --merge-template`` deep-merges into its
output: the stage's resources, ``infra.pipeline``'s deployment patch, and the wiring Chalice
cannot express (environment from the resources, event sources on the template's own queue and
topic, log retention, API throttling and error responses, the workflow's logging and tracing,
provisioned concurrency). The result is ``build/<stage>/out/sam.json``, checked with cfn-lint; it carries
cfn-lint's own ``ignore_checks`` directive on each finding accepted in ``infra/accepted/cfn-lint.json``.

    python -m infra.package --stage dev          # build, then cfn-lint (errors fail, warnings print)
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess  # runs chalice and cfn-lint with fixed argument lists  # nosec B404
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalice.utils import to_cfn_resource_name

from infra.bytecode import copy_packaged
from infra.gateway import ACCESS_LOG_FORMAT, domain_record, sam_gateway_responses
from infra.lint_accepted import add_lint_directives
from infra.pipeline import LOG_RETENTION_DAYS, TASK_FUNCTIONS, deployment_patch
from infra.policies import FUNCTION_GRANTS, function_name, policy_document
from infra.stage_settings import SETTINGS_KEY, StageSettings, StageSettingsError, load_stage_settings
from infra.template import stage_template
from infra.vendor import VendorError, stage_architecture, vendor_packages

Json = dict[str, Any]

ROOT = Path(__file__).resolve().parent.parent
ALIAS = "live"
CUSTOM_DOMAIN = "ApiGatewayCustomDomain"  # the logical id chalice package gives api_gateway_custom_domain


@dataclass(frozen=True)
class StageDeployment:
    """Per-stage settings of the deployment that are not resources: throttling and concurrency."""

    throttle_rate: float  # steady requests per second, for the whole stage
    throttle_burst: int
    reserved: dict[str, int]  # function -> reserved concurrency
    provisioned: dict[str, int]  # function -> provisioned concurrency (on the "live" alias)


# The seed's "provisionedConcurrency: 2, reservedConcurrency: 100" on the order-taking function,
# which here is the API handler. Throttling: API Gateway's account default is 10,000 rps; a stage
# limit keeps one misbehaving client from spending the reserved concurrency and the budget.
STAGE_DEPLOYMENTS = {
    "dev": StageDeployment(25, 50, {"api_handler": 100}, {"api_handler": 2}),
    "prod": StageDeployment(250, 500, {"api_handler": 100}, {"api_handler": 2}),
}
DEFAULT_DEPLOYMENT = StageDeployment(25, 50, {}, {})


class PackageError(Exception):
    """The stage cannot be packaged (unknown stage, vendoring or Chalice failed)."""


def cfn_name(function: str) -> str:
    """The logical id Chalice gives a function (the API handler is renamed ``APIHandler``)."""
    return "APIHandler" if function == "api_handler" else to_cfn_resource_name(function)


def _intrinsic(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)).startswith(("Fn::", "Ref"))


def deep_merge(base: Any, patch: Any) -> Any:
    """Chalice's ``TemplateDeepMerger`` rule (dicts merge key by key, anything else is replaced),
    except that an intrinsic function replaces what it patches: ``{"Fn::Sub"}`` merged with
    ``{"Fn::GetAtt"}`` would be neither."""
    if isinstance(base, dict) and isinstance(patch, dict) and not _intrinsic(patch):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = deep_merge(base.get(key), value)
        return merged
    return copy.deepcopy(patch)


def app_functions() -> list[str]:
    """The functions ``app.py`` defines, by Chalice name (import is enough: nothing runs at import)."""
    import app

    chalice_app = app.app
    names = ["api_handler"] if chalice_app.routes else []
    names += [auth.name for auth in chalice_app.builtin_auth_handlers]
    names += [f.name for f in chalice_app.pure_lambda_functions]
    names += [e.name for e in chalice_app.event_sources]
    unknown = sorted(set(names) - set(FUNCTION_GRANTS))
    if unknown:
        raise PackageError(f"no policy in infra/policies.py for {', '.join(unknown)}")
    return names


def output_key(variable: str) -> str:
    """CloudFormation output ids are alphanumeric: ``ORDER_QUEUE_URL`` -> ``EnvOrderQueueUrl``."""
    return "Env" + "".join(part.capitalize() for part in variable.split("_"))


def _environment(function: str, outputs: Json) -> Json:
    """The stage's outputs as the function's environment (``Ref``/``GetAtt``, so it waits for them).

    Only the state machine's own tasks go without ``STATE_MACHINE_ARN``: the machine names them,
    and naming it back would make a dependency cycle. None of them reads it.
    """
    tasks = set(TASK_FUNCTIONS.values())
    return {var: out["Value"] for var, out in outputs.items() if not (var == "STATE_MACHINE_ARN" and function in tasks)}


def _rest_api(deployment: StageDeployment, settings: StageSettings, xray: bool) -> Json:
    return {
        "Properties": {
            "TracingEnabled": xray,
            "MethodSettings": [
                {
                    "ResourcePath": "/*",
                    "HttpMethod": "*",
                    "MetricsEnabled": True,
                    "ThrottlingRateLimit": deployment.throttle_rate,
                    "ThrottlingBurstLimit": deployment.throttle_burst,
                }
            ],
            "GatewayResponses": sam_gateway_responses(settings.cors_origin),
            "AccessLogSetting": {
                "DestinationArn": {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]},
                "Format": ACCESS_LOG_FORMAT,
            },
        }
    }


def _workflow() -> Json:
    """The state machine names its functions by ``GetAtt``, so CloudFormation creates them first.

    Its logging, tracing and role come from the stage template (``infra.pipeline``), as on every path.
    """
    arns = {var: {"Fn::GetAtt": [cfn_name(handler), "Arn"]} for var, handler in TASK_FUNCTIONS.items()}
    return {"OrderStateMachine": {"Properties": {"DefinitionSubstitutions": arns}}}


def _function(function: str, stage: str, outputs: Json, deployment: StageDeployment) -> Json:
    properties: Json = {
        # chalice deploy's names: stable, and what infra.policies scopes log groups to.
        "FunctionName": function_name(function, stage),
        "Environment": {"Variables": _environment(function, outputs)},
    }
    if function in deployment.provisioned:
        properties["AutoPublishAlias"] = ALIAS
        properties["ProvisionedConcurrencyConfig"] = {
            "ProvisionedConcurrentExecutions": deployment.provisioned[function]
        }
    return {"Properties": properties}


def merge_template(stage: str, functions: list[str], settings: StageSettings, xray: bool, endpoint_type: str) -> Json:
    """What ``chalice package --merge-template`` deep-merges into the SAM template it writes."""
    deployment = STAGE_DEPLOYMENTS.get(stage, DEFAULT_DEPLOYMENT)
    stage_resources = stage_template(stage, settings=settings)
    outputs = stage_resources["Outputs"]
    wiring: Json = {cfn_name(f): _function(f, stage, outputs, deployment) for f in functions}
    if "api_handler" in functions:
        wiring["RestAPI"] = _rest_api(deployment, settings, xray)
        if settings.domain is not None:
            # Chalice writes the domain name and its base path mapping (api_gateway_custom_domain); the record is ours.
            name = settings.domain.name(stage)
            zone = settings.domain.hosted_zone_id
            wiring["ApiDomainRecord"] = domain_record(name, zone, endpoint_type, CUSTOM_DOMAIN)
    wiring.update(_workflow())
    resources = deep_merge(deep_merge(stage_resources["Resources"], deployment_patch()["Resources"]), wiring)
    present = {cfn_name(f) for f in functions}
    # deployment_patch() may name handlers this app does not have (yet): a patch without a Type would be invalid.
    resources = {k: v for k, v in resources.items() if "Type" in v or k in present or k == "RestAPI"}
    return {
        "Description": stage_resources["Description"],
        "Parameters": stage_resources["Parameters"],
        "Resources": resources,
        "Outputs": named_outputs(outputs),
    }


def named_outputs(outputs: Json) -> Json:
    """Outputs under alphanumeric ids, each naming its environment variable in ``Description``."""
    return {output_key(var): {"Description": var, "Value": out["Value"]} for var, out in outputs.items()}


def chalice_config(repo_config: Json, stage: str, functions: list[str], settings: StageSettings | None = None) -> Json:
    """The repo's config with, for ``stage``: no autogenerated policy, one policy file per function,
    and the custom domain of ``settings`` as Chalice's own ``api_gateway_custom_domain`` (``chalice
    package`` then writes the domain name and its base path mapping; ``make deploy`` passes no
    settings and makes the domain in ``finish``, scripts/deploy_edge.py)."""
    config = copy.deepcopy(repo_config)
    deployment = STAGE_DEPLOYMENTS.get(stage, DEFAULT_DEPLOYMENT)
    stage_config = config["stages"][stage]
    stage_config.pop(SETTINGS_KEY, None)  # ours, not Chalice's
    if settings is not None and settings.domain is not None:
        stage_config["api_gateway_custom_domain"] = {
            "domain_name": settings.domain.name(stage),
            "certificate_arn": settings.domain.certificate_arn,
            "url_prefix": settings.domain.base_path,
            "tls_version": "TLS_1_2",
        }
    stage_config["autogen_policy"] = False
    stage_config["log_retention_in_days"] = LOG_RETENTION_DAYS
    per_function = stage_config.setdefault("lambda_functions", {})
    for function in functions:
        function_config = per_function.setdefault(function, {})
        function_config["iam_policy_file"] = policy_file(stage, function)
        if function in deployment.reserved:
            function_config["reserved_concurrency"] = deployment.reserved[function]
    return config


def policy_file(stage: str, function: str) -> str:
    return f"policy-{stage}-{function}.json"


def write_project(
    stage: str, project: Path, functions: list[str], template: Json, settings: StageSettings | None = None
) -> Json:
    """Copy what Chalice packages into ``project`` and write its config and policy files."""
    repo_config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    if stage not in repo_config["stages"]:
        raise PackageError(f"unknown stage {stage!r}; .chalice/config.json has {sorted(repo_config['stages'])}")
    shutil.rmtree(project, ignore_errors=True)
    (project / ".chalice").mkdir(parents=True)
    copy_packaged(ROOT, project)
    config = chalice_config(repo_config, stage, functions, settings)
    (project / ".chalice" / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    xray = bool(config["stages"][stage].get("xray", False))
    for function in functions:
        document = policy_document(function, stage, template, xray)
        (project / ".chalice" / policy_file(stage, function)).write_text(json.dumps(document, indent=2) + "\n")
    return dict(config["stages"][stage])


def _route_through_alias(sam: Json, functions: list[str]) -> None:
    """Point API Gateway at the ``live`` alias of functions with provisioned concurrency.

    Provisioned concurrency belongs to an alias; Chalice's swagger and invoke permission name the
    unqualified function, which would run on demand beside two idle warm instances.
    """
    for function in functions:
        name = cfn_name(function)
        if "AutoPublishAlias" not in sam["Resources"].get(name, {}).get("Properties", {}):
            continue
        alias = f"{name}Alias{ALIAS}"  # the logical id SAM gives the alias
        api = sam["Resources"].get("RestAPI")
        if api is not None:
            text = json.dumps(api["Properties"]["DefinitionBody"]).replace(f"${{{name}.Arn}}", f"${{{alias}}}")
            api["Properties"]["DefinitionBody"] = json.loads(text)
        permission = sam["Resources"].get(f"{name}InvokePermission")
        if permission is not None:
            permission["Properties"]["FunctionName"] = {"Ref": alias}


# Event sources on the template's own resources, by reference so that they are created first.
# Chalice names them with ``Fn::Sub`` text, which its deep merge cannot replace: set after packaging.
EVENT_SOURCES: dict[str, tuple[str, str, Json]] = {
    "process_order": ("sqs-event-source", "Queue", {"Fn::GetAtt": ["OrderProcessingQueue", "Arn"]}),
    "route_notification_events": ("sqs-event-source", "Queue", {"Fn::GetAtt": ["NotificationEventsQueue", "Arn"]}),
    "recheck_payment": ("sqs-event-source", "Queue", {"Fn::GetAtt": ["PaymentRechecksQueue", "Arn"]}),
    "send_notification": ("sns-subscription", "Topic", {"Ref": "NotificationTopic"}),
}


def _wire_event_sources(sam: Json, functions: list[str]) -> None:
    resources = sam["Resources"]
    for function, (suffix, key, value) in EVENT_SOURCES.items():
        if function in functions:
            event = resources[cfn_name(function)]["Properties"]["Events"][to_cfn_resource_name(f"{function}-{suffix}")]
            event["Properties"][key] = value
    if "handle_workflow_event" in functions:
        # Only this stage's executions: the default bus carries every state machine's status changes.
        events = resources[cfn_name("handle_workflow_event")]["Properties"]["Events"]
        pattern = events[to_cfn_resource_name("handle_workflow_event-event")]["Properties"]["Pattern"]
        pattern["detail"] = {"stateMachineArn": [{"Ref": "OrderStateMachine"}]}


def _fix_log_groups(sam: Json) -> None:
    """Chalice names the API handler's log group after ``${ApiHandler}``, before renaming it ``APIHandler``.

    Its functions' log groups are deleted with the stack, as the stage template's are
    (``infra.template.apply_deletion_policies``), now said explicitly.
    """
    log_group = sam["Resources"].get("ApiHandlerLogGroup")
    if log_group is not None:
        log_group["Properties"]["LogGroupName"] = {"Fn::Sub": "/aws/lambda/${APIHandler}"}
    for resource in sam["Resources"].values():
        if resource["Type"] == "AWS::Logs::LogGroup":
            resource.setdefault("DeletionPolicy", "Delete")
            resource.setdefault("UpdateReplacePolicy", "Delete")


def chalice_executable() -> str:
    found = Path(sys.executable).with_name("chalice")
    return str(found) if found.exists() else "chalice"


def package(stage: str, build_root: Path = ROOT / "build", settings_file: Path | None = None) -> Path:
    """Build ``build/<stage>`` and return the path of the packaged ``sam.json``.

    ``settings_file`` lays per-stage settings over the config's (``infra.stage_settings``)."""
    if stage == "local":
        raise PackageError("the local stage is not deployed: `make run` provisions it")
    functions = app_functions()
    try:
        settings = load_stage_settings(stage, settings_file)
    except StageSettingsError as exc:
        raise PackageError(str(exc)) from exc
    template = stage_template(stage, settings=settings)
    stage_dir = build_root / stage
    project = stage_dir / "project"
    chalice_stage = write_project(stage, project, functions, template, settings)
    try:
        vendor_packages(project, stage_architecture(project, stage))
    except VendorError as exc:
        raise PackageError(str(exc)) from exc
    endpoint_type = str(chalice_stage.get("api_gateway_endpoint_type", "EDGE"))
    merge = merge_template(stage, functions, settings, bool(chalice_stage.get("xray", False)), endpoint_type)
    merge_path = stage_dir / "merge.json"
    merge_path.write_text(json.dumps(merge, indent=2) + "\n")
    out = stage_dir / "out"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"}
    command = [chalice_executable(), "package", "--stage", stage, "--merge-template", str(merge_path), str(out)]
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv, no shell  # nosec B603
    if done.returncode != 0:
        raise PackageError(f"chalice package failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    sam_path = out / "sam.json"
    sam = json.loads(sam_path.read_text())
    _route_through_alias(sam, functions)
    _wire_event_sources(sam, functions)
    _fix_log_groups(sam)
    add_lint_directives(sam, stage)
    sam_path.write_text(json.dumps(sam, indent=2) + "\n")
    return sam_path


def lint(sam_path: Path) -> tuple[int, str]:
    """cfn-lint's exit status and report; bit 2 of the status means errors (4 warnings, 8 notes)."""
    found = Path(sys.executable).with_name("cfn-lint")
    command = [str(found) if found.exists() else "cfn-lint", "--format", "parseable", str(sam_path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv, no shell  # nosec B603
    return done.returncode, done.stdout + done.stderr


def lint_counts(report: str) -> dict[str, int]:
    """Errors, warnings and notes in a parseable cfn-lint report (rule ids start E, W, I)."""
    rules = re.findall(r":([EWI])\d{4}:", report)
    return {"errors": rules.count("E"), "warnings": rules.count("W"), "notes": rules.count("I")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Package a stage into one SAM template and lint it.")
    parser.add_argument("--stage", required=True)
    parser.add_argument("--no-lint", action="store_true")
    parser.add_argument("--build", type=Path, default=ROOT / "build", help="where to write <stage>/ (default build/)")
    parser.add_argument("--settings", type=Path, help="stage settings over the config's (docs/deploy.md)")
    args = parser.parse_args(argv)
    try:
        sam_path = package(args.stage, args.build.resolve(), args.settings)
    except PackageError as exc:
        print(exc, file=sys.stderr)
        return 1
    shown = sam_path.relative_to(ROOT) if sam_path.is_relative_to(ROOT) else sam_path
    print(f"packaged {args.stage}: {shown} and {sam_path.with_name('deployment.zip').name}")
    if args.no_lint:
        return 0
    status, report = lint(sam_path)
    counts = lint_counts(report)
    print(report, end="")
    print(f"cfn-lint {args.stage}: {counts['errors']} errors, {counts['warnings']} warnings, {counts['notes']} notes")
    return 1 if status & 2 or status & 1 else 0


if __name__ == "__main__":
    sys.exit(main())
