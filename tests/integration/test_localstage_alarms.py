"""On the local stage an alarm that fires reaches whoever subscribed to the alerts topic.

The stage template with an alert endpoint (``alert_endpoints``, ``infra.stage_settings``) is provisioned
into the embedded AWS; an HTTP endpoint on this machine stands in for the on-call hook.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import httpx
import pytest

from infra.stage_settings import StageSettings
from infra.template import stage_template
from localstage.alarm_actions import install_alarm_actions
from localstage.patches import Patches
from localstage.provision import Provisioner
from localstage.server import REGION, EmbeddedAws
from localstage.sns_delivery import install_sns_hook

pytestmark = pytest.mark.integration

DLQ_ALARM = "ecommerce-backend-order-processing-dlq-local"


Subscribed = tuple[Any, Any, Patches, "queue.Queue[dict[str, Any]]"]  # cloudwatch, sns, the layer, the endpoint's POSTs


class _Receiver(BaseHTTPRequestHandler):
    received: queue.Queue[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.put(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def subscribed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Subscribed]:
    received: queue.Queue[dict[str, Any]] = queue.Queue()
    handler = type("Receiver", (_Receiver,), {"received": received})
    endpoint = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=endpoint.serve_forever, daemon=True).start()
    aws = EmbeddedAws(port=0).start(environ={})
    patches = Patches()
    install_sns_hook(patches)  # the stage's SNS delivery: an HTTP subscriber's POST does not hold up Publish
    # moto's state is the process's: without a reset the topic keeps an earlier test's (closed) endpoint.
    httpx.post(f"{aws.endpoint}/moto-api/reset", timeout=10).raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint)
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    url = f"http://127.0.0.1:{endpoint.server_address[1]}/alerts"
    try:
        template = stage_template("local", settings=StageSettings(alert_endpoints=(url,)))
        # The alerts topic, its subscription and one alarm with its queue: the rest would only take time.
        wanted = ("AlertsTopic", "AlertsSubscription1", "OrderProcessingDLQ", "OrderProcessingDLQAlarm")
        template["Resources"] = {name: template["Resources"][name] for name in wanted}
        template["Outputs"] = {}
        Provisioner(session).apply(template)
        yield session.client("cloudwatch"), session.client("sns"), patches, received
    finally:
        patches.undo()
        endpoint.shutdown()
        aws.stop()


def _notifications(received: queue.Queue[dict[str, Any]], timeout_s: float = 5.0) -> list[dict[str, Any]]:
    found = []
    try:
        while True:
            message = received.get(timeout=timeout_s if not found else 0.5)
            if message.get("Type") == "Notification":
                found.append(message)
    except queue.Empty:
        return found


def test_given_an_alert_endpoint_when_an_alarm_goes_into_alarm_then_the_endpoint_receives_cloudwatchs_notification(
    subscribed: Subscribed,
) -> None:
    cloudwatch, sns, patches, received = subscribed
    # GIVEN the stage's alarm actions, none firing, and an HTTP endpoint subscribed to the alerts topic
    install_alarm_actions(patches, lambda: sns)
    # WHEN the dead-letter alarm fires (SetAlarmState: what an operator's drill does)
    cloudwatch.set_alarm_state(AlarmName=DLQ_ALARM, StateValue="ALARM", StateReason="drill: a message in the DLQ")
    # THEN its notification reaches the endpoint, in CloudWatch's format
    [notification] = _notifications(received)
    assert notification["Subject"] == f'ALARM: "{DLQ_ALARM}" in US East (N. Virginia)'
    assert notification["TopicArn"].endswith(":ecommerce-backend-alerts-local")
    message = json.loads(notification["Message"])
    assert (message["AlarmName"], message["NewStateValue"]) == (DLQ_ALARM, "ALARM")
    assert message["OldStateValue"] == "OK" and message["NewStateReason"] == "drill: a message in the DLQ"
    assert message["Trigger"]["MetricName"] == "ApproximateNumberOfMessagesVisible"


def test_given_an_alarm_already_firing_then_only_a_new_transition_notifies_again(subscribed: Subscribed) -> None:
    cloudwatch, sns, patches, received = subscribed
    # GIVEN an alarm in ALARM, and the actions installed after that
    cloudwatch.set_alarm_state(AlarmName=DLQ_ALARM, StateValue="ALARM", StateReason="before")
    install_alarm_actions(patches, lambda: sns)
    # WHEN it is set to ALARM again (it stays there), THEN nobody is notified: CloudWatch acts on transitions
    cloudwatch.set_alarm_state(AlarmName=DLQ_ALARM, StateValue="ALARM", StateReason="still")
    assert _notifications(received, timeout_s=1.0) == []
    # WHEN it recovers and fires again
    cloudwatch.set_alarm_state(AlarmName=DLQ_ALARM, StateValue="OK", StateReason="drained")
    cloudwatch.set_alarm_state(AlarmName=DLQ_ALARM, StateValue="ALARM", StateReason="again")
    # THEN that second transition notifies, once
    assert [json.loads(n["Message"])["NewStateReason"] for n in _notifications(received)] == ["again"]
