"""CloudWatch alarm actions on the local stage: an alarm that goes into ``ALARM`` notifies its topics.

moto 5.2.5 keeps alarms and their state (``SetAlarmState`` changes it) but never runs an alarm's
actions, so the stage's alerts topic, and whoever subscribed to it (``alert_endpoints`` in the stage
settings, ``infra.stage_settings``), would hear nothing. ``AlarmNotifier`` watches the alarms through
the CloudWatch API, as an outside observer would, and on each transition into ``ALARM`` publishes
CloudWatch's notification (the JSON message and subject AWS sends, as documented in "Using Amazon
CloudWatch alarms", SNS notification format) to every SNS topic in the alarm's ``AlarmActions``.
SNS then delivers it to the topic's subscribers, an HTTP endpoint included.

Only transitions count, as on AWS: an alarm already in ``ALARM`` when the watcher starts, or one that
stays there, notifies nobody. ``OKActions`` and ``InsufficientDataActions`` are not run (the stage
declares none). *Difference*: the first notification can lag the transition by up to the poll interval.

    aws --endpoint-url http://127.0.0.1:4566 cloudwatch set-alarm-state \\
        --alarm-name ecommerce-backend-order-processing-dlq-local --state-value ALARM --state-reason drill
"""

from __future__ import annotations

import json
import logging
from typing import Any

from localstage.background import PeriodicWorker

log = logging.getLogger("localstage.alarms")

POLL_INTERVAL_S = 1.0
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


class AlarmNotifier(PeriodicWorker):
    """Publishes each alarm's transition into ``ALARM`` to its SNS actions (``tick`` or the thread)."""

    thread_name = "alarm-actions"

    def __init__(self, cloudwatch: Any, sns: Any, interval_s: float = POLL_INTERVAL_S) -> None:
        super().__init__(interval_s)
        self._cloudwatch = cloudwatch
        self._sns = sns
        self._states: dict[str, str] | None = None  # alarm name -> the state last seen

    def start(self) -> AlarmNotifier:
        self.tick()  # the states now are the baseline: only later transitions notify, as on AWS
        super().start()
        return self

    def tick(self) -> list[str]:
        """Look once; returns the names of the alarms that notified."""
        alarms = [
            alarm
            for page in self._cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"])
            for alarm in page["MetricAlarms"]
        ]
        first_look = self._states is None
        previous = self._states or {}
        self._states = {alarm["AlarmName"]: alarm["StateValue"] for alarm in alarms}
        if first_look:
            return []  # what was already in ALARM before the watcher started is not a transition it saw
        fired = []
        for alarm in alarms:
            old = previous.get(alarm["AlarmName"], "INSUFFICIENT_DATA")
            if alarm["StateValue"] == "ALARM" and old != "ALARM" and alarm.get("ActionsEnabled", True):
                self._notify(alarm, old)
                fired.append(alarm["AlarmName"])
        return fired

    def _notify(self, alarm: dict[str, Any], old_state: str) -> None:
        arn_parts = alarm["AlarmArn"].split(":")
        subject, message = notification(alarm, old_state, account=arn_parts[4], region=arn_parts[3])
        for action in alarm.get("AlarmActions", []):
            if action.startswith("arn:aws:sns:"):
                self._sns.publish(TopicArn=action, Subject=subject, Message=message)
                log.info("alarm %s: ALARM, notified %s", alarm["AlarmName"], action)
