"""moto's services answer the SDK's requests without Flask's per-request machinery.

moto's server mounts each service as a Flask app whose routes are all ``convert_to_flask_response``
around one of the service's handlers. For each request, Flask builds a request context and an app
context, binds a URL adapter, opens and saves a null session, sends its signals and runs the CORS
extension's after-request hook, around a handler call that is the only part with an effect. Profiled
on the in-process transport, that was about 30 % of the embedded AWS's own cost of a ``GetItem``
(docs/benchmarks.md, "End to end").

For a request that can take it, the dispatcher now does what that machinery amounts to, and no more:

- the app's own request class over the same environ, its URL adapter built as Flask builds it
  (``create_url_adapter``), the route matched, ``url_rule`` and ``view_args`` set as Flask sets them;
- the route's handler called as ``convert_to_flask_response`` calls it (the request recorder, the raw
  URL, the headers as a dict; a ``ClientError`` answered 400 with its message), its answer made into
  the app's response class the same way (a ``HEAD``'s announced ``Content-Length`` kept);
- the header moto's global CORS adds to a request without an ``Origin``
  (``Access-Control-Allow-Origin: *``), unless ``MOTO_DISABLE_GLOBAL_CORS`` removed the extension;
- an exception from the handler propagates, as it does from moto's app (Flask runs in debug mode, so
  it re-raises); a werkzeug ``HTTPException`` becomes its response, as Flask makes it.

A request takes this path only if it is not ``OPTIONS`` and has no ``Origin`` header (what the SDK
sends; CORS answers those differently), its route matches (a 404 or 405 is Flask's page), the route's
view is moto's ``convert_to_flask_response``, the app's only hooks are the CORS extension's
after-request and Flask's default template context, and the service is not moto's own API (its pages
render templates, which need Flask's app context). Anything else goes through Flask as before. The
tests in tests/integration/test_localstage_moto_dispatch.py compare status, headers and body with Flask's
for each service the stage uses.

Before any of this, the dispatcher finds the request's backend from its host (``sqs.us-east-1...``,
inferred from the signature's scope) by matching it against each backend's URL patterns in turn;
the answer for a host never changes, so it is kept (``get_backend_for_host``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError  # what convert_to_flask_response answers 400
from moto.core.utils import convert_to_flask_response
from moto.moto_api import recorder
from werkzeug.exceptions import HTTPException

from localstage.patches import Patches

CORS_ORIGIN = "Access-Control-Allow-Origin"
_THROUGH_FLASK = frozenset({"moto_api"})  # its views render templates in Flask's app context

# app -> None (not eligible) or whether the CORS extension is on; read without a lock (a race computes twice)
_eligible: weakref.WeakKeyDictionary[Any, bool | None] = weakref.WeakKeyDictionary()
_UNKNOWN = object()


def _hooks_of(app: Any) -> bool | None:
    """None if ``app`` has hooks this path does not run; else whether flask_cors's after-request is on."""
    known = _eligible.get(app, _UNKNOWN)
    if known is not _UNKNOWN:
        return known  # type: ignore[return-value]
    after = {key: list(funcs) for key, funcs in app.after_request_funcs.items() if funcs}
    cors_only = list(after) == [None] and len(after[None]) == 1
    cors = cors_only and after[None][0].__qualname__.startswith("make_after_request_function")
    others = (
        app.before_request_funcs,
        app.teardown_request_funcs,
        app.url_value_preprocessors,
        app.url_default_functions,
    )
    handlers = any(spec for spec in app.error_handler_spec.values())
    plain = not any(any(funcs.values()) for funcs in others) and not handlers
    eligible: bool | None = cors if plain and (cors or not after) and app.service not in _THROUGH_FLASK else None
    _eligible[app] = eligible
    return eligible


def answer_directly(app: Any, environ: dict[str, Any]) -> Any | None:
    """The response moto's Flask ``app`` would give ``environ``, or None if it must go through Flask."""
    if environ.get("REQUEST_METHOD") == "OPTIONS" or "HTTP_ORIGIN" in environ:
        return None
    cors = _hooks_of(app)
    if cors is None:
        return None
    request = app.request_class(environ)
    try:
        rule, args = app.create_url_adapter(request).match(return_rule=True)
    except HTTPException:
        return None  # no route, a wrong method or a redirect: Flask's answer
    view = app.view_functions.get(rule.endpoint)
    if not isinstance(view, convert_to_flask_response):
        return None
    request.url_rule, request.view_args = rule, args
    try:
        try:
            recorder._record_request(request)
            result = view.callback(request, request.raw_url, dict(request.headers))
        except ClientError as exc:
            result = 400, {}, exc.response["Error"]["Message"]
        status, headers, content = result if len(result) == 3 else (200, {}, result)
        response = app.response_class(response=content, status=status, headers=headers)
        if request.method == "HEAD" and "content-length" in headers:
            response.headers["Content-Length"] = headers["content-length"]
    except HTTPException as exc:
        response = app.response_class.force_type(exc, environ)
    if cors and not response.headers.get(CORS_ORIGIN):
        response.headers.add(CORS_ORIGIN, "*")
    return response


def _direct(original: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def __call__(self: Any, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        app = self.get_application(environ)
        response = answer_directly(app, environ)
        if response is None:
            return app(environ, start_response)
        return response(environ, start_response)

    return __call__


def _remembered(original: Callable[[Any, str | None], Any]) -> Callable[[Any, str | None], Any]:
    """``get_backend_for_host``, answered once per host: moto matches the host against the URL pattern
    of each backend in turn (about 200 regular expressions, one request after another), and the answer
    depends on nothing else. A host no backend serves is asked again each time (moto prints about it)."""
    found: dict[str, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host is None:
            return None
        backend = found.get(host)
        if backend is None:
            backend = original(self, host)
            if backend is not None:
                found[host] = backend
        return backend

    return get_backend_for_host


def dispatch_directly(patches: Patches) -> None:
    """Answer the SDK's requests from moto's handlers without Flask's request and app contexts, and find
    each host's backend once."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    patches.wrap("moto", DomainDispatcherApplication, "__call__", _direct)
    patches.wrap("moto", DomainDispatcherApplication, "get_backend_for_host", _remembered)
