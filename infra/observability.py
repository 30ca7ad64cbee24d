"""The stage's dashboard and alarms: the seed's, fixed, plus the API's 5xx rate and p99 latency.

Merged into the stage template (``infra.template``) like ``infra.pipeline``, so the local stage
and a deployment create the same dashboard and alarms. Every alarm notifies ``AlertsTopic``.
The dead-letter queues' depth alarms are ``infra.pipeline``'s (one per DLQ); the dashboard shows them.

The seed's alarms had no dimensions (every function of the account) and its HighDuration summed
durations over five minutes, which fires with any traffic; here each function has its own alarms
and duration is judged on p99.
"""

from __future__ import annotations

import json
from typing import Any

from infra.pipeline import ASYNC_HANDLERS, PARTIAL_BATCH_HANDLERS, TASK_FUNCTIONS

Json = dict[str, Any]

NAMESPACE = "ServerlessApp"  # chalicelib.observability.metrics.NAMESPACE: the EMF metrics
API_HANDLER = "api_handler"
API_GATEWAY_STAGE = "api"  # .chalice/config.json's api_gateway_stage (a unit test keeps them equal)
# Every function Chalice deploys for app.py (tests/unit/test_observability_infra.py compares with app.py).
HANDLERS: tuple[str, ...] = (
    API_HANDLER,
    "jwt_auth",
    *TASK_FUNCTIONS.values(),
    *PARTIAL_BATCH_HANDLERS,
    *ASYNC_HANDLERS,
    "cost_optimizer",
    "sweep_stalled_orders",
)
DLQS = ("OrderProcessingDLQ", "NotificationEventsDLQ", "PaymentRechecksDLQ", "EventDeliveryDLQ", "AsyncInvokeDLQ")

ERRORS_PER_5_MINUTES = 5  # the seed's HighErrorRate threshold
DURATION_P99_MS = 10_000  # the seed's HighDuration threshold, now on p99 rather than a sum
THROTTLES_PER_5_MINUTES = 1  # the seed's HighThrottles threshold
API_5XX_RATE = 0.05  # 5XXError's Average is the share of requests answered 5xx
API_P99_LATENCY_MS = 2_000


def function_name(handler: str, stage: str, app: str) -> str:
    """Chalice's names: ``<app>-<stage>`` for the API handler, ``<app>-<stage>-<handler>`` otherwise."""
    return f"{app}-{stage}" if handler == API_HANDLER else f"{app}-{stage}-{handler}"


def _alarm(name: str, description: str, metric: Json, threshold: float, comparison: str, periods: int = 2) -> Json:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": name,
            "AlarmDescription": description,
            **metric,
            "Period": 300,
            "EvaluationPeriods": periods,
            "Threshold": threshold,
            "ComparisonOperator": comparison,
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": "AlertsTopic"}],
        },
    }


def _metric(namespace: str, name: str, dimensions: dict[str, str], statistic: str) -> Json:
    stat = {"ExtendedStatistic": statistic} if statistic.startswith("p") else {"Statistic": statistic}
    return {
        "Namespace": namespace,
        "MetricName": name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
        **stat,
    }


def _logical(handler: str) -> str:
    return "".join(part.capitalize() for part in handler.split("_"))


def alarm_resources(stage: str, app: str) -> Json:
    resources: Json = {}
    for handler in HANDLERS:
        fn = function_name(handler, stage, app)
        dims = {"FunctionName": fn}
        resources[f"{_logical(handler)}HighErrorRate"] = _alarm(
            f"{fn}-HighErrorRate",
            f"{fn}: more than {ERRORS_PER_5_MINUTES} errors in 5 minutes, twice in a row",
            _metric("AWS/Lambda", "Errors", dims, "Sum"),
            ERRORS_PER_5_MINUTES,
            "GreaterThanThreshold",
        )
        resources[f"{_logical(handler)}HighDuration"] = _alarm(
            f"{fn}-HighDuration",
            f"{fn}: p99 duration over {DURATION_P99_MS} ms for 10 minutes",
            _metric("AWS/Lambda", "Duration", dims, "p99"),
            DURATION_P99_MS,
            "GreaterThanThreshold",
        )
        resources[f"{_logical(handler)}HighThrottles"] = _alarm(
            f"{fn}-HighThrottles",
            f"{fn}: throttled in two 5-minute periods in a row (concurrency limit reached)",
            _metric("AWS/Lambda", "Throttles", dims, "Sum"),
            THROTTLES_PER_5_MINUTES,
            "GreaterThanOrEqualToThreshold",
        )
    api = {"ApiName": app, "Stage": API_GATEWAY_STAGE}
    resources["ApiHigh5xxRate"] = _alarm(
        f"{app}-{stage}-api-5xx",
        f"More than {API_5XX_RATE:.0%} of API requests answered 5xx for 10 minutes",
        _metric("AWS/ApiGateway", "5XXError", api, "Average"),
        API_5XX_RATE,
        "GreaterThanThreshold",
    )
    resources["ApiHighLatencyP99"] = _alarm(
        f"{app}-{stage}-api-latency-p99",
        f"API p99 latency over {API_P99_LATENCY_MS} ms for 10 minutes",
        _metric("AWS/ApiGateway", "Latency", api, "p99"),
        API_P99_LATENCY_MS,
        "GreaterThanThreshold",
    )
    return resources


def _widget(title: str, metrics: list[list[Any]], stat: str, y: int, x: int = 0, width: int = 12) -> Json:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": width,
        "height": 6,
        "properties": {
            "title": title,
            "metrics": metrics,
            "period": 300,
            "stat": stat,
            "region": "${AWS::Region}",
            "view": "timeSeries",
        },
    }


def dashboard_body(stage: str, app: str) -> str:
    """The dashboard as CloudWatch wants it: a JSON string (``${AWS::Region}`` left for Fn::Sub)."""
    names = [function_name(h, stage, app) for h in HANDLERS]
    business = [[NAMESPACE, m, "Stage", stage] for m in ("OrdersProcessed", "PaymentSuccess", "InventoryReservations")]
    api = ["ApiName", app, "Stage", API_GATEWAY_STAGE]
    dlq_names = [
        f"{app}-{q}-{stage}" for q in ("order-processing-dlq", "notification-events-dlq", "payment-rechecks-dlq")
    ] + [f"{app}-{q}-{stage}" for q in ("event-delivery-dlq", "async-invoke-dlq")]
    widgets = [
        _widget("Function Duration (p99)", [["AWS/Lambda", "Duration", "FunctionName", n] for n in names], "p99", 0),
        _widget("Function Errors", [["AWS/Lambda", "Errors", "FunctionName", n] for n in names], "Sum", 0, 12),
        _widget("Function Throttles", [["AWS/Lambda", "Throttles", "FunctionName", n] for n in names], "Sum", 6),
        _widget("Business Metrics", business, "Sum", 6, 12),
        _widget("Order Value (USD)", [[NAMESPACE, "OrderValue", "Currency", "USD", "Stage", stage]], "Sum", 12),
        _widget(
            "API requests, 4xx, 5xx",
            [["AWS/ApiGateway", m, *api] for m in ("Count", "4XXError", "5XXError")],
            "Sum",
            12,
            12,
        ),
        _widget("API Latency (p99)", [["AWS/ApiGateway", "Latency", *api]], "p99", 18),
        _widget(
            "Dead-letter queues (messages visible)",
            [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q] for q in dlq_names],
            "Maximum",
            18,
            12,
        ),
    ]
    return json.dumps({"widgets": widgets}, separators=(",", ":"))


def observability_resources(stage: str, app: str) -> Json:
    """Resources appended to the stage template; the alarms refer to ``AlertsTopic`` defined before them."""
    return {
        "Dashboard": {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {
                "DashboardName": f"{app}-{stage}",
                "DashboardBody": {"Fn::Sub": dashboard_body(stage, app)},
            },
        },
        **alarm_resources(stage, app),
    }
