"""Counting billable calls: which service, which operation, how many, and the sizes pricing depends on.

>>> order = ServiceCalls().add(Service.SQS, Op.SEND_MESSAGE, size_bytes=2_048).add(Service.SQS, Op.DELETE_MESSAGE)
>>> order.count(Service.SQS)
Decimal('2')
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from chalicelib.cost.billing import CostModelError, Number, non_negative
from chalicelib.cost.prices import Architecture


class Service(StrEnum):
    LAMBDA = "lambda"
    STEP_FUNCTIONS = "stepfunctions"
    DYNAMODB = "dynamodb"
    SQS = "sqs"
    SNS = "sns"
    EVENTBRIDGE = "eventbridge"
    CLOUDWATCH = "cloudwatch"
    XRAY = "xray"
    S3 = "s3"
    SECRETS_MANAGER = "secretsmanager"
    API_GATEWAY = "apigateway"


class Op:
    """Operation names. A count is of API calls, except where the comment says items or months."""

    INVOKE = "Invoke"  # duration_ms and memory_mb of each invocation
    STATE_TRANSITION = "StateTransition"  # standard workflows
    EXPRESS_EXECUTION = "ExpressExecution"  # duration_ms and memory_mb used by each execution
    PUT_ITEM = "PutItem"  # DynamoDB writes: size_bytes of the item (the larger of before/after)
    UPDATE_ITEM = "UpdateItem"
    DELETE_ITEM = "DeleteItem"
    BATCH_WRITE_ITEM = "BatchWriteItem"  # count = items
    TRANSACT_WRITE_ITEM = "TransactWriteItems"  # count = items written inside transactions
    GET_ITEM = "GetItem"  # eventually consistent, DynamoDB's default
    GET_ITEM_CONSISTENT = "GetItem(ConsistentRead)"
    BATCH_GET_ITEM = "BatchGetItem"  # count = items, eventually consistent
    TRANSACT_GET_ITEM = "TransactGetItems"  # count = items read inside transactions
    QUERY = "Query"  # size_bytes = all items read by one call; eventually consistent
    QUERY_CONSISTENT = "Query(ConsistentRead)"
    SEND_MESSAGE = "SendMessage"  # SQS: size_bytes of the payload of each call (a batch: its total)
    SEND_MESSAGE_BATCH = "SendMessageBatch"
    RECEIVE_MESSAGE = "ReceiveMessage"
    DELETE_MESSAGE = "DeleteMessage"
    DELETE_MESSAGE_BATCH = "DeleteMessageBatch"
    CHANGE_MESSAGE_VISIBILITY = "ChangeMessageVisibility"
    PUBLISH = "Publish"  # SNS: size_bytes of each published payload (a batch: its total)
    PUBLISH_BATCH = "PublishBatch"
    DELIVER_TO_SQS = "Deliver(sqs)"  # free
    DELIVER_TO_LAMBDA = "Deliver(lambda)"  # free
    DELIVER_TO_HTTP = "Deliver(http)"
    PUT_EVENTS_ENTRY = "PutEvents"  # EventBridge: count = entries, size_bytes of each entry
    PUT_METRIC_DATA = "PutMetricData"
    INGEST_LOGS = "IngestLogs"  # size_bytes ingested per count
    CUSTOM_METRIC_MONTH = "CustomMetric"  # count = metric-months
    ALARM_MONTH = "StandardAlarm"  # count = alarm-months
    DASHBOARD_MONTH = "Dashboard"  # count = dashboard-months
    TRACE_RECORDED = "TraceRecorded"
    TRACE_RETRIEVED = "TraceRetrievedOrScanned"
    PUT_OBJECT = "PutObject"
    COPY_OBJECT = "CopyObject"
    POST_OBJECT = "PostObject"
    LIST_OBJECTS = "ListObjectsV2"
    GET_OBJECT = "GetObject"
    HEAD_OBJECT = "HeadObject"
    DELETE_OBJECT = "DeleteObject"  # free
    REST_API_REQUEST = "RestApiRequest"  # API Gateway REST API: count = requests received (authorizer included)
    GET_SECRET_VALUE = "GetSecretValue"  # Secrets Manager API calls (the secret-month is not per call)


@dataclass(frozen=True, order=True)
class CallKey:
    """What makes calls priced alike. Sizes and durations are per call, never totals."""

    service: Service
    operation: str
    size_bytes: int = 0
    duration_ms: Decimal = Decimal(0)
    memory_mb: int = 0
    architecture: Architecture = Architecture.X86_64


@dataclass
class ServiceCalls:
    """A counter of billable calls, e.g. the calls one order makes, or a month's calls."""

    counts: dict[CallKey, Decimal] = field(default_factory=dict)

    @classmethod
    def of(cls, counts: Mapping[CallKey, Number]) -> ServiceCalls:
        calls = cls()
        for key, count in counts.items():
            calls.add_key(key, count)
        return calls

    def add(
        self,
        service: Service,
        operation: str,
        count: Number = 1,
        *,
        size_bytes: int = 0,
        duration_ms: Number = 0,
        memory_mb: int = 0,
        architecture: Architecture = Architecture.X86_64,
    ) -> ServiceCalls:
        if size_bytes < 0 or memory_mb < 0:
            raise CostModelError("sizes and memory must not be negative")
        key = CallKey(service, operation, size_bytes, non_negative(duration_ms, "duration"), memory_mb, architecture)
        return self.add_key(key, count)

    def add_key(self, key: CallKey, count: Number) -> ServiceCalls:
        self.counts[key] = self.counts.get(key, Decimal(0)) + non_negative(count, "count")
        return self

    def count(self, service: Service, operation: str | None = None) -> Decimal:
        return sum(
            (n for key, n in self.counts.items() if key.service is service and operation in (None, key.operation)),
            Decimal(0),
        )

    def scaled(self, factor: Number) -> ServiceCalls:
        """Every count multiplied by ``factor`` (sizes and durations are per call and stay)."""
        times = non_negative(factor, "factor")
        return ServiceCalls({key: n * times for key, n in self.counts.items()})

    def __add__(self, other: ServiceCalls) -> ServiceCalls:
        total = ServiceCalls(dict(self.counts))
        for key, n in other.counts.items():
            total.add_key(key, n)
        return total

    def __iter__(self) -> Iterator[tuple[CallKey, Decimal]]:
        return iter(sorted(self.counts.items()))


@dataclass(frozen=True)
class LineItem:
    service: Service
    item: str
    units: Decimal
    cost: Decimal


@dataclass(frozen=True)
class CostBreakdown:
    lines: tuple[LineItem, ...]

    def by_service(self) -> dict[Service, Decimal]:
        totals: dict[Service, Decimal] = {}
        for line in self.lines:
            totals[line.service] = totals.get(line.service, Decimal(0)) + line.cost
        return totals

    def service(self, service: Service) -> Decimal:
        return self.by_service().get(service, Decimal(0))

    def units(self, service: Service, item: str) -> Decimal:
        return sum((line.units for line in self.lines if line.service is service and line.item == item), Decimal(0))

    @property
    def total(self) -> Decimal:
        return sum((line.cost for line in self.lines), Decimal(0))
