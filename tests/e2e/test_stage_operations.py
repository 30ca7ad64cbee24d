"""Operations on the running local stage: EMF business metrics, and the scheduled cost optimizer's report."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import RunningStage
from tests.e2e.support import StageShop, aws, reports, wait_for

pytestmark = pytest.mark.e2e

PREFIX = "ecommerce-backend-local"
REPORTS_BUCKET = "ecommerce-backend-reports-local"


def _metric_sum(stage: RunningStage, namespace: str, name: str, dimensions: list[dict[str, str]]) -> float:
    now = datetime.now(UTC)
    points = aws(stage, "cloudwatch").get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=dimensions,
        StartTime=now - timedelta(minutes=30),
        EndTime=now + timedelta(minutes=1),
        Period=3600,
        Statistics=["Sum"],
    )["Datapoints"]
    return float(sum(p["Sum"] for p in points))


def _settled_report_counts(stage: RunningStage, functions: list[str]) -> dict[str, int]:
    """REPORT lines per function once no new invocation has appeared for two seconds."""
    previous: dict[str, int] = {}
    for _ in range(30):
        counts = {f: len(reports(stage, f)) for f in functions}
        if counts == previous:
            return counts
        previous = counts
        time.sleep(2)
    raise AssertionError("the stage never went quiet")


def test_given_completed_orders_then_emf_business_metrics_are_queryable(local_stage: RunningStage) -> None:
    shop = StageShop(local_stage)
    product = shop.product(price=20.0, stock=10)
    before = _metric_sum(local_stage, "ServerlessApp", "OrdersProcessed", [{"Name": "Stage", "Value": "local"}])
    orders = [shop.order(product) for _ in range(2)]
    assert all(shop.settle(o)["status"] == "COMPLETED" for o in orders)

    def counted() -> bool:
        now = _metric_sum(local_stage, "ServerlessApp", "OrdersProcessed", [{"Name": "Stage", "Value": "local"}])
        return now >= before + 2

    assert wait_for(counted)


def test_given_orders_have_run_when_the_schedule_fires_then_the_report_counts_what_ran(
    local_stage: RunningStage,
) -> None:
    shop = StageShop(local_stage)
    product = shop.product(stock=10)
    assert shop.settle(shop.order(product))["status"] == "COMPLETED"
    watched = [f"{PREFIX}-process_order", f"{PREFIX}-validate_order", f"{PREFIX}-complete_order", PREFIX]
    ran = _settled_report_counts(local_stage, watched)

    # The Scheduled Event a rule delivers; its time closes the window (the next minute, so this minute counts).
    scheduled_at = (datetime.now(UTC) + timedelta(minutes=1)).replace(second=0, microsecond=0)
    event = {
        "version": "0",
        "id": "e2e",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": scheduled_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{PREFIX}-cost_optimizer-event"],
        "detail": {},
    }
    answer = aws(local_stage, "lambda").invoke(FunctionName=f"{PREFIX}-cost_optimizer", Payload=json.dumps(event))
    result: dict[str, Any] = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, result

    key = f"cost-optimization-report-{scheduled_at:%Y%m%d-%H%M%S}.json"
    report = json.loads(aws(local_stage, "s3").get_object(Bucket=REPORTS_BUCKET, Key=key)["Body"].read())
    for function in watched:
        assert report["functions"][function]["invocations"] == ran[function], function
    assert report["summary"]["total_invocations"] >= sum(ran.values())
