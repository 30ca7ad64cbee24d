"""ecommerce-backend: the Chalice application. Wiring only.

Each route parses its input, calls one service, and shapes the answer; the
services live in ``chalicelib/services`` and are built lazily by
``chalicelib/bootstrap``. See docs/architecture.md.
"""

from __future__ import annotations

from typing import Any, Callable

from chalice import Chalice, Response
from chalice.app import AuthRequest, Request

from chalicelib.api import http
from chalicelib.api.auth import authorize
from chalicelib.api.errors import translated, with_cors
from chalicelib.bootstrap import container
from chalicelib.domain.orders import parse_order_request
from chalicelib.domain.uploads import parse_upload_request
from chalicelib.domain.users import parse_credentials, parse_registration

app = Chalice(app_name="ecommerce-backend")


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


@app.authorizer(ttl_seconds=300)
def jwt_auth(auth_request: AuthRequest) -> dict[str, Any]:
    return authorize(container().tokens, auth_request.token, auth_request.method_arn)


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
