"""The triggers ``chalice deploy`` creates for event handlers, created through the AWS APIs.

- ``@app.on_sns_message(topic=...)``: a ``lambda`` subscription of the function
  to the topic, plus the invoke permission for ``sns.amazonaws.com``. ``topic``
  may be an ARN or a name; a name is resolved in the stage's account and region,
  and the topic is created if the template did not (``chalice deploy`` would fail
  instead; locally a handler should not be silently deaf).
- ``@app.on_cw_event(pattern)``: a rule ``<app>-<stage>-<handler>-event`` on the
  default bus with that pattern and the function as target ``1``.
- ``@app.schedule(expression)``: a rule of the same name with the schedule
  expression (``localstage.eventbridge.Scheduler`` fires it).

Idempotent: running it again against the same endpoint changes nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from chalice.app import ScheduleExpression

from localstage.functions import FunctionSpec
from localstage.server import ACCOUNT_ID, REGION

log = logging.getLogger("localstage.event_sources")


def topic_arn(topic: str, sns: Any, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    """The ARN of ``topic`` (a name or an ARN), creating a missing topic."""
    arn = topic if topic.startswith("arn:") else f"arn:aws:sns:{region}:{account}:{topic}"
    try:
        sns.get_topic_attributes(TopicArn=arn)
    except sns.exceptions.NotFoundException:
        log.info("topic %s does not exist; creating it", arn)
        arn = str(sns.create_topic(Name=arn.rsplit(":", 1)[-1])["TopicArn"])
    return arn


def rule_name(spec: FunctionSpec) -> str:
    """``chalice deploy``'s rule name: ``<app>-<stage>-<handler>-event``."""
    return f"{spec.name}-event"


def _function_arn(lambda_client: Any, spec: FunctionSpec) -> str:
    return str(lambda_client.get_function_configuration(FunctionName=spec.name)["FunctionArn"])


def _allow(lambda_client: Any, spec: FunctionSpec, principal: str, source_arn: str) -> None:
    # A stable id (not a random one), so that a second run finds the permission and adds none.
    statement = f"{principal.split('.')[0]}-{source_arn.rsplit(':', 1)[-1].replace('/', '-')}"[:100]
    with contextlib.suppress(lambda_client.exceptions.ResourceConflictException):
        lambda_client.add_permission(
            FunctionName=spec.name,
            StatementId=statement,
            Action="lambda:InvokeFunction",
            Principal=principal,
            SourceArn=source_arn,
        )


def subscribe_sns_handlers(specs: list[FunctionSpec], sns: Any, lambda_client: Any) -> list[str]:
    """Subscribe every ``on_sns_message`` function to its topic; returns the subscription ARNs."""
    arns: list[str] = []
    for spec in specs:
        if spec.sns is None:
            continue
        topic = topic_arn(spec.sns.topic, sns)
        function_arn = _function_arn(lambda_client, spec)
        existing = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        current = [
            s["SubscriptionArn"] for s in existing if s["Protocol"] == "lambda" and s["Endpoint"] == function_arn
        ]
        if current:
            arns.append(current[0])
            continue
        _allow(lambda_client, spec, "sns.amazonaws.com", topic)
        arns.append(sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=function_arn)["SubscriptionArn"])
    return arns


def put_rules(specs: list[FunctionSpec], events: Any, lambda_client: Any) -> list[str]:
    """Create the default-bus rules of ``on_cw_event`` and ``schedule`` functions; returns the rule ARNs."""
    arns: list[str] = []
    for spec in specs:
        rule: dict[str, Any] = {"Name": rule_name(spec), "State": "ENABLED"}
        if spec.cw_event is not None:
            rule["EventPattern"] = json.dumps(spec.cw_event.event_pattern)
        elif spec.schedule is not None:
            expression = spec.schedule.schedule_expression
            if isinstance(expression, ScheduleExpression):
                expression = expression.to_string()
            rule["ScheduleExpression"] = expression
            rule["Description"] = spec.schedule.description
        else:
            continue
        arn = str(events.put_rule(**rule)["RuleArn"])
        events.put_targets(Rule=rule["Name"], Targets=[{"Id": "1", "Arn": _function_arn(lambda_client, spec)}])
        _allow(lambda_client, spec, "events.amazonaws.com", arn)
        arns.append(arn)
    return arns
