"""A log of every call the embedded AWS serves, one ``service operation`` line each, when asked.

``LOCAL_AWS_CALL_LOG=<path>`` makes the stage wrap moto's WSGI application so that each request
appends a line to ``path`` before moto handles it. The benchmark of the order pipeline
(``bench/e2e.py``) counts these lines to learn which AWS calls one order makes: inside the stage,
calls come from the app's functions, from Step Functions tasks and from the stage's own pollers,
and the HTTP request to the embedded AWS is the one place all of them pass.

The service is the signing name in the SigV4 ``Authorization`` header; the operation is the
``X-Amz-Target`` suffix (JSON protocols), the form's ``Action`` (query protocols) or the REST
route (Lambda's ``Invoke``). ``PutEvents`` is qualified by the entries' sources, so that the status
change events the stage emits for Step Functions (``aws.states``, free on AWS) can be told from
the app's own.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs

from localstage.patches import Patches

CALL_LOG = "LOCAL_AWS_CALL_LOG"
UNKNOWN = "unknown"

_SERVICE = re.compile(r"Credential=[^/]*/[^/]*/[^/]*/([^/]+)/")
_REST_ROUTES = (  # (method, path pattern, operation) for the REST services the app calls
    ("POST", re.compile(r"^/2015-03-31/functions/[^/]+/invocations$"), "Invoke"),
    ("POST", re.compile(r"^/2014-11-13/functions/[^/]+/invoke-async/?$"), "InvokeAsync"),
)
_MAX_BODY_READ = 1 << 20  # bodies are read only to name the operation; larger ones are not AWS JSON/query calls

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def service_of(authorization: str) -> str:
    """The SigV4 signing name (``dynamodb``, ``sqs``, ``states``, ``events``...), else ``unknown``."""
    found = _SERVICE.search(authorization)
    return found.group(1) if found else UNKNOWN


def operation_of(method: str, path: str, target: str, content_type: str, body: bytes) -> str:
    """The API operation a request calls, from its target header, form body or REST route."""
    if target:
        operation = target.rsplit(".", 1)[-1]
        return _qualified(operation, body)
    if "x-www-form-urlencoded" in content_type:
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return action[0]
    for route_method, pattern, operation in _REST_ROUTES:
        if method == route_method and pattern.match(path):
            return operation
    return f"{method} {path.split('?', 1)[0]}"


def _qualified(operation: str, body: bytes) -> str:
    """The operation with what its bill depends on: items per call, consistency, event sources.

    ``TransactWriteItems[2]``, ``BatchGetItem[3]``, ``GetItem(ConsistentRead)``,
    ``PutEvents(ecommerce.orders)``; an unreadable body leaves the bare name.
    """
    if operation not in _QUALIFIED:
        return operation
    try:
        request = json.loads(body)
        return _QUALIFIED[operation](operation, request)
    except (ValueError, AttributeError, TypeError):
        return operation


def _items(operation: str, request: dict[str, Any]) -> str:
    if operation == "TransactWriteItems":
        count = len(request["TransactItems"])
    elif operation == "BatchGetItem":
        count = sum(len(table["Keys"]) for table in request["RequestItems"].values())
    else:  # BatchWriteItem
        count = sum(len(writes) for writes in request["RequestItems"].values())
    return f"{operation}[{count}]"


def _consistency(operation: str, request: dict[str, Any]) -> str:
    return f"{operation}(ConsistentRead)" if request.get("ConsistentRead") else operation


def _sources(operation: str, request: dict[str, Any]) -> str:
    entries = request.get("Entries", [])
    sources = ",".join(sorted({str(entry.get("Source", "")) for entry in entries}))
    return f"{operation}({sources})" + (f"[{len(entries)}]" if len(entries) != 1 else "")


_QUALIFIED: dict[str, Callable[[str, dict[str, Any]], str]] = {
    "TransactWriteItems": _items,
    "BatchGetItem": _items,
    "BatchWriteItem": _items,
    "GetItem": _consistency,
    "Query": _consistency,
    "PutEvents": _sources,
}


class CallLog:
    """WSGI middleware: appends ``service operation`` for each request, then calls moto."""

    def __init__(self, app: WsgiApp, sink: IO[str]) -> None:
        self._app = app
        self._sink = sink
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = _read_body(environ)
        line = " ".join(
            (
                service_of(environ.get("HTTP_AUTHORIZATION", "")),
                operation_of(
                    environ.get("REQUEST_METHOD", ""),
                    environ.get("PATH_INFO", ""),
                    environ.get("HTTP_X_AMZ_TARGET", ""),
                    environ.get("CONTENT_TYPE", ""),
                    body,
                ),
            )
        )
        with self._lock:
            self._sink.write(line + "\n")
            self._sink.flush()  # the benchmark reads the file while the stage runs
        return self._app(environ, start_response)


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, put back so moto reads it as if nothing had."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return b""
    if length <= 0 or length > _MAX_BODY_READ:
        return b""
    body: bytes = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def install(patches: Patches, path: Path) -> None:
    """Make every ``ThreadedMotoServer`` started from now on log its calls to ``path`` (appending).

    moto's threaded server builds its WSGI app by calling ``DomainDispatcherApplication`` from its own
    module, which is where the log goes in (through ``localstage.patches``, undone with ``patches``).
    """
    from moto.moto_server import threaded_moto_server

    sink = path.open("a", encoding="utf-8")  # lives as long as the server, i.e. the process

    def logging_dispatcher(dispatcher: Callable[..., Any]) -> Callable[..., CallLog]:
        def logged_dispatcher(*args: Any, **kwargs: Any) -> CallLog:
            return CallLog(dispatcher(*args, **kwargs), sink)

        return logged_dispatcher

    patches.wrap("moto", threaded_moto_server, "DomainDispatcherApplication", logging_dispatcher)


def install_from_env(patches: Patches, env: Mapping[str, str] | None = None) -> Path | None:
    """``install`` to ``$LOCAL_AWS_CALL_LOG`` if it is set; returns the path, or ``None``."""
    value = (os.environ if env is None else env).get(CALL_LOG)
    if not value:
        return None
    path = Path(value)
    install(patches, path)
    return path


def main() -> int:
    """``python -m localstage.call_log``: the local stage, with ``$LOCAL_AWS_CALL_LOG`` installed first.

    The same stage as ``python -m localstage``; a launcher rather than a switch inside the stage,
    so counting calls adds nothing to the stage's own start-up path.
    """
    from localstage.__main__ import main as run_stage
    from localstage.__main__ import version_refusal

    refusal = version_refusal()
    if refusal is not None:  # before the log's own patch, which would only say moto moved
        print(refusal, file=sys.stderr)
        return 2
    with Patches() as patches:
        install_from_env(patches)
        return run_stage()


if __name__ == "__main__":
    raise SystemExit(main())
