"""Parsing requests and shaping responses, the same way for every route."""

from __future__ import annotations

import json
import logging
import uuid
from decimal import Decimal
from typing import Any, Callable, TypeVar

from chalice.app import Request, Response

from chalicelib.domain.errors import (
    AuthenticationError,
    ConflictError,
    DependencyUnavailableError,
    DomainError,
    FieldError,
    ForbiddenError,
    InvalidTransitionError,
    NotFoundError,
    PayloadTooLargeError,
    ValidationError,
    invalid,
)
from chalicelib.domain.users import Principal

logger = logging.getLogger("ecommerce.api")

STATUS_BY_ERROR: dict[type[DomainError], int] = {
    ValidationError: 400,
    AuthenticationError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    InvalidTransitionError: 409,
    PayloadTooLargeError: 413,
    DependencyUnavailableError: 503,
}
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
IDEMPOTENCY_HEADER = "idempotency-key"
REQUEST_ID_HEADER = "X-Request-Id"

View = TypeVar("View", bound=Callable[..., Any])


def request_id(request: Request | None) -> str:
    context = getattr(request, "context", None) or {}
    return str(context.get("requestId") or uuid.uuid4())


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_body(request: Request, max_bytes: int) -> Any:
    """The body as JSON, numbers with a fraction as exact ``Decimal``.

    Oversized bodies are refused before parsing (413); malformed JSON is a 400 on ``body``.
    """
    raw = request.raw_body or b""
    if len(raw) > max_bytes:
        raise PayloadTooLargeError(
            f"Request bodies are limited to {max_bytes} bytes",
            [FieldError("body", f"must be at most {max_bytes} bytes")],
        )
    if not raw.strip():
        raise invalid("body", "is required (a JSON object)")
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise invalid("body", "is not valid JSON") from exc


def query_param(request: Request, name: str) -> str | None:
    params: Any = request.query_params or {}
    return params.get(name)


def page_limit(request: Request) -> int:
    raw = query_param(request, "limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise invalid("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def next_token(request: Request) -> str | None:
    raw = query_param(request, "next_token")
    if raw is not None and (not raw or len(raw) > 2048):
        raise invalid("next_token", "is not a token this API issued")
    return raw


def idempotency_key(request: Request) -> str | None:
    headers: Any = request.headers or {}
    raw = headers.get(IDEMPOTENCY_HEADER)
    if raw is None:
        return None
    if not 1 <= len(raw) <= 255 or not raw.isprintable():
        raise invalid("Idempotency-Key", "must be 1 to 255 printable characters")
    return raw


def principal(request: Request) -> Principal:
    """The caller as the authorizer described it in the request context."""
    context = (request.context or {}).get("authorizer") or {}
    user_id = context.get("user_id")
    if not user_id:
        raise AuthenticationError("No authenticated caller")
    roles = tuple(r for r in str(context.get("roles", "")).split(",") if r)
    return Principal(user_id=str(user_id), email=str(context.get("email", "")), roles=roles)


def json_response(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body=body, status_code=status_code, headers={"Content-Type": "application/json", **(headers or {})})


def error_response(exc: DomainError, req_id: str) -> Response:
    status = next((code for cls, code in STATUS_BY_ERROR.items() if isinstance(exc, cls)), 400)
    body = {
        "error": exc.code,
        "message": exc.message,
        "details": [d.to_dict() for d in exc.details],
        "request_id": req_id,
    }
    return json_response(body, status, {REQUEST_ID_HEADER: req_id})


def internal_error_response(req_id: str) -> Response:
    body = {
        "error": "internal_error",
        "message": "An internal error occurred; quote the request id when reporting it",
        "details": [],
        "request_id": req_id,
    }
    return json_response(body, 500, {REQUEST_ID_HEADER: req_id})
