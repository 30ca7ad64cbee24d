"""CloudWatch alarm actions on the local stage: an alarm that goes into ``ALARM`` notifies its topics.

moto 5.2.5 keeps alarms and their state (``SetAlarmState`` changes it) but never runs an alarm's
actions, so the stage's alerts topic, and whoever subscribed to it (``alert_endpoints`` in the stage
settings, ``infra.stage_settings``), would hear nothing. ``install_alarm_actions`` hooks moto's alarm
state change (``Alarm.update_state``, through the checked layer, ``localstage/patches.py``): on each
transition into ``ALARM`` it publishes CloudWatch's notification (the JSON message and subject AWS
sends, as documented in "Using Amazon CloudWatch alarms", SNS notification format) to every SNS
topic in the alarm's ``AlarmActions``, on a thread of its own, as CloudWatch acts after answering.
SNS then delivers it to the topic's subscribers, an HTTP endpoint included.

Only transitions count, as on AWS: an alarm already in ``ALARM``, or one that stays there, notifies
nobody. ``OKActions`` and ``InsufficientDataActions`` are not run (the stage declares none). An
earlier version polled ``DescribeAlarms`` every second: with the stage's 70 alarms that cost each
idle stage about a quarter of a core.

    aws --endpoint-url http://127.0.0.1:4566 cloudwatch set-alarm-state \\
        --alarm-name ecommerce-backend-order-processing-dlq-local --state-value ALARM --state-reason drill
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from localstage.patches import Patches

log = logging.getLogger("localstage.alarms")

REGION_NAMES = {"us-east-1": "US East (N. Virginia)"}  # the subject names the region as CloudWatch does


def notification(alarm: dict[str, Any], old_state: str, account: str, region: str) -> tuple[str, str]:
    """CloudWatch's SNS notification for ``alarm``'s transition: ``(subject, message)``."""
    changed = alarm["StateUpdatedTimestamp"]
    message = {
        "AlarmName": alarm["AlarmName"],
        "AlarmDescription": alarm.get("AlarmDescription"),
        "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": _iso(alarm.get("AlarmConfigurationUpdatedTimestamp", changed)),
        "NewStateValue": alarm["StateValue"],
        "NewStateReason": alarm.get("StateReason", ""),
        "StateChangeTime": _iso(changed),
        "Region": REGION_NAMES.get(region, region),
        "AlarmArn": alarm["AlarmArn"],
        "OldStateValue": old_state,
        "OKActions": alarm.get("OKActions", []),
        "AlarmActions": alarm.get("AlarmActions", []),
        "InsufficientDataActions": alarm.get("InsufficientDataActions", []),
        "Trigger": {
            "MetricName": alarm.get("MetricName"),
            "Namespace": alarm.get("Namespace"),
            "StatisticType": "ExtendedStatistic" if "ExtendedStatistic" in alarm else "Statistic",
            "Statistic": alarm.get("ExtendedStatistic") or str(alarm.get("Statistic", "")).upper(),
            "Dimensions": [{"value": d["Value"], "name": d["Name"]} for d in alarm.get("Dimensions", [])],
            "Period": alarm.get("Period"),
            "EvaluationPeriods": alarm.get("EvaluationPeriods"),
            "ComparisonOperator": alarm.get("ComparisonOperator"),
            "Threshold": alarm.get("Threshold"),
            "TreatMissingData": alarm.get("TreatMissingData", ""),
        },
    }
    subject = f'ALARM: "{alarm["AlarmName"]}" in {REGION_NAMES.get(region, region)}'
    return subject[:100], json.dumps(message, default=str)  # SNS subjects are at most 100 characters


def _iso(value: Any) -> str:
    return value.isoformat(timespec="milliseconds") if hasattr(value, "isoformat") else str(value)


def described(alarm: Any) -> dict[str, Any]:
    """moto's ``Alarm`` as ``DescribeAlarms`` shows it: the fields CloudWatch's notification names."""
    found = {
        "AlarmName": alarm.name,
        "AlarmArn": alarm.alarm_arn,
        "AlarmDescription": alarm.description,
        "AlarmConfigurationUpdatedTimestamp": alarm.configuration_updated_timestamp,
        "StateValue": alarm.state_value,
        "StateReason": alarm.state_reason,
        "StateUpdatedTimestamp": alarm.state_updated_timestamp,
        "MetricName": alarm.metric_name,
        "Namespace": alarm.namespace,
        "Dimensions": [{"Name": d.name, "Value": d.value} for d in alarm.dimensions],
        "Period": alarm.period,
        "EvaluationPeriods": alarm.evaluation_periods,
        "ComparisonOperator": alarm.comparison_operator,
        "Threshold": alarm.threshold,
        "TreatMissingData": alarm.treat_missing_data or "",
        "OKActions": list(alarm.ok_actions),
        "AlarmActions": list(alarm.alarm_actions or []),
        "InsufficientDataActions": list(alarm.insufficient_data_actions),
        "ActionsEnabled": alarm.actions_enabled,
    }
    if alarm.extended_statistic:
        found["ExtendedStatistic"] = alarm.extended_statistic
    else:
        found["Statistic"] = alarm.statistic
    return found


def install_alarm_actions(patches: Patches, sns: Callable[[], Any]) -> None:
    """Publish each alarm's transition into ``ALARM`` to its SNS actions (undone with ``patches``).

    ``sns`` gives the SNS client to publish with (built on first use, so a stage that never alarms
    never makes one).
    """
    from moto.cloudwatch.models import Alarm

    patches.wrap("moto", Alarm, "update_state", _notifying(sns))


def _notifying(sns: Callable[[], Any]) -> Callable[[Any], Any]:
    def wrap(original: Callable[..., None]) -> Callable[..., None]:
        def update_state(alarm: Any, reason: str, reason_data: str, state_value: str) -> None:
            old_state = alarm.state_value
            original(alarm, reason, reason_data, state_value)
            if state_value == "ALARM" and old_state != "ALARM" and alarm.actions_enabled:
                snapshot = described(alarm)  # as it is now: the thread may run after the next change
                threading.Thread(
                    target=notify, args=(sns, snapshot, old_state), name="alarm-actions", daemon=True
                ).start()

        return update_state

    return wrap


def notify(sns: Callable[[], Any], alarm: dict[str, Any], old_state: str) -> None:
    """Publish ``alarm``'s notification to each SNS topic among its actions; a failure is logged."""
    arn_parts = alarm["AlarmArn"].split(":")
    subject, message = notification(alarm, old_state, account=arn_parts[4], region=arn_parts[3])
    for action in alarm.get("AlarmActions", []):
        if action.startswith("arn:aws:sns:"):
            try:
                sns().publish(TopicArn=action, Subject=subject, Message=message)
            except Exception as exc:  # CloudWatch records a failed action in the alarm's history; here, the log
                log.warning("alarm %s: could not notify %s: %s", alarm["AlarmName"], action, exc)
                continue
            log.info("alarm %s: ALARM, notified %s", alarm["AlarmName"], action)
