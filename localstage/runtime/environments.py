"""The execution environments of deployed functions: one worker process each, started and retired by the emulator.

``ProcessRuntime`` is the ``EnvironmentRuntime`` the emulator (``localstage.lambdas``) is given for
functions created through the Lambda API with their own code. The emulator keeps what it already
does for every function (timeouts, reserved concurrency, warm reuse, START/END/REPORT, metrics, the
asynchronous path); this module only starts an environment's process when the emulator makes a new
environment, runs each invocation in it, and kills it when the emulator discards the environment.

Each process gets what Lambda gives a Python 3 runtime (``lambda_environment``): the function's own
variables, ``LAMBDA_TASK_ROOT`` and the runtime's paths, the ``AWS_LAMBDA_*`` names, the region,
the embedded AWS's endpoint, and the credentials of the function's execution role, assumed through
the embedded STS with the function's name as session name. So every call the deployed code makes is
signed as ``assumed-role/<role>/<function>`` and the embedded AWS's IAM enforcement authorises it
with nothing on the stage's side.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.credentials import Credentials

from localstage.functions import FunctionSpec
from localstage.iam.principals import Acting, acting_as
from localstage.lambda_model import Environment, LiveConfig, RuntimeReportedError, Usage
from localstage.runtime.api import Invocation
from localstage.runtime.code import CodeCache
from localstage.runtime.worker import INIT_TIMEOUT_S, WorkerProcess
from localstage.xray import current_header

log = logging.getLogger("localstage.runtime")

PATH = "/usr/local/bin:/usr/bin:/bin"  # not the virtualenv's bin: the runtime has no developer tools


@dataclass(frozen=True)
class FunctionSetup:
    """What the Lambda API holds for one version of a function: what its environments are built from."""

    name: str
    version: str
    handler: str
    runtime: str
    role_arn: str
    code_sha256: str
    code: bytes = field(repr=False)
    variables: Mapping[str, str] = field(default_factory=dict)


def lambda_environment(
    setup: FunctionSetup,
    *,
    memory_mb: int,
    log_stream: str,
    task_root: Path,
    libraries: Path,
    credentials: Credentials,
    endpoint: str,
    region: str,
    scratch: Path,
    xray_daemon_address: str | None = None,
) -> dict[str, str]:
    """The variables Lambda's Python runtime starts with; the function's own cannot override Lambda's."""
    environment = {"PATH": PATH, "LANG": "en_US.UTF-8", "TZ": ":UTC", **setup.variables}
    environment.update(
        {
            "_HANDLER": setup.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{setup.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": setup.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": setup.version,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{setup.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": credentials.access_key,
            "AWS_SECRET_ACCESS_KEY": credentials.secret_key,
            "AWS_SESSION_TOKEN": credentials.token or "",
            "AWS_ENDPOINT_URL": endpoint,  # the embedded AWS, for every SDK call the code makes
            "LAMBDA_TASK_ROOT": str(task_root),
            "LAMBDA_RUNTIME_DIR": str(libraries),
            "PYTHONPATH": f"{task_root}:{libraries}",  # the zip's root first, then the runtime's boto3
            "PYTHONDONTWRITEBYTECODE": "1",  # /var/task is read-only on Lambda
            "TMPDIR": str(scratch),  # each environment's own /tmp
            # No shared AWS config or credentials file of the developer's: only what Lambda gives.
            "AWS_CONFIG_FILE": str(scratch / ".aws-config-none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(scratch / ".aws-credentials-none"),
        }
    )
    if xray_daemon_address:
        host, _, port = xray_daemon_address.rpartition(":")
        environment.update(
            {
                "AWS_XRAY_DAEMON_ADDRESS": xray_daemon_address,
                "_AWS_XRAY_DAEMON_ADDRESS": host,
                "_AWS_XRAY_DAEMON_PORT": port,
                "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            }
        )
    return environment


SetupSource = Callable[[FunctionSpec, LiveConfig], FunctionSetup]
CredentialSource = Callable[[str, str], Acting]  # (function name, role ARN) -> its role session

_current = threading.local()  # the worker of the environment this thread's invocation runs in


@dataclass
class _Entry:
    name: str
    worker: WorkerProcess | None  # None: the environment could not even be built
    failure: dict[str, Any] | None = None


class ProcessRuntime:
    """Runs each execution environment of the functions registered with it as a worker process."""

    def __init__(
        self,
        setups: SetupSource,
        credentials: CredentialSource,
        code: CodeCache,
        libraries: Path,
        scratch_root: Path,
        endpoint: str,
        region: str,
        xray_daemon_address: str | None = None,
        python: str = sys.executable,
        init_timeout_s: float = INIT_TIMEOUT_S,
    ) -> None:
        self._setups = setups
        self._credentials = credentials
        self._code = code
        self._libraries = libraries
        self._scratch_root = scratch_root
        self._endpoint = endpoint
        self._region = region
        self._xray = xray_daemon_address
        # -S: no site-packages at all, so only PYTHONPATH (the code, then the runtime's libraries)
        # and the standard library can be imported; awslambdaric is the bootstrap, as in AWS's images.
        self._argv_prefix = [python, "-S", "-m", "awslambdaric"]
        self._init_timeout_s = init_timeout_s
        self._entries: dict[Environment, _Entry] = {}
        self._lock = threading.Lock()

    # -- EnvironmentRuntime --------------------------------------------------------------------

    def init(self, spec: FunctionSpec, env: Environment, config: LiveConfig) -> float:
        started = time.monotonic()
        worker: WorkerProcess | None = None
        try:
            worker = self._worker(spec, env, config)
            with self._lock:
                self._entries[env] = _Entry(spec.name, worker)
            init_ms = worker.start()
        except Exception as exc:  # the environment cannot be built: the invocation says why, as Lambda would
            log.exception("could not build an environment for %s", spec.name)
            if worker is not None:
                worker.stop()
            failure = {"errorType": "Runtime.Unknown", "errorMessage": f"could not start {spec.name}: {exc}"}
            with self._lock:
                self._entries[env] = _Entry(spec.name, None, failure)
            return (time.monotonic() - started) * 1000
        log.info("%s: new environment (pid %s) ready in %.1f ms", spec.name, worker.pid, init_ms)
        return init_ms

    @contextmanager
    def scope(self, spec: FunctionSpec, env: Environment) -> Iterator[None]:
        with self._lock:
            entry = self._entries.get(env)
        previous = getattr(_current, "entry", None)
        _current.entry = entry
        try:
            yield
        finally:
            _current.entry = previous

    def usage(self, env: Environment) -> Usage | None:
        with self._lock:
            entry = self._entries.get(env)
        return entry.worker.last_usage if entry is not None and entry.worker is not None else None

    def retire(self, spec: FunctionSpec, env: Environment) -> None:
        with self._lock:
            entry = self._entries.pop(env, None)
        if entry is not None and entry.worker is not None:
            entry.worker.stop()
            log.info("%s: environment (pid %s) retired", spec.name, entry.worker.pid)

    # -- the handler the emulator calls --------------------------------------------------------

    def handle(self, event: Any, context: Any) -> bytes:
        """Hand the event to this invocation's environment process; its response as it posted it."""
        entry: _Entry | None = getattr(_current, "entry", None)
        if entry is None:  # its environment was stopped meanwhile (the function deleted, the stage stopping)
            message = f"RequestId: {context.aws_request_id} Error: Runtime exited with error: signal: killed"
            raise RuntimeReportedError({"errorType": "Runtime.ExitError", "errorMessage": message}, True)
        if entry.worker is None:
            raise RuntimeReportedError(entry.failure or {}, environment_lost=True)
        invocation = Invocation(
            request_id=context.aws_request_id,
            event=json.dumps(event).encode(),
            deadline_epoch_ms=int(time.time() * 1000) + context.get_remaining_time_in_millis(),
            function_arn=context.invoked_function_arn,
            trace_id=current_header(),
        )
        return entry.worker.invoke(invocation, context.deadline, _print)

    # -- lifecycle -----------------------------------------------------------------------------

    def workers(self, name: str) -> list[WorkerProcess]:
        """The live workers of ``name`` (for the stage's report and tests)."""
        with self._lock:
            return [e.worker for e in self._entries.values() if e.name == name and e.worker is not None]

    def stop_function(self, name: str) -> None:
        """Stop every environment of ``name``, busy or not (the function was deleted)."""
        with self._lock:
            gone = {env: e for env, e in self._entries.items() if e.name == name}
            for env in gone:
                del self._entries[env]
        for entry in gone.values():
            if entry.worker is not None:
                entry.worker.stop()

    def stop(self) -> None:
        """Stop every environment (the stage is stopping)."""
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
        for entry in entries:
            if entry.worker is not None:
                entry.worker.stop()

    def _worker(self, spec: FunctionSpec, env: Environment, config: LiveConfig) -> WorkerProcess:
        setup = self._setups(spec, config)
        with acting_as(None):  # Lambda assumes the role as itself, whoever's thread invoked
            session = self._credentials(setup.name, setup.role_arn)
        task_root = self._code.task_root(setup.code_sha256, setup.code)
        scratch = self._scratch_root / uuid.uuid4().hex
        environment = lambda_environment(
            setup,
            memory_mb=config.memory_mb,
            log_stream=env.stream,
            task_root=task_root,
            libraries=self._libraries,
            credentials=session.credentials,
            endpoint=self._endpoint,
            region=self._region,
            scratch=scratch,
            xray_daemon_address=self._xray,
        )
        label = f"{setup.name}:{setup.version}"
        argv = [*self._argv_prefix, setup.handler]
        return WorkerProcess(label, argv, task_root, environment, scratch, self._init_timeout_s)


def _print(text: str) -> None:
    # Line by line onto this invocation's thread, where the emulator's capture collects its log.
    for line in text.splitlines(keepends=True):
        sys.stdout.write(line)
