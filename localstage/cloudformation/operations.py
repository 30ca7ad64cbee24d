"""Fills for the workflow and what watches the stage: the state machine, log groups, alarms, the dashboard.

What moto 5.2.5 does with them:

- ``AWS::StepFunctions::StateMachine`` goes to ``stepfunctions_backends`` while the API, once the stage
  switches execution on, reads ``stepfunctions_parser_backends``: the machine is invisible to
  ``describe_state_machine``. ``DefinitionSubstitutions``, ``LoggingConfiguration``,
  ``TracingConfiguration`` and ``StateMachineType`` are ignored, and ``Fn::GetAtt Arn`` is missing;
- ``AWS::CloudWatch::Alarm`` has no model: skipped;
- ``AWS::Logs::LogGroup`` has no update (a changed retention drops the group from the stack), and its
  ``Arn`` lacks the ``:*`` AWS gives (the form Step Functions' logging destination takes);
- ``AWS::CloudWatch::Dashboard`` works; the fill adds the refusal of an existing name and of a body
  that is not JSON, as ``PutDashboard`` does.
"""

from __future__ import annotations

import json
from typing import Any

from moto.cloudwatch.models import CloudWatchBackend, cloudwatch_backends
from moto.logs.models import LogsBackend, logs_backends
from moto.stepfunctions.responses import get_backend as stepfunctions_backend

from localstage.cloudformation.model import Filled, FillError, Json, ResourceFill, Where, flag


class StateMachineFill(ResourceFill):
    TYPE = "AWS::StepFunctions::StateMachine"
    NAME_PROPERTY = "StateMachineName"
    PROPERTIES = frozenset(
        {
            "StateMachineName",
            "StateMachineType",
            "DefinitionString",
            "Definition",
            "DefinitionSubstitutions",
            "RoleArn",
            "LoggingConfiguration",
            "TracingConfiguration",
        }
    )
    REQUIRED = frozenset({"RoleArn"})
    REPLACE_ON = frozenset({"StateMachineName", "StateMachineType"})
    ATTRIBUTES = frozenset({"Arn", "Name"})

    @classmethod
    def create(cls, where: Where, name: str, props: Json) -> Filled:
        backend = stepfunctions_backend(where.account_id, where.region_name)  # the one the API reads
        arn = f"arn:{where.partition}:states:{where.region_name}:{where.account_id}:stateMachine:{name}"
        if any(machine.arn == arn for machine in backend.state_machines):
            raise cls.already_exists(arn)
        backend.create_state_machine(
            name=name,
            definition=_definition(props),
            roleArn=props["RoleArn"],
            loggingConfiguration=_logging(props),
            tracingConfiguration=_tracing(props),
            sm_type=props.get("StateMachineType", "STANDARD"),
        )
        return cls.made(where, arn, props, Arn=arn, Name=name)  # Ref: the ARN

    @classmethod
    def update(cls, resource: Filled, props: Json, changed: frozenset[str]) -> None:
        backend = stepfunctions_backend(resource.where.account_id, resource.where.region_name)
        backend.update_state_machine(
            resource.physical_resource_id,
            definition=_definition(props),
            role_arn=props["RoleArn"],
            # moto keeps the old setting when given none; an off switch is what a removed one means.
            logging_configuration=_logging(props) or {"level": "OFF", "includeExecutionData": False},  # type: ignore[arg-type]  # moto annotates dict[str, bool]
            tracing_configuration=_tracing(props) or {"enabled": False},
        )

    @classmethod
    def delete(cls, resource: Filled) -> None:
        backend = stepfunctions_backend(resource.where.account_id, resource.where.region_name)
        backend.delete_state_machine(resource.physical_resource_id)  # absent counts as deleted


def _definition(props: Json) -> str:
    """The definition with ``DefinitionSubstitutions`` applied, as CloudFormation applies them."""
    if ("DefinitionString" in props) == ("Definition" in props):
        raise FillError("AWS::StepFunctions::StateMachine: give exactly one of DefinitionString and Definition")
    text = str(props["DefinitionString"]) if "DefinitionString" in props else json.dumps(props["Definition"])
    for name, value in (props.get("DefinitionSubstitutions") or {}).items():
        text = text.replace("${" + name + "}", str(value))
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise FillError(
            f"AWS::StepFunctions::StateMachine: the definition is not JSON after substitution: {exc}"
        ) from exc
    return text


def _logging(props: Json) -> Json | None:
    config = props.get("LoggingConfiguration")
    if config is None:
        return None
    return {
        "level": config.get("Level", "OFF"),
        "includeExecutionData": flag(config.get("IncludeExecutionData", False)),
        "destinations": [
            {"cloudWatchLogsLogGroup": {"logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
            for d in config.get("Destinations", [])
        ],
    }


def _tracing(props: Json) -> Json | None:
    config = props.get("TracingConfiguration")
    return None if config is None else {"enabled": flag(config.get("Enabled", False))}


class LogGroupFill(ResourceFill):
    TYPE = "AWS::Logs::LogGroup"
    NAME_PROPERTY = "LogGroupName"
    PROPERTIES = frozenset({"LogGroupName", "RetentionInDays"})
    REPLACE_ON = frozenset({"LogGroupName"})
    ATTRIBUTES = frozenset({"Arn"})

    @classmethod
    def create(cls, where: Where, name: str, props: Json) -> Filled:
        backend = _logs(where)
        if name in backend.groups:
            raise cls.already_exists(name)
        group = backend.create_log_group(name, {})
        if "RetentionInDays" in props:
            backend.put_retention_policy(name, int(props["RetentionInDays"]))  # type: ignore[arg-type]
        return cls.made(where, name, props, Arn=f"{group.arn}:*")  # AWS's Arn ends in :*

    @classmethod
    def update(cls, resource: Filled, props: Json, changed: frozenset[str]) -> None:
        backend = _logs(resource.where)
        if "RetentionInDays" in props:
            backend.put_retention_policy(resource.physical_resource_id, int(props["RetentionInDays"]))  # type: ignore[arg-type]
        else:
            backend.delete_retention_policy(resource.physical_resource_id)

    @classmethod
    def delete(cls, resource: Filled) -> None:
        backend = _logs(resource.where)
        if resource.physical_resource_id in backend.groups:
            backend.delete_log_group(resource.physical_resource_id)


def _logs(where: Where) -> LogsBackend:
    return logs_backends[where.account_id][where.region_name]


ALARM_SETTINGS: dict[str, str] = {  # CloudFormation property -> put_metric_alarm's argument
    "AlarmDescription": "description",
    "Namespace": "namespace",
    "MetricName": "metric_name",
    "Dimensions": "dimensions",
    "Statistic": "statistic",
    "ExtendedStatistic": "extended_statistic",
    "Period": "period",
    "EvaluationPeriods": "evaluation_periods",
    "DatapointsToAlarm": "datapoints_to_alarm",
    "Threshold": "threshold",
    "ComparisonOperator": "comparison_operator",
    "TreatMissingData": "treat_missing_data",
    "AlarmActions": "alarm_actions",
    "OKActions": "ok_actions",
    "InsufficientDataActions": "insufficient_data_actions",
    "ActionsEnabled": "actions_enabled",
    "Unit": "unit",
    "EvaluateLowSampleCountPercentile": "evaluate_low_sample_count_percentile",
}
NUMBERS = {"Period": int, "EvaluationPeriods": int, "DatapointsToAlarm": int, "Threshold": float}


class AlarmFill(ResourceFill):
    TYPE = "AWS::CloudWatch::Alarm"
    NAME_PROPERTY = "AlarmName"
    PROPERTIES = frozenset(ALARM_SETTINGS) | {"AlarmName"}
    REQUIRED = frozenset({"ComparisonOperator", "EvaluationPeriods"})
    REPLACE_ON = frozenset({"AlarmName"})
    ATTRIBUTES = frozenset({"Arn"})

    @classmethod
    def create(cls, where: Where, name: str, props: Json) -> Filled:
        backend = _cloudwatch(where)
        if name in backend.alarms:
            raise cls.already_exists(name)
        alarm = _put_alarm(backend, name, props)
        return cls.made(where, name, props, Arn=alarm.alarm_arn)  # Ref: the alarm's name

    @classmethod
    def update(cls, resource: Filled, props: Json, changed: frozenset[str]) -> None:
        _put_alarm(_cloudwatch(resource.where), resource.physical_resource_id, props)  # PutMetricAlarm replaces

    @classmethod
    def delete(cls, resource: Filled) -> None:
        _cloudwatch(resource.where).delete_alarms([resource.physical_resource_id])  # absent counts as deleted


def _cloudwatch(where: Where) -> CloudWatchBackend:
    return cloudwatch_backends[where.account_id][where.region_name]


def _put_alarm(backend: CloudWatchBackend, name: str, props: Json) -> Any:
    arguments: Json = {"dimensions": [], "alarm_actions": [], "actions_enabled": True}
    for key, value in props.items():
        if key in ALARM_SETTINGS:
            arguments[ALARM_SETTINGS[key]] = NUMBERS[key](value) if key in NUMBERS else value
    arguments["actions_enabled"] = flag(arguments["actions_enabled"])
    arguments.setdefault("namespace", None)
    arguments.setdefault("metric_name", None)
    arguments.setdefault("period", None)
    arguments.setdefault("threshold", None)
    arguments.setdefault("statistic", None)
    arguments.setdefault("description", None)
    return backend.put_metric_alarm(name=name, **arguments)


class DashboardFill(ResourceFill):
    TYPE = "AWS::CloudWatch::Dashboard"
    NAME_PROPERTY = "DashboardName"
    PROPERTIES = frozenset({"DashboardName", "DashboardBody"})
    REQUIRED = frozenset({"DashboardBody"})
    REPLACE_ON = frozenset({"DashboardName"})

    @classmethod
    def create(cls, where: Where, name: str, props: Json) -> Filled:
        backend = _cloudwatch(where)
        if backend.get_dashboard(name) is not None:
            raise cls.already_exists(name)
        backend.put_dashboard(name, _body(props))
        return cls.made(where, name, props)  # Ref: the dashboard's name

    @classmethod
    def update(cls, resource: Filled, props: Json, changed: frozenset[str]) -> None:
        _cloudwatch(resource.where).put_dashboard(resource.physical_resource_id, _body(props))

    @classmethod
    def delete(cls, resource: Filled) -> None:
        backend = _cloudwatch(resource.where)
        if backend.get_dashboard(resource.physical_resource_id) is not None:
            backend.delete_dashboards([resource.physical_resource_id])


def _body(props: Json) -> str:
    body = str(props["DashboardBody"])
    try:
        json.loads(body)
    except json.JSONDecodeError as exc:  # PutDashboard's InvalidParameterInput
        raise FillError(f"AWS::CloudWatch::Dashboard: DashboardBody is not JSON: {exc}") from exc
    return body
