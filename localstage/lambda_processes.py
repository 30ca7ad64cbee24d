"""The stage's own functions in worker processes: an execution environment is a process, as on Lambda.

The emulator (``localstage.lambdas``) can run handlers on threads of the stage's process, one
interpreter lock for the whole system (``LOCAL_LAMBDA_PROCESSES=0``, and the tests' ``emulated``
harness). By default each execution environment it creates for one of the app's functions is a worker
process (``localstage.lambda_worker``), forked from a zygote that imported the app once, with the
function's variables and its role's credentials, serving one invocation after another:

- the handler, botocore's client side of its SDK calls and the X-Ray SDK run in the worker, on the
  machine's other core: about a fifth of the stage's interpreter-lock time per order (docs/benchmarks.md);
- each SDK call travels as its prepared request over the worker's socketpair and is answered in the
  stage's process by the same WSGI application its own clients reach (``localstage.inprocess.serve``):
  the same middlewares, IAM enforcement from the request's signature (the role session's keys), quotas
  and moto, without HTTP parsing or a thread per connection;
- what a worker holds is its own, as a Lambda environment's is: module globals, the app's container,
  its caches and clients. A timeout or a crash kills the process, and the next invocation gets a new
  one with a measured ``Init Duration``;
- its CPU (the handler's thread) and memory (the process's peak resident set) are measured in the
  worker and reported as the invocation's (``Usage``), instead of the thread-time and ``tracemalloc``
  model the in-process handlers need.

The emulator keeps every Lambda semantic around the handler (timeouts, concurrency, START/END/REPORT,
metrics, retries): this module is an ``EnvironmentRuntime``, like the deployed functions' runtime
(``localstage.runtime``), whose environments run awslambdaric against a Runtime API over HTTP.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import pickle  # nosec B403: our own zygote, over a private socketpair
import signal
import socket
import subprocess  # starts our own interpreter on our own module, no shell  # nosec B404
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from localstage import inprocess, output
from localstage.functions import FunctionSpec
from localstage.iam.principals import Acting
from localstage.lambda_model import Environment, LiveConfig, RuntimeReportedError, Usage
from localstage.lambda_worker import FD_VARIABLE, PROJECT_VARIABLE, STAGE_VARIABLE
from localstage.xray import current_header

log = logging.getLogger("localstage.lambdas")

INIT_TIMEOUT_S = 10.0  # Lambda's limit for the Init phase of an on-demand function
_current = threading.local()  # the worker of the invocation running on this thread


def enabled_from_env(env: dict[str, str]) -> bool:
    """``LOCAL_LAMBDA_PROCESSES``: unless ``0``, the stage's functions run in worker processes."""
    return env.get("LOCAL_LAMBDA_PROCESSES", "1") != "0"


class WorkerGone(Exception):
    """The worker's process ended (killed on a timeout, crashed, or stopped with the stage)."""


class Worker:
    """One environment's process and the stage's end of its pipe; one exchange at a time."""

    def __init__(self, label: str, pid: int, conn: Connection) -> None:
        self.label = label
        self.pid = pid  # the zygote's child: it reaps it
        self.conn = conn
        self.last_usage: Usage | None = None

    def exchange(self, message: tuple[Any, ...] | None, timeout_s: float | None = None) -> tuple[Any, ...]:
        """Send ``message`` (if any), answer the worker's SDK calls, return its next other message."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            if message is not None:
                self.conn.send(message)
            while True:
                if deadline is not None and not self.conn.poll(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"{self.label}: no answer in {timeout_s:.0f} s")
                reply = self.conn.recv()
                if reply[0] != "call":
                    return tuple(reply)
                self.conn.send(("answer", *_answer(*reply[1:])))
        except (EOFError, OSError) as exc:
            raise WorkerGone(f"{self.label}: the environment's process ended ({exc or 'pipe closed'})") from exc

    def stop(self) -> None:
        """Kill the process and close the pipe (idempotent; the zygote reaps it)."""
        if not self.conn.closed:
            with contextlib.suppress(ProcessLookupError):  # it had ended already
                os.kill(self.pid, signal.SIGKILL)
            self.conn.close()


def _answer(method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> inprocess.Answer:
    try:
        return inprocess.serve(method, url, headers, body)
    except Exception:  # what werkzeug's server answers for an application that raised
        log.exception("the embedded AWS failed on %s %s from a worker", method, url)
        return 500, [("Content-Type", "text/plain; charset=utf-8")], b"Internal Server Error"


class WorkerProcesses:
    """The ``EnvironmentRuntime`` that runs the app's functions' environments as worker processes."""

    def __init__(
        self,
        project_dir: Path,
        stage: str,
        principal: Callable[[str], Acting | None],
        init_timeout_s: float = INIT_TIMEOUT_S,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        """``environment``: what every environment's variables start from (default: ``os.environ`` then)."""
        self._project_dir = project_dir
        self._stage = stage
        self._principal = principal
        self._environment = environment
        self._init_timeout_s = init_timeout_s
        self._lock = threading.Lock()
        self._workers: dict[Environment, Worker | dict[str, Any]] = {}  # a worker, or why it failed
        self._zygote: Zygote | None = None
        self._stopped = False

    def start(self) -> WorkerProcesses:
        """Start the zygote now (its imports overlap the stage's own start) rather than at the first init."""
        with self._lock:
            if self._stopped:  # an invocation racing the stage's stop must not start a zygote again
                raise RuntimeError("the stage's Lambda processes are stopped")
            if self._zygote is None:
                self._zygote = Zygote(self._project_dir, self._stage, self._base())
        return self

    def wrap(self, spec: FunctionSpec) -> FunctionSpec:
        """``spec`` with the handler the emulator calls: this runtime's, which hands the event on."""
        return dataclasses.replace(spec, handler=self.handle)

    # -- EnvironmentRuntime ----------------------------------------------------------------------

    def init(self, spec: FunctionSpec, env: Environment, config: LiveConfig) -> float:
        started = time.monotonic()
        worker: Worker | None = None
        try:
            worker = self._spawn(spec, env, config)
            with self._lock:
                self._workers[env] = worker
            reply = worker.exchange(None, self._init_timeout_s)
            if reply[0] != "ready":
                raise RuntimeError(reply[1].get("errorMessage", reply))
        except Exception as exc:  # the environment cannot be built: the invocation says why, as Lambda would
            log.error("%s: could not start an environment: %s", spec.name, exc)
            if worker is not None:
                worker.stop()
            failure = {"errorType": "Runtime.Unknown", "errorMessage": f"could not start {spec.name}: {exc}"}
            with self._lock:
                self._workers[env] = failure
            return (time.monotonic() - started) * 1000
        init_ms = float(reply[1])
        log.debug("%s: new environment (pid %s) ready in %.1f ms", spec.name, worker.pid, init_ms)
        return init_ms

    @contextmanager
    def scope(self, spec: FunctionSpec, env: Environment) -> Iterator[None]:
        with self._lock:
            found = self._workers.get(env)
        previous = getattr(_current, "worker", None)
        _current.worker = found
        try:
            yield
        finally:
            _current.worker = previous

    def usage(self, env: Environment) -> Usage | None:
        with self._lock:
            found = self._workers.get(env)
        return found.last_usage if isinstance(found, Worker) else None

    def retire(self, spec: FunctionSpec, env: Environment) -> None:
        with self._lock:
            found = self._workers.pop(env, None)
        if isinstance(found, Worker):
            found.stop()

    def stop(self) -> None:
        """Stop every environment, then the zygote (the stage is stopping)."""
        with self._lock:
            self._stopped = True
            found, self._workers = list(self._workers.values()), {}
            zygote, self._zygote = self._zygote, None
        for worker in found:
            if isinstance(worker, Worker):
                worker.stop()
        if zygote is not None:
            zygote.stop()

    def processes(self) -> list[int]:
        """The live workers' pids (tests and the stage's report)."""
        with self._lock:
            return [w.pid for w in self._workers.values() if isinstance(w, Worker)]

    # -- the handler the emulator calls ------------------------------------------------------------

    def handle(self, event: Any, context: Any) -> Any:
        """Run the invocation in this thread's environment process; its answer, or its error raised."""
        found = getattr(_current, "worker", None)
        if not isinstance(found, Worker):
            failure = found or {"errorType": "Runtime.ExitError", "errorMessage": "the environment was stopped"}
            raise RuntimeReportedError(failure, environment_lost=True)
        fields = dataclasses.asdict(context)
        try:
            reply = found.exchange(("invoke", context.aws_request_id, event, fields, current_header()))
        except WorkerGone as gone:
            message = f"RequestId: {context.aws_request_id} Error: Runtime exited with error: {gone}"
            raise RuntimeReportedError({"errorType": "Runtime.ExitError", "errorMessage": message}, True) from gone
        _, value, error, printed, cpu_ms, peak_mb = reply
        output.record(printed)
        found.last_usage = Usage(cpu_ms=cpu_ms, max_memory_mb=peak_mb)
        if error is not None:
            raise RuntimeReportedError(error)
        return value

    def _spawn(self, spec: FunctionSpec, env: Environment, config: LiveConfig) -> Worker:
        zygote = self.start()._zygote
        assert zygote is not None
        variables = {
            **self._base(),
            **spec.environment,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": config.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": env.stream,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info[0]}.{sys.version_info[1]}",
        }
        principal = self._principal(spec.name)
        if principal is not None:  # the role session's keys, as Lambda hands them to the runtime
            keys = principal.credentials
            variables.update(
                AWS_ACCESS_KEY_ID=keys.access_key, AWS_SECRET_ACCESS_KEY=keys.secret_key, AWS_SESSION_TOKEN=keys.token
            )
        ours, theirs = socket.socketpair()
        try:
            pid = zygote.fork(variables, theirs.fileno())
        finally:
            theirs.close()
        return Worker(f"{spec.name}:{config.version}", pid, Connection(ours.detach()))

    def _base(self) -> Mapping[str, str]:
        return os.environ if self._environment is None else self._environment


class Zygote:
    """The process every environment is forked from (``localstage.lambda_worker.main``)."""

    def __init__(self, project_dir: Path, stage: str, base: Mapping[str, str], ready_timeout_s: float = 60.0) -> None:
        self._lock = threading.Lock()
        self._control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        path = [str(Path(__file__).resolve().parent.parent), *filter(None, [base.get("PYTHONPATH")])]
        environment = {
            **base,
            "PYTHONPATH": os.pathsep.join(path),  # localstage, wherever the project is
            FD_VARIABLE: str(theirs.fileno()),
            PROJECT_VARIABLE: str(project_dir),
            STAGE_VARIABLE: stage,
        }
        try:
            self._process = subprocess.Popen(  # nosec B603: our interpreter, our module, no shell
                [sys.executable, "-m", "localstage.lambda_worker"],
                cwd=project_dir,
                env=environment,
                pass_fds=(theirs.fileno(),),
            )
        finally:
            theirs.close()
        self._ready_timeout_s = ready_timeout_s
        self._ready = False

    def _wait_ready(self) -> None:
        self._control.settimeout(self._ready_timeout_s)
        try:
            ready = self._control.recv(16)
        except TimeoutError:
            ready = b""
        if ready != b"ready":
            raise RuntimeError(f"the Lambda zygote did not start (exit code {self._process.poll()})")
        self._control.settimeout(None)
        self._ready = True

    def fork(self, variables: dict[str, str], fd: int) -> int:
        """A new environment process with ``variables``, its pipe on ``fd``; its pid."""
        with self._lock:
            if not self._ready:  # the first fork waits for the zygote's imports; the others for the lock
                self._wait_ready()
            socket.send_fds(self._control, [pickle.dumps(variables)], [fd])
            answer = self._control.recv(8)
        if len(answer) != 8:
            raise RuntimeError("the Lambda zygote has ended")
        return int.from_bytes(answer, "little")

    def stop(self) -> None:
        self._control.close()  # the zygote's loop ends on it
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
