"""Step Functions status change events from moto's own execution ends: Standard machines only, as on AWS."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localstage.patches import Patches
from localstage.sfn_events import install_status_events

pytestmark = pytest.mark.unit

PASS = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})


class RecordingEvents:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> None:
        self.entries += Entries


def test_given_a_standard_and_an_express_machine_when_each_runs_then_only_the_standard_one_puts_an_event() -> None:
    events = RecordingEvents()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), Patches() as patches:
        install_status_events(patches, lambda: events)
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arns = {}
        for kind in ("STANDARD", "EXPRESS"):
            machine = sfn.create_state_machine(
                name=kind.lower(), definition=PASS, roleArn="arn:aws:iam::123456789012:role/r", type=kind
            )["stateMachineArn"]
            arns[kind] = sfn.start_execution(stateMachineArn=machine, name="run")["executionArn"]
        deadline = time.monotonic() + 10
        while not events.entries and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the Express execution has ended by now too
    assert [e["Resources"] for e in events.entries] == [[arns["STANDARD"]]]
    detail = json.loads(events.entries[0]["Detail"])
    assert (detail["status"], detail["name"]) == ("SUCCEEDED", "run")
