"""The dashboard and alarms in the stage's single definition (provisioned: tests/integration/test_observability_paths.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import app as application
from infra.observability import API_GATEWAY_STAGE, HANDLERS, function_name
from infra.template import stage_template

CHALICE_CONFIG = json.loads((Path(__file__).parents[2] / ".chalice" / "config.json").read_text())
STAGES = sorted(CHALICE_CONFIG["stages"])


def _alarms(stage: str) -> dict[str, dict[str, Any]]:
    resources = stage_template(stage)["Resources"]
    return {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }


def _dashboard(stage: str) -> dict[str, Any]:
    (body,) = [
        r["Properties"]["DashboardBody"]["Fn::Sub"]
        for r in stage_template(stage)["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    return dict(json.loads(body.replace("${AWS::Region}", "us-east-1")))


@pytest.mark.unit
def test_the_handlers_alarmed_are_exactly_the_functions_app_py_deploys() -> None:
    app = application.app
    deployed = {"api_handler"} | {f.name for f in app.pure_lambda_functions} | {s.name for s in app.event_sources}
    deployed |= {a.name for a in app.builtin_auth_handlers}
    assert set(HANDLERS) == deployed and len(HANDLERS) == len(deployed)
    for stage in STAGES:
        assert CHALICE_CONFIG["stages"][stage]["api_gateway_stage"] == API_GATEWAY_STAGE


@pytest.mark.unit
@pytest.mark.parametrize("stage", STAGES)
def test_given_a_stage_then_each_function_has_the_seeds_three_alarms_on_the_alerts_topic(stage: str) -> None:
    alarms = _alarms(stage)
    for handler in HANDLERS:
        name = function_name(handler, stage, "ecommerce-backend")
        for kind, metric in (("HighErrorRate", "Errors"), ("HighDuration", "Duration"), ("HighThrottles", "Throttles")):
            alarm = alarms[f"{name}-{kind}"]
            assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", metric)
            assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": name}]
    assert alarms[f"ecommerce-backend-{stage}-HighDuration"]["ExtendedStatistic"] == "p99"
    assert all(a["AlarmActions"] == [{"Ref": "AlertsTopic"}] for a in alarms.values())


@pytest.mark.unit
@pytest.mark.parametrize("stage", STAGES)
def test_given_a_stage_then_api_5xx_p99_latency_and_dead_letter_alarms_exist(stage: str) -> None:
    alarms = _alarms(stage)
    by_metric = {(a["Namespace"], a["MetricName"]): a for a in alarms.values() if a["Namespace"] != "AWS/Lambda"}
    five_xx = by_metric[("AWS/ApiGateway", "5XXError")]
    latency = by_metric[("AWS/ApiGateway", "Latency")]
    api = [{"Name": "ApiName", "Value": "ecommerce-backend"}, {"Name": "Stage", "Value": "api"}]
    assert five_xx["Dimensions"] == latency["Dimensions"] == api
    assert latency["ExtendedStatistic"] == "p99" and five_xx["Statistic"] == "Average"
    dlq = [a for a in alarms.values() if a["MetricName"] == "ApproximateNumberOfMessagesVisible"]
    assert len(dlq) == 5  # infra/pipeline.py's, reused rather than duplicated


@pytest.mark.unit
def test_given_the_dashboard_then_duration_and_errors_per_function_and_the_business_metrics() -> None:
    widgets = {w["properties"]["title"]: w["properties"] for w in _dashboard("dev")["widgets"]}
    names = {function_name(h, "dev", "ecommerce-backend") for h in HANDLERS}
    assert {m[3] for m in widgets["Function Duration (p99)"]["metrics"]} == names
    assert {m[3] for m in widgets["Function Errors"]["metrics"]} == names
    business = widgets["Business Metrics"]["metrics"]
    assert [m[1] for m in business] == ["OrdersProcessed", "PaymentSuccess", "InventoryReservations"]
    assert all(m[0] == "ServerlessApp" and m[2:] == ["Stage", "dev"] for m in business)
    assert widgets["Order Value (USD)"]["metrics"] == [
        ["ServerlessApp", "OrderValue", "Currency", "USD", "Stage", "dev"]
    ]
