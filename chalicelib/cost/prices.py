"""Prices as data: one frozen price book per region, every figure a ``Decimal`` with its source page.

Prices change; code should not. To update, edit the figures below, bump ``taken_on`` and re-run
``tests/unit/test_cost_model.py`` (see docs/cost.md, "Updating prices").

>>> US_EAST_1.lambda_.request
Decimal('2E-7')
>>> US_EAST_1.lambda_.x86_64.duration[0]
Tier(up_to=Decimal('6000000000'), unit_price=Decimal('0.0000166667'))
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

PER_MILLION = Decimal(1_000_000)
PER_THOUSAND = Decimal(1_000)


class Architecture(StrEnum):
    X86_64 = "x86_64"
    ARM64 = "arm64"


@dataclass(frozen=True)
class Tier:
    """A monthly volume tier: ``unit_price`` applies to cumulative usage below ``up_to`` (``None``: no end)."""

    up_to: Decimal | None
    unit_price: Decimal


Tiers = tuple[Tier, ...]


def flat(unit_price: Decimal) -> Tiers:
    return (Tier(None, unit_price),)


@dataclass(frozen=True)
class LambdaArchitecturePrices:
    duration: Tiers  # per GB-second, tiers over the month's GB-seconds of this architecture
    provisioned_concurrency: Decimal  # per GB-second of concurrency configured
    provisioned_duration: Decimal  # per GB-second run on provisioned concurrency


@dataclass(frozen=True)
class LambdaPrices:
    request: Decimal
    x86_64: LambdaArchitecturePrices
    arm64: LambdaArchitecturePrices
    ephemeral_storage: Decimal  # per GB-second configured above the free 512 MB
    free_ephemeral_mb: int
    duration_increment_ms: int
    free_requests: int  # monthly free tier, shared by both architectures
    free_gb_seconds: Decimal
    init_billed_since: date  # on-demand ZIP functions on managed runtimes: INIT billed from this date
    provisioned_increment_seconds: int
    source: str

    def architecture(self, architecture: Architecture) -> LambdaArchitecturePrices:
        return self.arm64 if architecture is Architecture.ARM64 else self.x86_64


@dataclass(frozen=True)
class StepFunctionsPrices:
    state_transition: Decimal  # standard workflows
    free_state_transitions: int
    express_request: Decimal
    express_duration: Tiers  # per GB-hour, tiers over the month's GB-hours
    express_duration_increment_ms: int
    express_memory_increment_mb: int
    source: str


@dataclass(frozen=True)
class DynamoDBPrices:
    write_request_unit: Decimal  # on-demand, Standard table class
    read_request_unit: Decimal
    write_unit_bytes: int
    read_unit_bytes: int
    source: str


@dataclass(frozen=True)
class SQSPrices:
    standard_requests: Tiers  # per request, tiers over the month's requests (free ones included)
    free_requests: int
    chunk_bytes: int
    source: str


@dataclass(frozen=True)
class SNSPrices:
    publish: Decimal  # standard topics, per 64 KB chunk published
    free_publishes: int
    http_delivery: Decimal
    chunk_bytes: int
    source: str  # deliveries to SQS queues and Lambda functions are free


@dataclass(frozen=True)
class EventBridgePrices:
    custom_event: Decimal  # per 64 KB chunk of each entry put on a bus
    chunk_bytes: int
    source: str


@dataclass(frozen=True)
class CloudWatchPrices:
    api_request: Decimal  # PutMetricData and the other per-request APIs
    free_api_requests: int
    custom_metric_month: Tiers
    free_custom_metrics: int
    log_ingestion_per_gb: Decimal  # Standard log class
    free_log_gb: Decimal
    standard_alarm_month: Decimal
    free_alarms: int
    dashboard_month: Decimal
    free_dashboards: int
    source: str


@dataclass(frozen=True)
class XRayPrices:
    trace_recorded: Decimal
    free_traces_recorded: int
    trace_retrieved: Decimal  # retrieved or scanned
    free_traces_retrieved: int
    source: str


@dataclass(frozen=True)
class S3Prices:
    put_request: Decimal  # PUT, COPY, POST, LIST (S3 Standard)
    get_request: Decimal  # GET, SELECT and all other requests
    source: str


@dataclass(frozen=True)
class SecretsManagerPrices:
    api_call: Decimal  # every API call, GetSecretValue included
    source: str


@dataclass(frozen=True)
class ApiGatewayPrices:
    rest_requests: Tiers  # REST APIs, per request, tiers over the month's requests
    free_rest_requests: int  # the first 12 months only
    source: str


@dataclass(frozen=True)
class PriceBook:
    region: str
    currency: str
    taken_on: date
    lambda_: LambdaPrices
    step_functions: StepFunctionsPrices
    dynamodb: DynamoDBPrices
    sqs: SQSPrices
    sns: SNSPrices
    eventbridge: EventBridgePrices
    cloudwatch: CloudWatchPrices
    xray: XRayPrices
    s3: S3Prices
    secrets_manager: SecretsManagerPrices
    api_gateway: ApiGatewayPrices


def _d(text: str) -> Decimal:
    return Decimal(text)


US_EAST_1 = PriceBook(
    region="us-east-1",
    currency="USD",
    taken_on=date(2026, 11, 27),  # compiled and checked on this date; see docs/cost.md for what was checked
    lambda_=LambdaPrices(
        request=_d("0.20") / PER_MILLION,
        x86_64=LambdaArchitecturePrices(
            duration=(
                Tier(_d("6_000_000_000"), _d("0.0000166667")),
                Tier(_d("15_000_000_000"), _d("0.0000150000")),
                Tier(None, _d("0.0000133334")),
            ),
            provisioned_concurrency=_d("0.0000041667"),
            provisioned_duration=_d("0.0000097222"),
        ),
        arm64=LambdaArchitecturePrices(
            duration=(
                Tier(_d("7_500_000_000"), _d("0.0000133334")),
                Tier(_d("18_750_000_000"), _d("0.0000120001")),
                Tier(None, _d("0.0000106667")),
            ),
            provisioned_concurrency=_d("0.0000033334"),
            provisioned_duration=_d("0.0000077778"),
        ),
        ephemeral_storage=_d("0.0000000309"),
        free_ephemeral_mb=512,
        duration_increment_ms=1,
        free_requests=1_000_000,
        free_gb_seconds=_d("400_000"),
        init_billed_since=date(2025, 8, 1),  # INIT of on-demand ZIP functions on managed runtimes
        provisioned_increment_seconds=300,
        source="https://aws.amazon.com/lambda/pricing/",
    ),
    step_functions=StepFunctionsPrices(
        state_transition=_d("0.025") / PER_THOUSAND,
        free_state_transitions=4_000,
        express_request=_d("1.00") / PER_MILLION,
        express_duration=(
            Tier(_d("1000"), _d("0.06000")),
            Tier(_d("5000"), _d("0.03000")),
            Tier(None, _d("0.01642")),
        ),
        express_duration_increment_ms=100,
        express_memory_increment_mb=64,
        source="https://aws.amazon.com/step-functions/pricing/",
    ),
    dynamodb=DynamoDBPrices(
        # After the 1 Nov 2024 on-demand throughput price cut (50 %): was $1.25 / $0.25 per million.
        write_request_unit=_d("0.625") / PER_MILLION,
        read_request_unit=_d("0.125") / PER_MILLION,
        write_unit_bytes=1024,
        read_unit_bytes=4096,
        source="https://aws.amazon.com/dynamodb/pricing/on-demand/",
    ),
    sqs=SQSPrices(
        standard_requests=(
            Tier(_d("100_000_000_000"), _d("0.40") / PER_MILLION),
            Tier(_d("200_000_000_000"), _d("0.30") / PER_MILLION),
            Tier(None, _d("0.24") / PER_MILLION),
        ),
        free_requests=1_000_000,
        chunk_bytes=64 * 1024,
        source="https://aws.amazon.com/sqs/pricing/",
    ),
    sns=SNSPrices(
        publish=_d("0.50") / PER_MILLION,
        free_publishes=1_000_000,
        http_delivery=_d("0.60") / PER_MILLION,
        chunk_bytes=64 * 1024,
        source="https://aws.amazon.com/sns/pricing/",
    ),
    eventbridge=EventBridgePrices(
        custom_event=_d("1.00") / PER_MILLION,
        chunk_bytes=64 * 1024,
        source="https://aws.amazon.com/eventbridge/pricing/",
    ),
    cloudwatch=CloudWatchPrices(
        api_request=_d("0.01") / PER_THOUSAND,
        free_api_requests=1_000_000,
        custom_metric_month=(
            Tier(_d("10_000"), _d("0.30")),
            Tier(_d("250_000"), _d("0.10")),
            Tier(_d("1_000_000"), _d("0.05")),
            Tier(None, _d("0.02")),
        ),
        free_custom_metrics=10,
        log_ingestion_per_gb=_d("0.50"),
        free_log_gb=_d("5"),
        standard_alarm_month=_d("0.10"),
        free_alarms=10,
        dashboard_month=_d("3.00"),
        free_dashboards=3,
        source="https://aws.amazon.com/cloudwatch/pricing/",
    ),
    xray=XRayPrices(
        trace_recorded=_d("5.00") / PER_MILLION,
        free_traces_recorded=100_000,
        trace_retrieved=_d("0.50") / PER_MILLION,
        free_traces_retrieved=1_000_000,
        source="https://aws.amazon.com/xray/pricing/",
    ),
    s3=S3Prices(
        put_request=_d("0.005") / PER_THOUSAND,
        get_request=_d("0.0004") / PER_THOUSAND,
        source="https://aws.amazon.com/s3/pricing/",
    ),
    secrets_manager=SecretsManagerPrices(
        api_call=_d("0.05") / 10_000,
        source="https://aws.amazon.com/secrets-manager/pricing/",
    ),
    api_gateway=ApiGatewayPrices(
        rest_requests=(
            Tier(_d("333_000_000"), _d("3.50") / PER_MILLION),
            Tier(_d("1_000_000_000"), _d("2.80") / PER_MILLION),
            Tier(_d("20_000_000_000"), _d("2.38") / PER_MILLION),
            Tier(None, _d("1.51") / PER_MILLION),
        ),
        free_rest_requests=1_000_000,
        source="https://aws.amazon.com/api-gateway/pricing/",
    ),
)
