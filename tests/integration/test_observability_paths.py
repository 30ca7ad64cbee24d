"""No request or event path calls PutMetricData: the API and the whole pipeline run on moto, every
AWS call the application's code makes is recorded, and metrics travel as EMF log lines instead.

The local stage's Lambda emulator publishes Lambda's own metrics (Invocations, Duration...) with
PutMetricData, as the Lambda service does; only calls made from ``app.py`` or ``chalicelib/`` count.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from chalice.test import Client
from moto import mock_aws

import app as application
from infra.template import stage_template
from localstage.provision import provision_stage
from tests.api_helpers import Api
from tests.integration.pipeline_stage import PipelineStage, pipeline_stage

pytestmark = pytest.mark.integration


def _from_the_application() -> bool:
    """Whether the code that called the SDK (the first frame outside boto3 and botocore) is the application's.

    Not "anywhere on the stack": moto delivers SNS to Lambda synchronously, so the emulator's own
    calls can run beneath an application frame.
    """
    for frame in reversed(traceback.extract_stack()[:-2]):  # innermost first, skipping this hook
        if "/botocore/" in frame.filename or "/boto3/" in frame.filename:
            continue
        return "/chalicelib/" in frame.filename or frame.filename.endswith("/main/app.py")
    return False


@pytest.fixture
def app_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    calls: list[str] = []
    original = BaseClient._make_api_call

    def recording(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if _from_the_application():
            calls.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    yield calls


def test_given_the_api_and_the_pipeline_when_an_order_runs_end_to_end_then_no_put_metric_data(
    app_calls: list[str],
) -> None:
    stage: PipelineStage
    with pipeline_stage() as stage, Client(application.app) as client:
        api = Api(client, stage.container)
        admin = api.admin_token()
        product = api.add_product(admin, stock=5)
        buyer = api.user_token("buyer@example.com")
        placed = api.call("POST", "/orders", api.order_body((product["product_id"], 1)), buyer)
        assert placed.status_code == 201, placed.body
        order_id = json.loads(placed.body)["order_id"]
        assert stage.deliver_orders() == 1
        stage.wait_until_finished(order_id)
        stage.deliver_events()
        assert api.call("GET", f"/orders/{order_id}", token=buyer).status_code == 200
        found = stage.container.order_progress.get(order_id)
        assert found is not None and found.status == "COMPLETED"
    # The hook saw the application's traffic (so it can see a PutMetricData), and there was none.
    assert {"TransactWriteItems", "SendMessage", "StartExecution", "PutEvents", "Publish"} <= set(app_calls)
    assert "PutMetricData" not in app_calls


def test_given_the_local_stage_when_provisioned_then_the_dashboard_and_alarms_exist() -> None:
    with mock_aws():
        provision_stage("local")
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        dashboards = [d["DashboardName"] for d in cloudwatch.list_dashboards()["DashboardEntries"]]
        paginator = cloudwatch.get_paginator("describe_alarms")
        alarms = [a for page in paginator.paginate() for a in page["MetricAlarms"]]
    topic = alarms[0]["AlarmActions"][0]
    assert dashboards == ["ecommerce-backend-local"]
    assert len(alarms) == sum(
        r["Type"] == "AWS::CloudWatch::Alarm" for r in stage_template("local")["Resources"].values()
    )
    assert {a["AlarmName"] for a in alarms} >= {
        "ecommerce-backend-local-api-5xx",
        "ecommerce-backend-local-HighThrottles",
    }
    assert topic.endswith(":ecommerce-backend-alerts-local")
    assert all(a["AlarmActions"] == [topic] for a in alarms)
