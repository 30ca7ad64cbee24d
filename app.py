"""ecommerce-backend: the Chalice application. Wiring only.

Each route parses its input, calls one service, and shapes the answer; the
services live in ``chalicelib/services`` and are built lazily by
``chalicelib/bootstrap``. See docs/architecture.md.
"""

from __future__ import annotations

from typing import Any, Callable

from chalice import Response
from chalice.app import AuthRequest, CloudWatchEvent, Request, SNSEvent, SQSEvent

from chalicelib.api import http
from chalicelib.api.auth import authorize
from chalicelib.api.authorizer_middleware import AuthorizerMiddlewareChalice
from chalicelib.api.errors import server_error_type, translated, with_cors
from chalicelib.bootstrap import container
from chalicelib.config import stage_resource_name, watchdog_schedule
from chalicelib.domain.orders import parse_order_request
from chalicelib.domain.uploads import parse_upload_request
from chalicelib.domain.users import parse_credentials, parse_registration
from chalicelib.entrypoints import pipeline as entry
from chalicelib.observability.correlation import ids_of
from chalicelib.observability.invocation import observe, set_up_once

app = AuthorizerMiddlewareChalice(app_name="ecommerce-backend")


def _current_request() -> Request | None:
    return app.current_request


def _request() -> Request:
    request = app.current_request
    assert request is not None, "only called while serving a request"
    return request


def route(path: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``app.route`` whose views answer domain errors with their HTTP status."""

    def register(view: Callable[..., Any]) -> Any:
        return app.route(path, **options)(translated(_current_request)(view))

    return register


@app.middleware("all")
@app.authorizer_middleware  # Chalice's "all" leaves authorizers out
def observability(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Every handler, the authorizer included: JSON logs with its ids, the per-function metrics as EMF."""
    set_up_once(tracing_enabled=bool(container().settings.xray_daemon_address))
    return observe(ids_of(event), lambda: get_response(event), failure_of=server_error_type)


# API Gateway caches each token's verdict this long: it bounds how long a deleted account's token still works.
@app.authorizer(ttl_seconds=60)
def jwt_auth(auth_request: AuthRequest) -> dict[str, Any]:
    return authorize(container().authenticator, auth_request.token, auth_request.method_arn)


@app.middleware("http")
def http_headers(event: Any, get_response: Callable[[Any], Response]) -> Response:
    response = get_response(event)
    return with_cors(response, container().settings.cors_allow_origin, http.request_id(event))


def _body() -> Any:
    return http.json_body(_request(), container().settings.max_body_bytes)


# -- health and identity ------------------------------------------------------------------------


@route("/health", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok"}


@route("/users", methods=["POST"])
def register_user() -> Response:
    profile = container().users.register(parse_registration(_body()))
    return http.json_response({"user_id": profile.user_id, "email": profile.email, "name": profile.name}, 201)


@route("/auth/login", methods=["POST"])
def login() -> dict[str, Any]:
    credentials = parse_credentials(_body())
    return container().users.login(credentials.email, credentials.password).to_dict()


@route("/users/{user_id}", methods=["GET"], authorizer=jwt_auth)
def get_user(user_id: str) -> dict[str, Any]:
    return container().users.get_profile(http.principal(_request()), user_id).public()


# -- catalog ----------------------------------------------------------------------------------------


@route("/products", methods=["GET"])
def list_products() -> dict[str, Any]:
    request = _request()
    category = http.query_param(request, "category")
    page = container().catalog.list(
        category.lower() if category else None, http.page_limit(request), http.next_token(request)
    )
    return {"items": [p.to_dict() for p in page.items], "next_token": page.next_token}


@route("/products/{product_id}", methods=["GET"])
def get_product(product_id: str) -> dict[str, Any]:
    return container().catalog.get(product_id).to_dict()


@route("/products", methods=["POST"], authorizer=jwt_auth)
def create_product() -> Response:
    caller = http.principal(_request())
    product = container().catalog.create(caller, _body())
    return http.json_response(product.to_dict(), 201)


@route("/products/{product_id}", methods=["PATCH"], authorizer=jwt_auth)
def update_product(product_id: str) -> dict[str, Any]:
    caller = http.principal(_request())
    return container().catalog.update(caller, product_id, _body()).to_dict()


# -- orders -----------------------------------------------------------------------------------------


@route("/orders", methods=["POST"], authorizer=jwt_auth)
def place_order() -> Response:
    request = _request()
    caller = http.principal(request)
    key = http.idempotency_key(request)
    placed = container().orders.place(caller, parse_order_request(_body()), key, http.request_id(request))
    headers = {"Idempotent-Replayed": "true"} if placed.replayed else {}
    return http.json_response(placed.order.to_dict(), 201, headers)


@route("/orders", methods=["GET"], authorizer=jwt_auth)
def list_orders() -> dict[str, Any]:
    request = _request()
    page = container().orders.list_mine(http.principal(request), http.page_limit(request), http.next_token(request))
    return {"items": [o.to_dict() for o in page.items], "next_token": page.next_token}


@route("/orders/{order_id}", methods=["GET"], authorizer=jwt_auth)
def get_order(order_id: str) -> dict[str, Any]:
    return container().orders.get(http.principal(_request()), order_id).to_dict()


# -- uploads ----------------------------------------------------------------------------------------


@route("/uploads", methods=["POST"], authorizer=jwt_auth)
def create_upload() -> Response:
    caller = http.principal(_request())
    uploads = container().uploads
    form = uploads.create(caller, parse_upload_request(_body(), uploads.max_bytes))
    return http.json_response(form, 201)


# -- order pipeline ---------------------------------------------------------------------------------
# The Step Functions tasks (statemachine.json calls each ``${<Name>FunctionArn}``, see
# infra/pipeline.py), the order queue's consumer, the pending payments' re-check consumer, the
# two notification consumers and the execution-status handler. Failures propagate: Step Functions
# catches them by class name, Lambda retries them and dead-letters what keeps failing.


def _order_id(event: dict[str, Any]) -> str:
    return str(event["order_id"])


@app.lambda_function(name="validate_order")
def validate_order(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return container().workflow_steps.validate(_order_id(event))


@app.lambda_function(name="check_inventory")
def check_inventory(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return container().workflow_steps.check_inventory(_order_id(event))


@app.lambda_function(name="process_payment")
def process_payment(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return container().workflow_steps.process_payment(_order_id(event))


def _round(event: dict[str, Any], default: int) -> int:
    return int(event.get("round", default))


@app.lambda_function(name="check_payment_status")
def check_payment_status(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return container().workflow_steps.check_payment_status(_order_id(event), _round(event, 1))


@app.lambda_function(name="await_payment")
def await_payment(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return container().payment_rechecks.await_payment(_order_id(event), _round(event, 0))


@app.lambda_function(name="reserve_inventory")
def reserve_inventory(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return container().workflow_steps.reserve_inventory(_order_id(event))


@app.lambda_function(name="send_confirmation")
def send_confirmation(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return container().workflow_steps.send_confirmation(_order_id(event))


@app.lambda_function(name="schedule_shipping")
def schedule_shipping(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return container().workflow_steps.schedule_shipping(_order_id(event))


@app.lambda_function(name="complete_order")
def complete_order(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return container().workflow_steps.complete(_order_id(event))


@app.lambda_function(name="reject_order")
def reject_order(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return container().compensations.reject(_order_id(event))


@app.lambda_function(name="notify_out_of_stock")
def notify_out_of_stock(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return container().compensations.notify_out_of_stock(_order_id(event))


@app.lambda_function(name="handle_payment_failure")
def handle_payment_failure(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return container().compensations.handle_payment_failure(_order_id(event))


@app.lambda_function(name="refund_payment")
def refund_payment(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return container().compensations.refund_payment(_order_id(event))


@app.lambda_function(name="compensate_order")
def compensate_order(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return container().compensations.compensate(_order_id(event))


@app.on_sqs_message(queue=stage_resource_name("order-processing"), batch_size=10, name="process_order")
def process_order(event: SQSEvent) -> dict[str, Any]:
    return entry.order_queue(event, container().order_intake, container().order_dead_letters)


@app.on_sqs_message(queue=stage_resource_name("payment-rechecks"), batch_size=10, name="recheck_payment")
def recheck_payment(event: SQSEvent) -> dict[str, Any]:
    rechecks = container().payment_rechecks
    return entry.payment_recheck_queue(event, rechecks, container().payment_recheck_dead_letters)


@app.on_sqs_message(queue=stage_resource_name("notification-events"), batch_size=10, name="route_notification_events")
def route_notification_events(event: SQSEvent) -> dict[str, Any]:
    c = container()
    return entry.notification_events(event, c.notification_service, c.notification_dead_letters)


@app.on_sns_message(topic=stage_resource_name("notifications"), name="send_notification")
def send_notification(event: SNSEvent) -> dict[str, Any]:
    return {"recorded": container().notification_service.deliver(entry.customer_notification(event.message))}


@app.on_cw_event(
    {"source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"]},
    name="handle_workflow_event",
)
def handle_workflow_event(event: CloudWatchEvent) -> dict[str, Any]:
    return container().workflow_monitor.handle(entry.execution_status_change(event.detail))


@app.schedule(watchdog_schedule(), name="sweep_stalled_orders")
def sweep_stalled_orders(event: CloudWatchEvent) -> dict[str, Any]:
    """Express sends no status-change events: compensate orders past their deadline (services/watchdog.py)."""
    return container().workflow_watchdog.sweep()


# -- operations -------------------------------------------------------------------------------------


@app.schedule("rate(1 day)", name="cost_optimizer")
def cost_optimizer(event: CloudWatchEvent) -> dict[str, Any]:
    """The seed's cost optimizer: one report per day in the reports bucket (docs/observability.md)."""
    from chalicelib.services.cost_optimizer import CostRun  # the cost model is not every function's to import

    return container().cost_optimizer.run(CostRun.from_event(event.to_dict()))
