"""The stage's execution environments as processes: the zygote and each environment it forks.

``python -m localstage.lambda_worker`` is the zygote, started by ``localstage.lambda_processes`` (read
that first) with the stage's variables. It imports once what every environment needs (``app`` with
Chalice, PyJWT and the domain, boto3, the X-Ray SDK), then forks one process per execution
environment the emulator asks for. A fork is a few milliseconds where importing all that was about
three quarters of a second of CPU: under a burst, a new process per environment each importing the app
on two cores took longer than the 10 s init limit and fed on itself.

Each environment gets its own variables (the function's name, memory and log stream as Lambda names
them, and its execution role's credentials, so every SDK call it makes is signed as
``assumed-role/<role>/<function>`` and the embedded AWS authorises it as it authorises a deployed
function's), finds its handler the way the stage found it (``discover_functions``), says it is ready,
then runs one invocation after another on its main thread, as Lambda's runtime does.

Its SDK calls do not open a socket: the endpoint's HTTP session sends each prepared request over the
pipe the stage gave it, and the stage's process answers it with the same WSGI application its own
clients reach in process (``localstage.inprocess.serve``). A call is only ever made while the stage
waits on the pipe (during the init, or an invocation), so the pipe needs no request ids.

What the handler prints is captured per invocation (``localstage.output``) and sent back with its
answer for the log stream; the console sees it as it happens. Trace headers reach the X-Ray SDK as in
the stage (``localstage.xray.invocation_header``), and its segments go to the stage's daemon by UDP.
"""

from __future__ import annotations

import importlib
import math
import os
import pickle  # nosec B403: the peer is the stage that started this process
import signal
import socket
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from localstage import inprocess, output
from localstage.functions import discover_functions, load_chalice_config
from localstage.inprocess import aws_response, request_body
from localstage.lambda_model import LambdaContext, error_payload, print_unhandled
from localstage.patches import Patches
from localstage.xray import install_sdk_context, invocation_header

FD_VARIABLE = "LOCAL_LAMBDA_WORKER_FD"  # the zygote's end of its control socket with the stage
PROJECT_VARIABLE = "LOCAL_LAMBDA_WORKER_PROJECT"  # where app.py is
STAGE_VARIABLE = "LOCAL_LAMBDA_WORKER_STAGE"  # the Chalice stage the functions were discovered for
MAX_REQUEST_BYTES = 1_048_576  # one environment's variables, pickled
# Imported once by the zygote, before any fork: the app (and with it Chalice, PyJWT, the domain) and
# what the first invocation would import (boto3's clients, the X-Ray SDK and its botocore patch).
PRELOADED = (
    "app",
    "boto3",
    "botocore.client",
    "aws_xray_sdk.core",
    "aws_xray_sdk.ext.botocore.patch",
    "localstage.inprocess",
    "localstage.functions",
    "localstage.lambda_model",
    "localstage.xray",
)
# What the app's functions call (chalicelib/adapters): their models are parsed once, in the zygote.
APP_SERVICES = (
    "dynamodb",
    "sqs",
    "sns",
    "events",
    "stepfunctions",
    "secretsmanager",
    "cognito-idp",
    "cloudwatch",
    "lambda",
    "s3",
)


class PipeSession:
    """A botocore HTTP session whose requests are answered by the stage over the worker's pipe."""

    def __init__(self, conn: Connection, **_: Any) -> None:
        self._conn = conn
        self._lock = threading.Lock()  # a handler's own threads share the one pipe, a call at a time

    def send(self, request: Any) -> Any:
        headers = [
            (str(k), v.decode("latin-1") if isinstance(v, bytes) else str(v)) for k, v in request.headers.items()
        ]
        with self._lock:
            self._conn.send(("call", request.method, request.url, headers, request_body(request.body)))
            _, status, answered, body = self._conn.recv()
        return aws_response(request, status, answered, body)

    def close(self) -> None:
        """The pipe is the process's; it closes when the process ends."""


def main() -> int:
    """The zygote: import what every environment needs once, then fork one process per environment.

    Each request on the control socket (fd ``FD_VARIABLE``) is an environment's variables with its
    pipe's fd attached; the answer is the new process's pid. A forked environment starts with the
    imports done (the app included) and does only its own init: its pipe, its X-Ray context, its
    handler. The zygote ends when the stage closes the control socket.
    """
    # A Ctrl-C in make run's terminal reaches its whole process group. The stage stops its environments
    # itself (closing their pipes, killing them); a KeyboardInterrupt here only printed a traceback per
    # process over the stage's goodbye. The environments inherit this through the fork.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control = socket.socket(fileno=int(os.environ.pop(FD_VARIABLE)))
    project = Path(os.environ.pop(PROJECT_VARIABLE))
    stage = os.environ.pop(STAGE_VARIABLE)
    output.install()  # before the app: Chalice's log handler binds sys.stdout when the app is made
    sys.path.insert(0, str(project))
    for module in PRELOADED:
        importlib.import_module(module)
    _load_service_models()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the environments are reaped as they end
    control.send(b"ready")
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(control, MAX_REQUEST_BYTES, 1)
        except OSError:
            return 0
        if not data:  # the stage closed the control socket
            return 0
        pid = os.fork()
        if pid == 0:
            control.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os._exit(_environment(Connection(fds[0]), pickle.loads(data), project, stage))  # noqa: S301  # nosec B301
        os.close(fds[0])
        control.send(pid.to_bytes(8, "little"))


def _load_service_models() -> None:
    """Parse, once, the botocore data every environment's first clients need, into the app's session.

    Each environment would otherwise read and parse the same JSON (the partitions, each service's model
    and endpoint rules) on its first call: about 0.1 to 0.2 s of CPU per new environment, paid again
    for every environment a burst adds. No credentials are resolved: a client is never made here.
    """
    from chalicelib.adapters import aws

    session = aws.session()
    session.get_available_regions("dynamodb")  # the partitions' endpoint data
    loader = session._session.get_component("data_loader")
    for service in APP_SERVICES:
        for kind in ("service-2", "endpoint-rule-set-1"):
            loader.load_service_model(service, kind)


def _environment(conn: Connection, variables: dict[str, str], project: Path, stage: str) -> int:
    """One forked environment: its own variables and pipe, then one invocation after another."""
    started = time.monotonic()
    os.environ.clear()
    os.environ.update(variables)
    try:
        handler = _init(conn, project, stage)
    except Exception as exc:  # the init failed: the stage reports it, as Lambda reports an init error
        conn.send(("failed", {"errorType": f"Runtime.{type(exc).__name__}", "errorMessage": str(exc)}))
        return 1
    conn.send(("ready", (time.monotonic() - started) * 1000))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the stage closed the pipe (or its process ended): the environment is gone
            return 0
        done = _invoke(handler, *message[1:])
        try:  # pickled whole before anything is written: a failure sends nothing
            conn.send(done)
        except Exception as exc:  # any reason the answer cannot travel is the runtime's marshal error
            error = {"errorType": "Runtime.MarshalError", "errorMessage": f"Unable to marshal response: {exc}"}
            conn.send(("done", None, error, *done[3:]))


def _init(conn: Connection, project: Path, stage: str) -> Any:
    inprocess.route(os.environ["AWS_ENDPOINT_URL"], lambda **options: PipeSession(conn, **options))
    daemon = os.environ.get("AWS_XRAY_DAEMON_ADDRESS")
    if daemon:
        install_sdk_context(Patches(), daemon)  # never undone: the process is the environment
    app = importlib.import_module("app").app
    name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    specs = {spec.name: spec for spec in discover_functions(app, stage, load_chalice_config(project))}
    if name not in specs:
        raise LookupError(f"no function {name} in the app")
    return specs[name].handler


def _invoke(handler: Any, request_id: str, event: Any, context_fields: dict[str, Any], header: str | None) -> tuple:
    context = LambdaContext(**context_fields)
    value: Any = None
    error: dict[str, Any] | None = None
    cpu = time.thread_time()
    with output.captured() as printed, invocation_header(header):
        try:
            value = handler(event, context)
        except BaseException as exc:  # the runtime reports anything the handler raises
            error = error_payload(exc, request_id)
            print_unhandled(exc)
    cpu_ms = (time.thread_time() - cpu) * 1000
    peak_mb = _peak_resident_mb()
    return ("done", value, error, "".join(printed), cpu_ms, peak_mb)


def _peak_resident_mb() -> int:
    """This process's peak resident set (``VmHWM``), what Lambda's ``Max Memory Used`` reports.

    Not ``getrusage``'s ``ru_maxrss``: it survives ``exec``, so it would count the stage's process
    this one was forked from.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return math.ceil(int(line.split()[1]) / 1024)
    except OSError:
        pass  # not Linux: no figure rather than a wrong one
    return 0


if __name__ == "__main__":
    sys.exit(main())
