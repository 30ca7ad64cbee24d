"""From counted calls to billable units to money, service by service.

>>> calls = ServiceCalls().add(Service.DYNAMODB, Op.PUT_ITEM, size_bytes=3 * 1024)
>>> cost_of_calls(calls).units(Service.DYNAMODB, "write request units")
Decimal('3')
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from chalicelib.cost.billing import CostModelError, billed_ms, chunks, round_up_to, tiered_cost
from chalicelib.cost.calls import CallKey, CostBreakdown, LineItem, Op, Service, ServiceCalls
from chalicelib.cost.model import gb_seconds, price_lambda_usage
from chalicelib.cost.prices import US_EAST_1, Architecture, PriceBook, flat

ORDERS_PER_MILLION = 1_000_000
BYTES_PER_GB = Decimal(1024**3)
SECONDS_PER_HOUR = 3600

Calls = list[tuple[CallKey, Decimal]]
Pricer = Callable[[Calls, PriceBook, bool], list[LineItem]]


def _free(free_tier: bool, allowance: int | Decimal) -> Decimal:
    return Decimal(allowance) if free_tier else Decimal(0)


def _line(service: Service, item: str, units: Decimal, unit_price: Decimal, free: Decimal) -> LineItem:
    return LineItem(service, item, units, tiered_cost(flat(unit_price), 0, units, free))


def _check(calls: Calls, known: set[str]) -> None:
    for key, _ in calls:
        if key.operation not in known:
            raise CostModelError(f"no price for {key.service}:{key.operation}")


def _lambda(calls: Calls, book: PriceBook, free_tier: bool) -> list[LineItem]:
    _check(calls, {Op.INVOKE})
    gbs_by_arch = {arch: Decimal(0) for arch in Architecture}
    requests_before = Decimal(0)
    request_cost = duration_cost = total_gbs = Decimal(0)
    # The shared free GB-seconds go to arm64 first: the cheaper rate is covered, the estimate errs high.
    for key, n in sorted(calls, key=lambda call: call[0].architecture is not Architecture.ARM64):
        cost = price_lambda_usage(
            n,
            n * billed_ms(key.duration_ms, book.lambda_.duration_increment_ms),
            Decimal(0),
            memory_mb=key.memory_mb,
            architecture=key.architecture,
            ephemeral_mb=book.lambda_.free_ephemeral_mb,
            free_tier=free_tier,
            monthly_gb_seconds_before=gbs_by_arch[key.architecture],
            monthly_requests_before=requests_before,
            free_gb_seconds_used_before=total_gbs,
            prices=book.lambda_,
        )
        gbs_by_arch[key.architecture] += cost.gb_seconds
        total_gbs += cost.gb_seconds
        requests_before += n
        request_cost += cost.requests
        duration_cost += cost.duration
    return [
        LineItem(Service.LAMBDA, "requests", requests_before, request_cost),
        LineItem(Service.LAMBDA, "GB-seconds", total_gbs, duration_cost),
    ]


def _step_functions(calls: Calls, book: PriceBook, free_tier: bool) -> list[LineItem]:
    _check(calls, {Op.STATE_TRANSITION, Op.EXPRESS_EXECUTION})
    sfn = book.step_functions
    transitions = sum((n for key, n in calls if key.operation == Op.STATE_TRANSITION), Decimal(0))
    free = _free(free_tier, sfn.free_state_transitions)
    lines = [_line(Service.STEP_FUNCTIONS, "state transitions", transitions, sfn.state_transition, free)]
    requests = gb_hours = duration_cost = Decimal(0)
    for key, n in calls:
        if key.operation != Op.EXPRESS_EXECUTION:
            continue
        memory = max(round_up_to(key.memory_mb, sfn.express_memory_increment_mb), sfn.express_memory_increment_mb)
        hours = n * gb_seconds(memory, billed_ms(key.duration_ms, sfn.express_duration_increment_ms))
        hours /= SECONDS_PER_HOUR
        duration_cost += tiered_cost(sfn.express_duration, gb_hours, hours)
        gb_hours += hours
        requests += n
    if requests:
        lines.append(LineItem(Service.STEP_FUNCTIONS, "express requests", requests, requests * sfn.express_request))
        lines.append(LineItem(Service.STEP_FUNCTIONS, "express GB-hours", gb_hours, duration_cost))
    return lines


_WRITES = {Op.PUT_ITEM: 1, Op.UPDATE_ITEM: 1, Op.DELETE_ITEM: 1, Op.BATCH_WRITE_ITEM: 1, Op.TRANSACT_WRITE_ITEM: 2}
_READS = {
    Op.GET_ITEM: Decimal("0.5"),
    Op.BATCH_GET_ITEM: Decimal("0.5"),
    Op.QUERY: Decimal("0.5"),
    Op.GET_ITEM_CONSISTENT: Decimal(1),
    Op.QUERY_CONSISTENT: Decimal(1),
    Op.TRANSACT_GET_ITEM: Decimal(2),
}


def _dynamodb(calls: Calls, book: PriceBook, free_tier: bool) -> list[LineItem]:
    _check(calls, set(_WRITES) | set(_READS))
    ddb = book.dynamodb
    wru = sum(
        (
            n * _WRITES[k.operation] * chunks(k.size_bytes, ddb.write_unit_bytes)
            for k, n in calls
            if k.operation in _WRITES
        ),
        Decimal(0),
    )
    rru = sum(
        (
            n * _READS[k.operation] * chunks(k.size_bytes, ddb.read_unit_bytes)
            for k, n in calls
            if k.operation in _READS
        ),
        Decimal(0),
    )
    return [
        LineItem(Service.DYNAMODB, "write request units", wru, wru * ddb.write_request_unit),
        LineItem(Service.DYNAMODB, "read request units", rru, rru * ddb.read_request_unit),
    ]


_SQS_OPS = {
    Op.SEND_MESSAGE,
    Op.SEND_MESSAGE_BATCH,
    Op.RECEIVE_MESSAGE,
    Op.DELETE_MESSAGE,
    Op.DELETE_MESSAGE_BATCH,
    Op.CHANGE_MESSAGE_VISIBILITY,
}


def _sqs(calls: Calls, book: PriceBook, free_tier: bool) -> list[LineItem]:
    _check(calls, _SQS_OPS)
    requests = sum((n * chunks(k.size_bytes, book.sqs.chunk_bytes) for k, n in calls), Decimal(0))
    cost = tiered_cost(book.sqs.standard_requests, 0, requests, _free(free_tier, book.sqs.free_requests))
    return [LineItem(Service.SQS, "requests", requests, cost)]


def _sns(calls: Calls, book: PriceBook, free_tier: bool) -> list[LineItem]:
    _check(calls, {Op.PUBLISH, Op.PUBLISH_BATCH, Op.DELIVER_TO_SQS, Op.DELIVER_TO_LAMBDA, Op.DELIVER_TO_HTTP})
    sns = book.sns
    publishes = sum(
        (n * chunks(k.size_bytes, sns.chunk_bytes) for k, n in calls if k.operation in (Op.PUBLISH, Op.PUBLISH_BATCH)),
        Decimal(0),
    )
    http = sum((n for k, n in calls if k.operation == Op.DELIVER_TO_HTTP), Decimal(0))
    free = sum((n for k, n in calls if k.operation in (Op.DELIVER_TO_SQS, Op.DELIVER_TO_LAMBDA)), Decimal(0))
    return [
        _line(Service.SNS, "publishes", publishes, sns.publish, _free(free_tier, sns.free_publishes)),
        LineItem(Service.SNS, "deliveries to SQS and Lambda", free, Decimal(0)),
        LineItem(Service.SNS, "HTTP deliveries", http, http * sns.http_delivery),
    ]


def _eventbridge(calls: Calls, book: PriceBook, free_tier: bool) -> list[LineItem]:
    _check(calls, {Op.PUT_EVENTS_ENTRY})
    events = sum((n * chunks(k.size_bytes, book.eventbridge.chunk_bytes) for k, n in calls), Decimal(0))
    return [LineItem(Service.EVENTBRIDGE, "custom events", events, events * book.eventbridge.custom_event)]


def _cloudwatch(calls: Calls, book: PriceBook, free_tier: bool) -> list[LineItem]:
    cw = book.cloudwatch
    ops = (Op.PUT_METRIC_DATA, Op.CUSTOM_METRIC_MONTH, Op.ALARM_MONTH, Op.DASHBOARD_MONTH)
    _check(calls, {*ops, Op.INGEST_LOGS})
    api, metrics, alarms, dashboards = (sum((n for k, n in calls if k.operation == op), Decimal(0)) for op in ops)
    log_gb = sum((n * k.size_bytes for k, n in calls if k.operation == Op.INGEST_LOGS), Decimal(0)) / BYTES_PER_GB
    metric_cost = tiered_cost(cw.custom_metric_month, 0, metrics, _free(free_tier, cw.free_custom_metrics))
    return [
        _line(Service.CLOUDWATCH, "API requests", api, cw.api_request, _free(free_tier, cw.free_api_requests)),
        LineItem(Service.CLOUDWATCH, "custom metric-months", metrics, metric_cost),
        _line(Service.CLOUDWATCH, "log GB ingested", log_gb, cw.log_ingestion_per_gb, _free(free_tier, cw.free_log_gb)),
        _line(Service.CLOUDWATCH, "alarm-months", alarms, cw.standard_alarm_month, _free(free_tier, cw.free_alarms)),
        _line(
            Service.CLOUDWATCH, "dashboard-months", dashboards, cw.dashboard_month, _free(free_tier, cw.free_dashboards)
        ),
    ]


def _xray(calls: Calls, book: PriceBook, free_tier: bool) -> list[LineItem]:
    _check(calls, {Op.TRACE_RECORDED, Op.TRACE_RETRIEVED})
    xr = book.xray
    recorded = sum((n for k, n in calls if k.operation == Op.TRACE_RECORDED), Decimal(0))
    retrieved = sum((n for k, n in calls if k.operation == Op.TRACE_RETRIEVED), Decimal(0))
    return [
        _line(Service.XRAY, "traces recorded", recorded, xr.trace_recorded, _free(free_tier, xr.free_traces_recorded)),
        _line(
            Service.XRAY,
            "traces retrieved or scanned",
            retrieved,
            xr.trace_retrieved,
            _free(free_tier, xr.free_traces_retrieved),
        ),
    ]


_S3_PUT = {Op.PUT_OBJECT, Op.COPY_OBJECT, Op.POST_OBJECT, Op.LIST_OBJECTS}
_S3_GET = {Op.GET_OBJECT, Op.HEAD_OBJECT}


def _s3(calls: Calls, book: PriceBook, free_tier: bool) -> list[LineItem]:
    # The S3 free tier lasts 12 months from sign-up only, so it is not applied.
    _check(calls, _S3_PUT | _S3_GET | {Op.DELETE_OBJECT})
    puts = sum((n for k, n in calls if k.operation in _S3_PUT), Decimal(0))
    gets = sum((n for k, n in calls if k.operation in _S3_GET), Decimal(0))
    return [
        LineItem(Service.S3, "PUT, COPY, POST, LIST requests", puts, puts * book.s3.put_request),
        LineItem(Service.S3, "GET and other requests", gets, gets * book.s3.get_request),
    ]


def _secrets_manager(calls: Calls, book: PriceBook, free_tier: bool) -> list[LineItem]:
    # The 30-day trial of a new secret is not a monthly free tier, so it is not applied.
    _check(calls, {Op.GET_SECRET_VALUE})
    requests = sum((n for _, n in calls), Decimal(0))
    return [LineItem(Service.SECRETS_MANAGER, "API calls", requests, requests * book.secrets_manager.api_call)]


def _api_gateway(calls: Calls, book: PriceBook, free_tier: bool) -> list[LineItem]:
    _check(calls, {Op.REST_API_REQUEST})
    requests = sum((n for _, n in calls), Decimal(0))
    free = _free(free_tier, book.api_gateway.free_rest_requests)
    cost = tiered_cost(book.api_gateway.rest_requests, 0, requests, free)
    return [LineItem(Service.API_GATEWAY, "REST API requests", requests, cost)]


_PRICERS: dict[Service, Pricer] = {
    Service.API_GATEWAY: _api_gateway,
    Service.LAMBDA: _lambda,
    Service.STEP_FUNCTIONS: _step_functions,
    Service.DYNAMODB: _dynamodb,
    Service.SQS: _sqs,
    Service.SNS: _sns,
    Service.EVENTBRIDGE: _eventbridge,
    Service.CLOUDWATCH: _cloudwatch,
    Service.XRAY: _xray,
    Service.S3: _s3,
    Service.SECRETS_MANAGER: _secrets_manager,
}


def cost_of_calls(calls: ServiceCalls, prices: PriceBook = US_EAST_1, *, free_tier: bool = False) -> CostBreakdown:
    """Price a month's calls (or any batch of calls taken as a month): tiers start at zero usage,
    and the monthly free tier applies when ``free_tier`` is set."""
    by_service: dict[Service, Calls] = {}
    for key, n in calls:
        by_service.setdefault(key.service, []).append((key, n))
    lines: list[LineItem] = []
    for service, pricer in _PRICERS.items():
        if service in by_service:
            lines.extend(pricer(by_service[service], prices, free_tier))
    return CostBreakdown(tuple(lines))


def cost_per_order(calls_per_order: ServiceCalls, prices: PriceBook = US_EAST_1) -> CostBreakdown:
    """Marginal cost of one order: first-tier prices, no free tier."""
    return cost_of_calls(calls_per_order, prices)


def cost_per_million_orders(calls_per_order: ServiceCalls, prices: PriceBook = US_EAST_1) -> CostBreakdown:
    """A million orders' calls priced together (tiers apply to the totals), without free tier."""
    return cost_of_calls(calls_per_order.scaled(ORDERS_PER_MILLION), prices)
