"""The Lambda Runtime API (``2018-06-01``) of one execution environment, served on 127.0.0.1.

A runtime talks to Lambda through this API and nothing else
(https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html): it asks for the next event
(``GET /runtime/invocation/next``, held open until there is one), posts the handler's answer
(``POST /runtime/invocation/{id}/response``) or error (``.../error``), or reports that it could not
start (``POST /runtime/init/error``). Speaking this protocol lets the worker run the official
runtime interface client (``awslambdaric``, what AWS's Python base images run) unchanged.

Each Lambda sandbox has its own endpoint (``AWS_LAMBDA_RUNTIME_API``), so a request needs no other
identification; each environment here gets its own server on a free port for the same reason.
State changes (the first ``/next``, an answer, an init error) are announced on the condition the
owner passes in, which it also uses for the runtime's output, so one wait sees every event.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("localstage.runtime.api")

PREFIX = "/2018-06-01/runtime"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
# Lambda's synchronous response limit; over it the caller gets Function.ResponseSizeTooLarge.
MAX_RESPONSE_BYTES = 6_291_556
_ANSWER_PATH = re.compile(rf"{PREFIX}/invocation/(?P<id>[^/]+)/(?P<kind>response|error)")


@dataclass(frozen=True)
class Invocation:
    """What ``/next`` hands the runtime: the event and the headers it builds its context from."""

    request_id: str
    event: bytes
    deadline_epoch_ms: int
    function_arn: str
    trace_id: str | None = None


@dataclass(frozen=True)
class Answer:
    """What the runtime posted for an invocation (or for its init)."""

    body: bytes
    error_type: str | None = None  # None: a response; else the runtime's error type header
    fatal: bool = False  # the runtime cannot go on (Lambda resets the environment)

    def error_payload(self) -> dict[str, Any]:
        """The error as Lambda returns it to the caller: the runtime's JSON, or its text under ``errorType``."""
        try:
            payload = json.loads(self.body)
        except ValueError:
            payload = None
        if isinstance(payload, dict) and "errorType" in payload:
            return payload
        return {"errorType": self.error_type or "Runtime.Unknown", "errorMessage": self.body.decode(errors="replace")}


class RuntimeApi:
    """One environment's Runtime API: hands one invocation at a time to the runtime and keeps its answer."""

    def __init__(self, changed: threading.Condition, host: str = "127.0.0.1") -> None:
        self._changed = changed
        self.first_next_at: float | None = None  # monotonic: the runtime finished its init
        self.init_error: Answer | None = None
        self._pending: Invocation | None = None
        self._current: Invocation | None = None
        self._answer: Answer | None = None
        self._closed = False
        self._server = _Server((host, 0), _Handler, self)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        """``host:port``, the value of ``AWS_LAMBDA_RUNTIME_API``."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> RuntimeApi:
        self._thread = threading.Thread(
            # poll_interval bounds how long close() waits: retiring an environment is on an invocation's path.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="runtime-api",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; a ``/next`` still waiting is answered 500 (its runtime is being stopped)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        if self._thread is not None:  # shutdown() waits for serve_forever(), which must have started
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    # -- the environment's side --------------------------------------------------------------

    def offer(self, invocation: Invocation) -> None:
        """Queue ``invocation`` for the runtime's next ``/next`` (one at a time, as Lambda does)."""
        with self._changed:
            if self._closed:
                raise RuntimeError(f"the Runtime API at {self.address} is closed")
            if self._pending is not None:
                raise RuntimeError(f"{self.address} already has invocation {self._pending.request_id} waiting")
            self._pending, self._answer = invocation, None
            self._changed.notify_all()

    def answer(self, request_id: str) -> Answer | None:
        """The runtime's answer to ``request_id`` once posted (call with the condition held, or poll)."""
        current = self._current
        return self._answer if current is not None and current.request_id == request_id else None

    # -- the runtime's side (request threads) ------------------------------------------------

    def _next(self) -> Invocation | None:
        with self._changed:
            if self.first_next_at is None:
                self.first_next_at = time.monotonic()
                self._changed.notify_all()
            while self._pending is None and not self._closed:
                self._changed.wait()
            if self._closed:
                return None
            invocation, self._pending = self._pending, None
            self._current = invocation
            return invocation

    def _post_init_error(self, answer: Answer) -> None:
        with self._changed:
            self.init_error = answer
            self._changed.notify_all()

    def _post_answer(self, request_id: str, answer: Answer) -> tuple[int, dict[str, str]]:
        with self._changed:
            current = self._current
            if current is None or current.request_id != request_id or self._answer is not None:
                return 400, {"errorMessage": f"Invalid request ID: {request_id}", "errorType": "InvalidRequestID"}
            self._answer = answer
            self._changed.notify_all()
        if answer.fatal:
            return 413, {
                "errorMessage": f"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
                "errorType": "RequestEntityTooLarge",
            }
        return 202, {"status": "OK"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a runtime killed mid-request must not keep the stage from exiting

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], api: RuntimeApi) -> None:
        super().__init__(address, handler)
        self.api = api

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            # A runtime killed on a kept-alive connection (a timeout, a retired environment): expected.
            log.debug("runtime at %s went away: %s", client_address, error)
            return
        log.exception("the Runtime API at %s failed on a request from %s", self.server_address, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and 100-continue for curl's larger posts
    disable_nagle_algorithm = True  # headers and body are two sends: no 40 ms delayed-ACK stall between them
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Small writes (headers, then body) must not wait for a delayed ACK: 40 ms per invocation otherwise.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        if self.path != f"{PREFIX}/invocation/next":
            self._reply(404, {"errorMessage": f"unknown path {self.path}", "errorType": "NotFound"})
            return
        invocation = self.server.api._next()
        if invocation is None:
            self._reply(500, {"errorMessage": "the environment is shutting down", "errorType": "ShuttingDown"})
            return
        headers = {
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_epoch_ms),
            "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
            "Content-Type": "application/json",
        }
        if invocation.trace_id:
            headers["Lambda-Runtime-Trace-Id"] = invocation.trace_id
        self._send(200, invocation.event, headers)

    def do_POST(self) -> None:
        body = self._body()
        error_type = self.headers.get(ERROR_TYPE_HEADER)
        if self.path == f"{PREFIX}/init/error":
            self.server.api._post_init_error(Answer(body, error_type or "Runtime.Unknown", fatal=True))
            self._reply(202, {"status": "OK"})
            return
        match = _ANSWER_PATH.fullmatch(self.path)
        if match is None:
            self._reply(404, {"errorMessage": f"unknown path {self.path}", "errorType": "NotFound"})
            return
        if match["kind"] == "error":
            answer = Answer(body, error_type or "Runtime.Unknown")
        elif len(body) > MAX_RESPONSE_BYTES:
            message = (
                f"Response payload size ({len(body)} bytes) exceeded maximum allowed payload size "
                f"({MAX_RESPONSE_BYTES} bytes)."
            )
            error = {"errorMessage": message, "errorType": "Function.ResponseSizeTooLarge"}
            answer = Answer(json.dumps(error).encode(), "Function.ResponseSizeTooLarge", fatal=True)
        else:
            answer = Answer(body)
        status, reply = self.server.api._post_answer(match["id"], answer)
        self._reply(status, reply)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()  # the CRLF that ends the body (runtimes send no trailers)
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status: int, document: dict[str, str]) -> None:
        self._send(status, json.dumps(document).encode(), {"Content-Type": "application/json"})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The runtime was killed while it waited (a timeout, a retired environment): nobody to answer.
            log.debug("%s went away before its %d answer to %s", self.address_string(), status, self.path)
            self.close_connection = True
