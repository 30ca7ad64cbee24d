"""The scheduled cost optimizer on moto: functions in Lambda, metrics put into CloudWatch by the test.

The metrics are put here with ``put_metric_data`` (the test plays CloudWatch's part); the
application itself never calls it.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws

import app as application
from chalicelib.adapters.aws import reset_clients
from chalicelib.adapters.cloudwatch_usage import CloudWatchUsage
from chalicelib.bootstrap import Container, use_container
from chalicelib.config import Settings
from chalicelib.cost import DAYS_PER_MONTH
from chalicelib.domain.usage import tuning_key
from chalicelib.services.cost_optimizer import CostRun, report_key

pytestmark = pytest.mark.integration

REGION = "us-east-1"
BUCKET = "ecommerce-backend-reports-dev"
PREFIX = "ecommerce-backend-dev"
NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


@dataclass
class Account:
    container: Container
    lambda_: Any
    cloudwatch: Any
    s3: Any

    def function(self, handler: str, memory_mb: int = 512, architecture: str = "x86_64") -> str:
        name = PREFIX if handler == "api_handler" else f"{PREFIX}-{handler}"
        self.lambda_.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=self.role,
            Handler="app.app",
            Code={"ZipFile": _zip()},
            MemorySize=memory_mb,
            Architectures=[architecture],
        )
        return name

    def usage(self, name: str, days_ago: int, invocations: float, duration_ms_sum: float, **extra: float) -> None:
        """One day's sums for a function, as Lambda publishes them (and MaxMemoryUsed as our EMF does)."""
        when = NOW - timedelta(days=days_ago, hours=3)
        data = [("Invocations", invocations, "Count"), ("Duration", duration_ms_sum, "Milliseconds")]
        data += [(metric, value, "Count") for metric, value in extra.items() if metric in ("Errors", "Throttles")]
        self.cloudwatch.put_metric_data(
            Namespace="AWS/Lambda",
            MetricData=[
                {
                    "MetricName": metric,
                    "Dimensions": [{"Name": "FunctionName", "Value": name}],
                    "Timestamp": when,
                    "Value": value,
                    "Unit": unit,
                }
                for metric, value, unit in data
            ],
        )
        if "MaxMemoryUsed" in extra:
            self.cloudwatch.put_metric_data(
                Namespace="ServerlessApp",
                MetricData=[
                    {
                        "MetricName": "MaxMemoryUsed",
                        "Dimensions": [{"Name": "FunctionName", "Value": name}],
                        "Timestamp": when,
                        "Value": extra["MaxMemoryUsed"],
                        "Unit": "Megabytes",
                    }
                ],
            )

    @property
    def role(self) -> str:
        iam = boto3.client("iam", region_name=REGION)
        try:
            return str(iam.get_role(RoleName="optimizer-test")["Role"]["Arn"])
        except iam.exceptions.NoSuchEntityException:
            trust = {"Version": "2012-10-17", "Statement": []}
            return str(
                iam.create_role(RoleName="optimizer-test", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
            )

    def run(self, **detail: Any) -> dict[str, Any]:
        return self.container.cost_optimizer.run(CostRun.from_event({"time": NOW.isoformat(), "detail": detail}))

    def reports(self) -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", []) if "report" in o["Key"]]

    def report(self, key: str) -> dict[str, Any]:
        return dict(json.loads(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()))


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


@pytest.fixture
def account() -> Iterator[Account]:
    with mock_aws():
        reset_clients()
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        container = Container(Settings.from_env({"STAGE": "dev", "REPORTS_BUCKET": BUCKET, "AWS_REGION": REGION}))
        use_container(container)
        yield Account(
            container, boto3.client("lambda", region_name=REGION), boto3.client("cloudwatch", region_name=REGION), s3
        )
        use_container(None)
        reset_clients()


def test_given_daily_sums_when_the_optimizer_runs_then_invocations_are_the_sums_and_duration_is_weighted(
    account: Account,
) -> None:
    # GIVEN three days of traffic: 400 invocations in 3 datapoints, 2 very different hourly averages
    name = account.function("process_order", memory_mb=512)
    account.usage(name, 1, 100, 10_000)  # 100 ms average
    account.usage(name, 2, 250, 75_000)  # 300 ms average
    account.usage(name, 3, 50, 500, Errors=2, Throttles=1)  # 10 ms average
    # WHEN the scheduled run analyses the stage
    answer = account.run()
    # THEN one report under the seed's key, whose invocation count is the Sum, not the datapoint count
    assert account.reports() == [report_key(NOW)] and answer["report_location"] == f"s3://{BUCKET}/{report_key(NOW)}"
    report = account.report(report_key(NOW))
    entry = report["functions"][name]
    assert (entry["invocations"], entry["errors"], entry["throttles"]) == (400, 2, 1)
    assert entry["avg_duration_ms"] == pytest.approx(85_500 / 400)  # not (100 + 300 + 10) / 3
    assert report["status"] == "ok" and report["summary"]["total_invocations"] == 400
    # ... and the month is projected once: window cost x 30.4375 / 14 (first-tier prices are linear)
    expected = Decimal(str(entry["cost_usd"])) * DAYS_PER_MONTH / 14
    assert Decimal(str(entry["monthly_projection"]["cost_usd"])) == pytest.approx(expected, rel=Decimal("1e-6"))
    assert report["summary"]["total_monthly_cost_estimate_usd"] == entry["monthly_projection"]["cost_usd"]


def test_given_idle_and_slow_functions_when_analysed_then_unused_and_long_running_are_reported(
    account: Account,
) -> None:
    busy = account.function("api_handler")
    idle = account.function("send_notification")
    slow = account.function("process_payment", memory_mb=3008)
    account.usage(busy, 1, 10, 1_000)
    account.usage(slow, 1, 20, 20 * 7_000)
    report = account.run(dry_run=True)["report"]
    assert report["unused_functions"] == [idle]
    kinds = {(r["function"], r["type"]) for r in report["optimization_recommendations"]}
    assert (idle, "unused") in kinds and (slow, "performance") in kinds and (busy, "performance") not in kinds
    # 7 s at 3008 MB costs ~0.00034 USD per invocation: under the seed's 0.001 threshold
    assert (slow, "cost") not in kinds


def test_given_an_x86_function_when_analysed_then_the_arm64_saving_and_none_for_arm64(account: Account) -> None:
    x86 = account.function("validate_order", memory_mb=1024)
    arm = account.function("check_inventory", memory_mb=1024, architecture="arm64")
    for name in (x86, arm):
        account.usage(name, 1, 1_000, 1_000 * 200)
    report = account.run(dry_run=True)["report"]
    arch = [r for r in report["optimization_recommendations"] if r["type"] == "architecture"]
    assert [r["function"] for r in arch] == [x86]
    x86_month = report["functions"][x86]["monthly_projection"]["cost_usd"]
    arm_month = report["functions"][arm]["monthly_projection"]["cost_usd"]
    assert arch[0]["monthly_saving_usd"]["max"] == pytest.approx(x86_month - arm_month, rel=1e-6)
    assert arch[0]["monthly_saving_usd"]["max"] > 0


def test_given_tuning_results_when_analysed_then_the_measured_cheapest_size_with_high_confidence(
    account: Account,
) -> None:
    name = account.function("reserve_inventory", memory_mb=128)
    account.usage(name, 1, 1_000, 1_000 * 900)
    measured = {"128": 900, "256": 300, "512": 160, "1024": 120}  # CPU-bound: 256 MB is cheapest per call
    account.s3.put_object(
        Bucket=BUCKET,
        Key=tuning_key(name),
        Body=json.dumps(
            {
                "function_name": name,
                "architecture": "x86_64",
                "measured_at": "2026-11-20T10:00:00Z",
                "invocations_per_size": 50,
                "results": [{"memory_mb": int(m), "billed_ms_avg": ms} for m, ms in measured.items()],
            }
        ),
    )
    report = account.run(dry_run=True)["report"]
    (memory,) = [r for r in report["optimization_recommendations"] if r["type"] == "memory"]
    assert (memory["recommended_memory_mb"], memory["confidence"]) == (256, "high")
    assert report["functions"][name]["memory_analysis"]["status"] == "measured"
    assert memory["monthly_saving_usd"]["min"] == memory["monthly_saving_usd"]["max"] > 0


def test_given_only_max_memory_used_when_analysed_then_an_estimate_with_its_confidence_and_a_range(
    account: Account,
) -> None:
    over = account.function("schedule_shipping", memory_mb=1024)
    few = account.function("complete_order", memory_mb=1024)
    account.usage(over, 1, 200, 200 * 50, MaxMemoryUsed=70)
    account.usage(few, 1, 10, 10 * 50, MaxMemoryUsed=70)
    report = account.run(dry_run=True)["report"]
    (memory,) = [r for r in report["optimization_recommendations"] if r["type"] == "memory"]
    assert memory["function"] == over
    assert (memory["recommended_memory_mb"], memory["confidence"]) == (128, "medium")  # 70 / 0.8 -> 128 MB
    assert memory["monthly_saving_usd"]["min"] == 0 and memory["monthly_saving_usd"]["max"] > 0
    assert report["functions"][few]["memory_analysis"]["status"] == "insufficient_data"


def test_given_a_dry_run_when_it_runs_then_nothing_is_written(account: Account) -> None:
    account.usage(account.function("process_order"), 1, 10, 100)
    answer = account.run(dry_run=True)
    assert answer["dry_run"] is True and answer["report"]["functions"]
    assert account.reports() == []


def test_given_no_metrics_yet_when_the_schedule_fires_then_a_no_data_report_not_a_crash(account: Account) -> None:
    account.function("process_order")
    event = {
        "version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events", "account": "1",
        "time": NOW.isoformat().replace("+00:00", "Z"), "region": REGION, "resources": [], "detail": {},
    }  # fmt: skip
    application.cost_optimizer(event, None)
    application.cost_optimizer(event, None)  # a retried run: the same report, not a second one
    assert account.reports() == [report_key(NOW)]
    report = account.report(report_key(NOW))
    assert report["status"] == "no_data" and "nothing to analyse yet" in report["message"]
    assert report["unused_functions"] == [] and report["summary"]["total_invocations"] == 0


def test_given_named_functions_in_the_event_when_run_then_only_those_are_analysed(account: Account) -> None:
    wanted = account.function("process_order")
    account.function("validate_order")
    report = account.run(dry_run=True, function_names=[wanted])["report"]
    assert list(report["functions"]) == [wanted]


def test_given_another_stages_functions_when_listing_then_only_this_stages_are_analysed(account: Account) -> None:
    mine = account.function("process_order")
    account.lambda_.create_function(
        FunctionName="ecommerce-backend-devx-process_order", Runtime="python3.11", Role=account.role,
        Handler="app.app", Code={"ZipFile": _zip()},
    )  # fmt: skip
    report = account.run(dry_run=True)["report"]
    assert list(report["functions"]) == [mine]


def test_given_150_functions_when_reading_usage_then_two_get_metric_data_calls(account: Account) -> None:
    usage = CloudWatchUsage(account.cloudwatch)
    names = [f"{PREFIX}-f{i}" for i in range(150)]  # 5 queries each: 750 queries, 500 per call
    usage.usage(names, NOW - timedelta(days=14), NOW)
    assert usage.calls == 2
