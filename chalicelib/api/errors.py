"""The one place where exceptions become HTTP answers."""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable

from chalice.app import Request, Response

from chalicelib.api.http import error_response, internal_error_response, request_id
from chalicelib.domain.errors import DomainError

logger = logging.getLogger("ecommerce.api")


def translated(current_request: Callable[[], Request | None]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a view so domain errors map to their status and anything else to a bare 500.

    Chalice turns every exception into its own 500 body before middleware can
    see it, so the translation happens around the view itself.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return view(*args, **kwargs)
            except DomainError as exc:
                req_id = request_id(current_request())
                logger.info("request refused: %s %s", type(exc).__name__, exc.message, extra={"request_id": req_id})
                return error_response(exc, req_id)
            except Exception:
                req_id = request_id(current_request())
                logger.exception("unhandled error", extra={"request_id": req_id})
                return internal_error_response(req_id)

        return wrapper

    return decorate


def with_cors(response: Response, allow_origin: str, req_id: str) -> Response:
    """Every answer, errors included, carries CORS and request-id headers."""
    response.headers.setdefault("Access-Control-Allow-Origin", allow_origin)
    response.headers.setdefault("Access-Control-Allow-Headers", "Authorization,Content-Type,Idempotency-Key")
    response.headers.setdefault("Access-Control-Expose-Headers", "X-Request-Id")
    response.headers.setdefault("X-Request-Id", req_id)
    return response


def server_error_type(response: Any) -> str | None:
    """The error code of a 5xx answer (``internal_error``, ``service_unavailable``), else ``None``.

    Views answer failures instead of raising (see ``translated``), so the invocation's metrics
    learn of a server error from the response. ``HTTP<status>`` names a 5xx with no code in its
    body, which the app's own answers (``chalicelib/api/http.py``) never are.
    """
    status = getattr(response, "status_code", 200)
    if status < 500:
        return None
    body = getattr(response, "body", None)
    code = body.get("error") if isinstance(body, dict) else None
    return str(code) if code else f"HTTP{status}"
