"""Middleware for the authorizer, which Chalice leaves out.

Chalice runs ``@app.middleware`` for routes, event handlers and ``@app.lambda_function``, but an
``@app.authorizer`` is wrapped apart (``Chalice._wrap_handler`` special-cases it) and gets none:
its log lines would carry no function or request id and it would write no EMF metrics, though it
runs on every uncached request. ``AuthorizerMiddlewareChalice`` is chalice's ``Chalice`` whose authorizers run
the middleware registered with ``@app.authorizer_middleware``, with an ``AuthorizerInvocation``
as the event, so the same observability middleware serves them (``app.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalice import Chalice
from chalice.app import ChaliceAuthorizer

Middleware = Callable[[Any, Callable[[Any], Any]], Any]


@dataclass(frozen=True)
class AuthorizerInvocation:
    """What an authorizer middleware receives: API Gateway's authorizer event and the Lambda context."""

    event: dict[str, Any]
    context: Any

    def to_dict(self) -> dict[str, Any]:
        return self.event


class MiddlewareAuthorizer(ChaliceAuthorizer):
    """A ``ChaliceAuthorizer`` that runs its app's authorizer middleware around the decision."""

    def __init__(self, name: str, func: Callable[..., Any], middleware: list[Middleware]) -> None:
        super().__init__(name, func)
        self._middleware = middleware  # the app's list: middleware registered later applies too

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        def decide(invocation: AuthorizerInvocation) -> Any:
            return ChaliceAuthorizer.__call__(self, invocation.event, invocation.context)

        call: Callable[[Any], Any] = decide
        for middleware in reversed(self._middleware):
            call = _chained(middleware, call)
        return call(AuthorizerInvocation(event, context))


def _chained(middleware: Middleware, following: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda invocation: middleware(invocation, following)


class AuthorizerMiddlewareChalice(Chalice):
    """Chalice, with ``@app.authorizer_middleware`` for ``@app.authorizer`` functions."""

    def __init__(self, app_name: str, **kwargs: Any) -> None:
        super().__init__(app_name, **kwargs)
        self._authorizer_middleware: list[Middleware] = []

    def authorizer_middleware(self, func: Middleware) -> Middleware:
        """Register ``func(invocation, get_response)`` to run around every authorizer of the app."""
        self._authorizer_middleware.append(func)
        return func

    def _wrap_handler(self, handler_type: str, handler_name: str, user_handler: Any) -> Any:
        if handler_type == "authorizer":
            return MiddlewareAuthorizer(handler_name, user_handler, self._authorizer_middleware)
        return super()._wrap_handler(handler_type, handler_name, user_handler)
