"""The cost model's prices for every service but Lambda, each worked from a published example or
AWS's own unit rules (DynamoDB, SQS, SNS, EventBridge, Step Functions, CloudWatch, X-Ray, S3,
Secrets Manager), and one order's calls priced service by service.

Lambda's own pricing, the monthly projection and the memory curve are in test_cost_model.py.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.cost import (
    Architecture,
    CostModelError,
    Op,
    Service,
    ServiceCalls,
    cost_of_calls,
    cost_per_million_orders,
    cost_per_order,
)
from chalicelib.domain.money import to_cents

pytestmark = pytest.mark.unit

D = Decimal
KB = 1024


# --- calls by service ---------------------------------------------------------------------------


def test_given_dynamodb_developer_guide_item_sizes_when_priced_then_units_follow_1kb_and_4kb_rules() -> None:
    # Source: DynamoDB pricing page "key terms": a 3 KB standard write = 3 units, transactional = 6;
    # an 8 KB strongly consistent read = 2, eventually consistent = 1, transactional = 4.
    calls = (
        ServiceCalls()
        .add(Service.DYNAMODB, Op.PUT_ITEM, size_bytes=3 * KB)
        .add(Service.DYNAMODB, Op.TRANSACT_WRITE_ITEM, size_bytes=3 * KB)
        .add(Service.DYNAMODB, Op.GET_ITEM_CONSISTENT, size_bytes=8 * KB)
        .add(Service.DYNAMODB, Op.GET_ITEM, size_bytes=8 * KB)
        .add(Service.DYNAMODB, Op.TRANSACT_GET_ITEM, size_bytes=8 * KB)
    )
    cost = cost_of_calls(calls)
    # 9 WRU x 0.000000625 = 0.000005625 ; 7 RRU x 0.000000125 = 0.000000875
    assert cost.units(Service.DYNAMODB, "write request units") == D(9)
    assert cost.units(Service.DYNAMODB, "read request units") == D(7)
    assert cost.service(Service.DYNAMODB) == D("0.000005625") + D("0.000000875")


def test_given_on_demand_worked_example_when_priced_then_uses_the_post_nov_2024_prices() -> None:
    # Worked example (airbyte.com DynamoDB pricing guide, us-east-1 after the Nov 2024 cut):
    # 650,000 writes of 1 KB and 550,000 strongly consistent reads of 2 KB in a month.
    #   650,000 WRU x $0.625/M = 0.40625 ; 550,000 RRU x $0.125/M = 0.06875 ; total 0.475
    calls = ServiceCalls().add(Service.DYNAMODB, Op.PUT_ITEM, 650_000, size_bytes=KB)
    calls.add(Service.DYNAMODB, Op.GET_ITEM_CONSISTENT, 550_000, size_bytes=2 * KB)
    assert cost_of_calls(calls).service(Service.DYNAMODB) == D("0.475")


def test_given_item_sizes_on_unit_boundaries_when_priced_then_each_started_unit_counts() -> None:
    calls = ServiceCalls().add(Service.DYNAMODB, Op.PUT_ITEM, size_bytes=KB + 1)
    calls.add(Service.DYNAMODB, Op.QUERY_CONSISTENT, size_bytes=4 * KB).add(
        Service.DYNAMODB, Op.QUERY, size_bytes=4 * KB + 1
    )
    cost = cost_of_calls(calls)
    # 1,025 B -> 2 WRU ; 4,096 B strong -> 1 RRU ; 4,097 B eventual -> 2 x 0.5 = 1 RRU
    assert cost.units(Service.DYNAMODB, "write request units") == D(2)
    assert cost.units(Service.DYNAMODB, "read request units") == D(2)


def test_given_a_256kb_sqs_message_when_priced_then_each_64kb_chunk_is_a_request() -> None:
    # SQS pricing page: each 64 KB chunk of a payload is billed as 1 request; 256 KB = 4 requests.
    # send 4 + receive 4 + delete 1 = 9 requests x 0.0000004 = 0.0000036
    calls = ServiceCalls().add(Service.SQS, Op.SEND_MESSAGE, size_bytes=256 * KB)
    calls.add(Service.SQS, Op.RECEIVE_MESSAGE, size_bytes=256 * KB).add(Service.SQS, Op.DELETE_MESSAGE)
    cost = cost_of_calls(calls)
    assert cost.units(Service.SQS, "requests") == D(9)
    assert cost.service(Service.SQS) == D("0.0000036")
    edges = ServiceCalls().add(Service.SQS, Op.SEND_MESSAGE, size_bytes=64 * KB)
    edges.add(Service.SQS, Op.SEND_MESSAGE, size_bytes=64 * KB + 1)
    assert cost_of_calls(edges).units(Service.SQS, "requests") == D(3)


def test_given_a_month_of_batched_sends_and_single_receives_when_priced_then_every_call_counts() -> None:
    # Worked example: 300,000 SendMessageBatch + 3M ReceiveMessage + 3M DeleteMessage (small payloads)
    #   6,300,000 requests x $0.40/M = 2.52 ; with the 1M free: 5,300,000 x 0.0000004 = 2.12
    calls = ServiceCalls().add(Service.SQS, Op.SEND_MESSAGE_BATCH, 300_000, size_bytes=2 * KB)
    calls.add(Service.SQS, Op.RECEIVE_MESSAGE, 3_000_000, size_bytes=256).add(Service.SQS, Op.DELETE_MESSAGE, 3_000_000)
    assert cost_of_calls(calls).service(Service.SQS) == D("2.52")
    assert cost_of_calls(calls, free_tier=True).service(Service.SQS) == D("2.12")


def test_given_sns_fan_out_to_sqs_and_lambda_when_priced_then_only_publishes_cost() -> None:
    # 1,000,001 publishes of 1 KB, free tier: 1 x 0.0000005 ; deliveries to SQS and Lambda are free.
    calls = ServiceCalls().add(Service.SNS, Op.PUBLISH, 1_000_001, size_bytes=KB)
    calls.add(Service.SNS, Op.DELIVER_TO_SQS, 1_000_001).add(Service.SNS, Op.DELIVER_TO_LAMBDA, 1_000_001)
    assert cost_of_calls(calls, free_tier=True).service(Service.SNS) == D("0.0000005")
    big = ServiceCalls().add(Service.SNS, Op.PUBLISH, size_bytes=65 * KB)  # 2 chunks x 0.0000005
    assert cost_of_calls(big).service(Service.SNS) == D("0.000001")


def test_given_eventbridge_entries_when_priced_then_each_64kb_chunk_of_an_entry_is_an_event() -> None:
    # 2 entries of 1 KB + 1 entry of 256 KB = 2 + 4 = 6 events x 0.000001 = 0.000006
    calls = ServiceCalls().add(Service.EVENTBRIDGE, Op.PUT_EVENTS_ENTRY, 2, size_bytes=KB)
    calls.add(Service.EVENTBRIDGE, Op.PUT_EVENTS_ENTRY, size_bytes=256 * KB)
    assert cost_of_calls(calls).service(Service.EVENTBRIDGE) == D("0.000006")


def test_given_step_functions_workshop_standard_example_when_priced_then_0_075() -> None:
    # Source: AWS Step Functions workshop, "Review the cost impact": 3 transitions x 1,000 executions
    #   3,000 x $0.000025 = $0.075 (free tier not applied); with the 4,000 free transitions: 0.
    calls = ServiceCalls().add(Service.STEP_FUNCTIONS, Op.STATE_TRANSITION, 3000)
    assert cost_of_calls(calls).service(Service.STEP_FUNCTIONS) == D("0.075")
    assert cost_of_calls(calls, free_tier=True).service(Service.STEP_FUNCTIONS) == D(0)


def test_given_express_pricing_page_example_100m_workflows_of_10s_when_priced_then_482_97() -> None:
    # Source: https://aws.amazon.com/step-functions/pricing/ Express example: 100M workflows, 10 s, 64 MB.
    #   requests: 100M x $1.00/M = $100
    #   1,000,000,000 s x 64/1024 GB = 62,500,000 GB-s / 3600 = 17,361.11 GB-hours
    #   1,000 x 0.06 = 60 ; 4,000 x 0.03 = 120 ; 12,361.11 x 0.01642 = 202.97 ; duration $382.97
    calls = ServiceCalls().add(
        Service.STEP_FUNCTIONS, Op.EXPRESS_EXECUTION, 100_000_000, duration_ms=10_000, memory_mb=64
    )
    cost = cost_of_calls(calls)
    assert cost.units(Service.STEP_FUNCTIONS, "express requests") == D(100_000_000)
    assert cost.units(Service.STEP_FUNCTIONS, "express GB-hours").quantize(D("0.01")) == D("17361.11")
    duration = cost.service(Service.STEP_FUNCTIONS) - D(100)
    assert duration.quantize(D("0.000001")) == D("382.969444")  # 60 + 120 + 12,361.1111... x 0.01642
    assert to_cents(cost.total) == D("482.97")


def test_given_express_execution_of_101ms_and_65mb_when_priced_then_billed_as_200ms_of_128mb() -> None:
    #   0.2 s x 128/1024 GB = 0.025 GB-s = 0.025/3600 GB-h x 0.06 = 0.0000004166... ; + request 0.000001
    calls = ServiceCalls().add(Service.STEP_FUNCTIONS, Op.EXPRESS_EXECUTION, duration_ms=101, memory_mb=65)
    cost = cost_of_calls(calls)
    assert cost.units(Service.STEP_FUNCTIONS, "express GB-hours") == D("0.025") / 3600
    assert cost.service(Service.STEP_FUNCTIONS) == D("0.000001") + D("0.025") * D("0.06") / 3600


def test_given_cloudwatch_usage_with_free_tier_when_priced_then_allowances_and_tiers_apply() -> None:
    # 1,000 PutMetricData = 0.01 ; 1 GiB of logs = 0.50 ; 12 alarms - 10 free = 0.20 ;
    # 5 dashboards - 3 free = 6.00 ; 10,010 metrics - 10 free: 9,990 x 0.30 + 10 x 0.10 = 2,998
    calls = (
        ServiceCalls()
        .add(Service.CLOUDWATCH, Op.PUT_METRIC_DATA, 1000)
        .add(Service.CLOUDWATCH, Op.INGEST_LOGS, 1024, size_bytes=1024 * 1024)
        .add(Service.CLOUDWATCH, Op.ALARM_MONTH, 12)
        .add(Service.CLOUDWATCH, Op.DASHBOARD_MONTH, 5)
        .add(Service.CLOUDWATCH, Op.CUSTOM_METRIC_MONTH, 10_010)
    )
    without_free = cost_of_calls(calls)
    assert without_free.units(Service.CLOUDWATCH, "log GB ingested") == D(1)
    assert without_free.service(Service.CLOUDWATCH) == D("0.01") + D("0.50") + D("1.20") + D("15") + D("3001")
    with_free = cost_of_calls(calls, free_tier=True)  # 1M API requests and 5 GB of logs are free too
    assert with_free.service(Service.CLOUDWATCH) == D("0.20") + D("6.00") + D("2998")


def test_given_xray_pricing_page_example_when_priced_then_0_244() -> None:
    # Source: https://aws.amazon.com/xray/pricing/ example 1: 2,000 requests/h x 24 x 31 x 10 % = 148,800
    # traces; - 100,000 free = 48,800 x $0.000005 = $0.244 ; 775,000 retrieved/scanned < 1M free = $0.
    calls = ServiceCalls().add(Service.XRAY, Op.TRACE_RECORDED, 2000 * 24 * 31 // 10)
    calls.add(Service.XRAY, Op.TRACE_RETRIEVED, 775_000)
    assert cost_of_calls(calls, free_tier=True).service(Service.XRAY) == D("0.244")


def test_given_s3_requests_when_priced_then_put_and_get_prices_apply_and_deletes_are_free() -> None:
    # 1,000 PUT = $0.005 ; 1,000 GET = $0.0004 ; DELETE free
    calls = ServiceCalls().add(Service.S3, Op.PUT_OBJECT, 1000).add(Service.S3, Op.GET_OBJECT, 1000)
    calls.add(Service.S3, Op.DELETE_OBJECT, 1000)
    assert cost_of_calls(calls).service(Service.S3) == D("0.0054")


def test_secrets_manager_calls_are_priced_per_call() -> None:
    # $0.05 per 10,000 API calls: a cold authorizer's GetSecretValue is not free
    calls = ServiceCalls().add(Service.SECRETS_MANAGER, Op.GET_SECRET_VALUE, 20_000)
    assert cost_of_calls(calls).service(Service.SECRETS_MANAGER) == D("0.10")


def test_given_an_unknown_operation_when_priced_then_refused() -> None:
    with pytest.raises(CostModelError):
        cost_of_calls(ServiceCalls().add(Service.SQS, "SendMessages"))


def test_given_both_architectures_with_free_tier_when_priced_then_free_gb_s_are_shared_and_cover_arm_first() -> None:
    # 300,000 GB-s on each architecture: x86 300,000 x 1 s at 1024 MB, arm64 300,000 x 2 s at 512 MB.
    # The 400,000 free GB-s cover arm64's 300,000 and 100,000 of x86's, whatever order the calls
    # come in: 200,000 x 0.0000166667 = 3.33334 (not 200,000 x 0.0000133334). 600,000 requests < 1M free.
    calls = ServiceCalls().add(Service.LAMBDA, Op.INVOKE, 300_000, duration_ms=1000, memory_mb=1024)
    calls.add(Service.LAMBDA, Op.INVOKE, 300_000, duration_ms=2000, memory_mb=512, architecture=Architecture.ARM64)
    cost = cost_of_calls(calls, free_tier=True)
    assert cost.units(Service.LAMBDA, "GB-seconds") == D(600_000)
    assert cost.service(Service.LAMBDA) == D("3.33334")


def _one_order() -> ServiceCalls:
    return (
        ServiceCalls()
        .add(Service.LAMBDA, Op.INVOKE, duration_ms="119.3", memory_mb=512, architecture=Architecture.ARM64)
        .add(Service.DYNAMODB, Op.TRANSACT_WRITE_ITEM, 2, size_bytes=KB)
        .add(Service.SQS, Op.SEND_MESSAGE, size_bytes=2 * KB)
        .add(Service.SQS, Op.RECEIVE_MESSAGE, size_bytes=2 * KB)
        .add(Service.SQS, Op.DELETE_MESSAGE)
        .add(Service.SNS, Op.PUBLISH, size_bytes=KB)
        .add(Service.SNS, Op.DELIVER_TO_SQS)
        .add(Service.EVENTBRIDGE, Op.PUT_EVENTS_ENTRY, size_bytes=KB)
        .add(Service.STEP_FUNCTIONS, Op.STATE_TRANSITION, 6)
        .add(Service.XRAY, Op.TRACE_RECORDED)
        .add(Service.CLOUDWATCH, Op.PUT_METRIC_DATA)
        .add(Service.CLOUDWATCH, Op.INGEST_LOGS, size_bytes=2 * KB)
    )


def test_given_one_orders_calls_when_priced_then_each_service_is_exact() -> None:
    #   Lambda: 0.0000002 + 0.5 GB x 0.120 s (119.3 ms bills 120) x 0.0000133334 = 0.000001000004
    #   DynamoDB: 2 items x 2 WRU x 0.000000625 = 0.0000025 ; SQS: 3 x 0.0000004 = 0.0000012
    #   SNS: 0.0000005 (SQS delivery free) ; EventBridge: 0.000001 ; Step Functions: 6 x 0.000025 = 0.00015
    #   X-Ray: 0.000005 ; CloudWatch: 0.00001 + 2,048 / 2^30 GB x 0.50 = 0.00001095367431640625
    cost = cost_per_order(_one_order())
    assert cost.by_service() == {
        Service.LAMBDA: D("0.000001000004"),
        Service.STEP_FUNCTIONS: D("0.00015"),
        Service.DYNAMODB: D("0.0000025"),
        Service.SQS: D("0.0000012"),
        Service.SNS: D("0.0000005"),
        Service.EVENTBRIDGE: D("0.000001"),
        Service.CLOUDWATCH: D("0.00001095367431640625"),
        Service.XRAY: D("0.000005"),
    }
    # 0.00015 + 0.000005 + 0.0000025 + 0.0000012 + 0.0000005 + 0.000001 = 0.0001602
    # + 0.000001000004 + 0.00001095367431640625 = 0.00017215367831640625
    assert cost.total == D("0.00017215367831640625")


def test_given_a_million_orders_within_first_tiers_when_priced_then_a_million_times_one_order() -> None:
    per_order = cost_per_order(_one_order())
    million = cost_per_million_orders(_one_order())
    assert million.total == per_order.total * 1_000_000
    assert million.units(Service.STEP_FUNCTIONS, "state transitions") == D(6_000_000)
