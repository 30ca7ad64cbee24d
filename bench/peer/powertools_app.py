"""``GET /products/{id}`` and ``GET /orders/{id}`` written as Powertools for AWS Lambda's documentation shows.

The peer a Python team would pick instead of our own observability: ``APIGatewayRestResolver`` for
routing, ``Logger`` with the Lambda context injected and the API Gateway request id as correlation id,
``Tracer`` around the handler and each route (X-Ray subsegments, botocore patched), and ``Metrics``
flushing one EMF document per invocation with the seed's per-function figures (the same three our
``chalicelib.observability.invocation`` writes). The routes call the same services as ``app.py``
(``chalicelib.bootstrap.container``), so the difference measured is the framework and the
observability, not the business code.

Importing it outside Lambda (the warm benchmark) disables the X-Ray SDK for the whole process, as
Powertools' Tracer does when it finds no Lambda environment; the warm figures run untraced anyway.

This module is standalone on purpose: the cold-start benchmark copies it into the unpacked deployment
package as ``peer_app.py`` and runs it there, with Powertools on the path as a Lambda layer would put it.
It is never deployed.
"""

from __future__ import annotations

import resource
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from chalicelib.bootstrap import container
from chalicelib.domain.errors import AuthenticationError, DomainError, NotFoundError
from chalicelib.domain.users import Principal

SERVICE = "ecommerce-backend"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace="EcommerceBackend", service=SERVICE)
app = APIGatewayRestResolver()


def _caller() -> Principal:
    """The caller as the (cached) TOKEN authorizer described it, as ``chalicelib.api.http.principal`` reads it."""
    context = app.current_event.request_context.authorizer.raw_event or {}
    user_id = context.get("user_id")
    if not user_id:
        raise AuthenticationError("No authenticated caller")
    roles = tuple(r for r in str(context.get("roles", "")).split(",") if r)
    return Principal(user_id=str(user_id), email=str(context.get("email", "")), roles=roles)


@app.exception_handler(DomainError)
def domain_error(exc: DomainError) -> Response[Any]:
    status = 404 if isinstance(exc, NotFoundError) else 401 if isinstance(exc, AuthenticationError) else 400
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body={"error": exc.code, "message": str(exc), "request_id": app.current_event.request_context.request_id},
    )


@app.get("/products/<product_id>")
@tracer.capture_method
def get_product(product_id: str) -> dict[str, Any]:
    return container().catalog.get(product_id).to_dict()


@app.get("/orders/<order_id>")
@tracer.capture_method
def get_order(order_id: str) -> dict[str, Any]:
    return container().orders.get(_caller(), order_id).to_dict()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    started = time.perf_counter()
    answer = app.resolve(event, context)
    metrics.add_dimension(name="FunctionName", value=context.function_name)
    metrics.add_metric(name="FunctionExecutionTime", unit=MetricUnit.Milliseconds, value=_ms_since(started))
    metrics.add_metric(name="MaxMemoryUsed", unit=MetricUnit.Megabytes, value=_max_memory_mb())
    if answer["statusCode"] < 500:
        metrics.add_metric(name="FunctionSuccess", unit=MetricUnit.Count, value=1)
    return answer


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _max_memory_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
