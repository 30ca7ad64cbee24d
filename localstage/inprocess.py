"""SDK calls from inside the stage's own process reach the embedded AWS without a socket.

The embedded AWS is moto's threaded werkzeug server, and werkzeug's development server answers
every request with ``Connection: close``: each call a function, a poller or moto's own Step
Functions interpreter makes opens a TCP connection, and the server starts a thread to parse it.
Profiled under load (docs/benchmarks.md), that socket and thread work was about a third of the
stage's CPU, more than moto's own dispatch.

Every botocore client created in this process for the embedded AWS's endpoint gets, instead of
urllib3, an HTTP session that hands the prepared request to the same WSGI application the server
runs: the same middlewares in the same order (API Gateway data plane, throttling, the S3 POST policy
check, IAM enforcement, the AWS size quotas, moto), the same headers, body and signature. Only the
transport differs; what AWS accepts or refuses is decided exactly as over HTTP. Clients in other
processes (tests, the benchmark, runbooks, ``make deploy``, deployed functions' runtime workers) use
HTTP as before, and so does any client created before the stage started.

Installed through the checked patch layer (``localstage.patches``): botocore's
``EndpointCreator.create_endpoint`` is wrapped once per process while at least one embedded AWS is
registered, and restored when the last one stops.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

from urllib3 import HTTPHeaderDict
from urllib3.response import HTTPResponse

from localstage.patches import Patches
from localstage.threads import run_detached

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_lock = threading.Lock()
_apps: dict[str, WsgiApp] = {}  # "host:port" -> the WSGI app serving it in this process
_sessions: dict[str, Callable[..., Any]] = {}  # "host:port" -> the botocore HTTP session class for it
_patches = Patches()


def _underscored(name: str) -> bool:
    return "_" in name


class InProcessSession:
    """A botocore HTTP session (``send(request) -> AWSResponse``) that calls a WSGI app directly."""

    def __init__(self, app: WsgiApp, **_: Any) -> None:
        self._app = app

    def send(self, request: Any) -> Any:
        status, headers, body = serve_with(self._app, request.method, request.url, request.headers, request.body)
        return aws_response(request, status, headers, body)

    def close(self) -> None:
        """Nothing pooled, nothing to close (botocore calls this when a client is closed)."""


Answer = tuple[int, list[tuple[str, str]], bytes]  # status, headers, body


def serve(method: str, url: str, headers: Any, body: Any) -> Answer:
    """Answer one request for a routed endpoint as its server would: status, headers, body.

    What a worker process's SDK call becomes in the stage's process (localstage/lambda_processes.py).
    """
    app = _apps.get(_endpoint_key(url))
    if app is None and len(_apps) == 1:  # a host botocore derived from the endpoint (an S3 bucket's)
        app = next(iter(_apps.values()))
    if app is None:
        raise ConnectionError(f"no embedded AWS serves {url} in this process")
    return serve_with(app, method, url, headers, body)


def serve_with(app: WsgiApp, method: str, url: str, headers: Any, body: Any) -> Answer:
    environ = wsgi_environ(method, url, headers, request_body(body))
    status_line: list[str] = []
    response_headers: list[tuple[str, str]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
        if exc_info is not None and status_line:
            raise exc_info[1].with_traceback(exc_info[2])
        status_line[:] = [status]
        response_headers[:] = list(headers)
        return lambda _data: None  # the legacy write() callable; moto never uses it

    # Served on this thread as the server would serve it on a new one (``run_detached``): the
    # caller's principal, captured output, X-Ray entities and context variables are its own, and
    # moto's work for the request (a Lambda invoke's telemetry, an SNS delivery) must not run as
    # the caller. A handoff to another thread and back cost about a third of a GetItem's CPU.
    answer: bytes = run_detached(lambda: _call(app, environ, start_response))
    if method == "HEAD":
        answer = b""
    return int(status_line[0].split(" ", 1)[0]), response_headers, answer


def aws_response(request: Any, status: int, headers: list[tuple[str, str]], body: bytes) -> Any:
    """The ``AWSResponse`` botocore's own HTTP session would make of this answer to ``request``."""
    import botocore.awsrequest

    if not request.stream_output:  # read whole, as botocore reads it: no stream object needed
        return botocore.awsrequest.AWSResponse(request.url, status, merged_headers(headers), _Read(body))
    raw = HTTPResponse(
        body=io.BytesIO(body),
        headers=HTTPHeaderDict(headers),  # repeated headers kept, as urllib3 keeps them
        status=status,
        preload_content=False,
        decode_content=False,
        request_method=request.method,  # a HEAD's Content-Length announces no body
        enforce_content_length=False,  # as botocore's own session asks of urllib3
    )
    return botocore.awsrequest.AWSResponse(request.url, status, raw.headers, raw)


class _Read:
    """A response body already read: what ``AWSResponse.content`` asks of its raw response."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *_: Any, **__: Any) -> Iterable[bytes]:
        yield self._body


def merged_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Response headers as urllib3's ``HTTPHeaderDict`` presents them: names case-insensitive, the first
    spelling kept, a repeated header's values joined with ", "."""
    merged: dict[str, str] = {}
    spelled: dict[str, str] = {}
    for name, value in headers:
        first = spelled.setdefault(name.lower(), name)
        merged[first] = f"{merged[first]}, {value}" if first in merged else value
    return merged


def _call(app: WsgiApp, environ: dict[str, Any], start_response: Callable[..., Any]) -> bytes:
    result = app(environ, start_response)
    try:
        return b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def request_body(body: Any) -> bytes:
    """A prepared request's body as bytes, whatever botocore holds it as."""
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    if hasattr(body, "read"):
        data = body.read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return b"".join(body)  # an iterable of chunks


def wsgi_environ(method: str, url: str, headers: Any, body: bytes) -> dict[str, Any]:
    """The environ werkzeug's server (with moto's ``MotoRequestHandler``) builds for this request.

    Mirrors ``werkzeug.serving.WSGIRequestHandler.make_environ``: the path unquoted, headers with an
    underscore dropped (moto keeps those under their original spelling, as here), repeated headers
    joined with commas. The body arrives whole, so ``Transfer-Encoding`` is dropped and
    ``Content-Length`` is its length.
    """
    from moto.core.request import (
        PRESERVED_HEADER_NAMES_ENVIRON_KEY,
        environ_key_for_header,
        should_preserve_original_header_name,
    )

    parts = urlsplit(url)
    port = str(parts.port or (443 if parts.scheme == "https" else 80))
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    environ: dict[str, Any] = {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": parts.scheme or "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "SERVER_SOFTWARE": "localstage-inprocess",
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote(parts.path).encode("utf-8").decode("latin-1"),
        "QUERY_STRING": parts.query.encode("utf-8").decode("latin-1"),
        "REQUEST_URI": target,
        "RAW_URI": target,
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": 0,
        "SERVER_NAME": parts.hostname or "localhost",
        "SERVER_PORT": port,
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    pairs = headers.items() if hasattr(headers, "items") else headers
    items = [(str(k), v.decode("latin-1") if isinstance(v, bytes) else str(v)) for k, v in pairs]
    for name, value in items:
        if _underscored(name) or name.lower() in ("transfer-encoding", "content-length"):
            continue
        key = name.upper().replace("-", "_")
        value = value.replace("\r\n", "")
        if key != "CONTENT_TYPE":
            key = f"HTTP_{key}"
            if key in environ:
                value = f"{environ[key]},{value}"
        environ[key] = value
    environ.setdefault("HTTP_HOST", parts.netloc)
    if body or method not in ("GET", "HEAD"):
        environ["CONTENT_LENGTH"] = str(len(body))
    # moto's MotoRequestHandler: headers whose names hold an underscore, under their own spelling.
    dashed = {environ_key_for_header(name) for name, _ in items if not _underscored(name)}
    names: dict[str, str] = {}
    values: dict[str, list[str]] = {}
    for name, value in items:
        if not should_preserve_original_header_name(name):
            continue
        key = environ_key_for_header(name)
        if key in dashed:
            continue
        names.setdefault(key, name)
        values.setdefault(key, []).append(value.replace("\r\n", ""))
    for key, joined in values.items():
        environ[key] = ",".join(joined)
    environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = names
    return environ


def _endpoint_key(endpoint_url: str) -> str:
    parts = urlsplit(endpoint_url)
    host = "127.0.0.1" if parts.hostname == "localhost" else (parts.hostname or "")
    return f"{host}:{parts.port or 80}"


def _routed(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_endpoint(
        self: Any, service_model: Any, region_name: Any, endpoint_url: str, *args: Any, **kwargs: Any
    ) -> Any:
        session = _sessions.get(_endpoint_key(endpoint_url)) if endpoint_url else None
        if session is not None:
            kwargs["http_session_cls"] = session
        return original(self, service_model, region_name, endpoint_url, *args, **kwargs)

    return create_endpoint


def register(host: str, port: int, app: WsgiApp) -> None:
    """Serve SDK clients this process creates for ``http://host:port`` by calling ``app`` directly."""
    _apps[_endpoint_key(f"http://{host}:{port}")] = app
    route(f"http://{host}:{port}", lambda **options: InProcessSession(app, **options))


def route(endpoint_url: str, session: Callable[..., Any]) -> None:
    """Give SDK clients this process creates for ``endpoint_url`` the HTTP session ``session(**options)``.

    ``register`` routes to a WSGI app here; a Lambda worker process routes to its pipe to the stage.
    """
    from botocore.endpoint import EndpointCreator

    with _lock:
        if not _sessions:
            _patches.wrap("botocore", EndpointCreator, "create_endpoint", _routed)
        _sessions[_endpoint_key(endpoint_url)] = session


def unregister(host: str, port: int) -> None:
    """Stop routing ``host:port`` in process; the last one out restores botocore."""
    with _lock:
        key = _endpoint_key(f"http://{host}:{port}")
        _apps.pop(key, None)
        _sessions.pop(key, None)
        if not _sessions:
            _patches.undo()


def routed_endpoints() -> list[str]:
    with _lock:
        return sorted(_sessions)
