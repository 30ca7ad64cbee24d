"""What the Lambda emulator (``localstage.lambdas``) works with: configurations, contexts, environments, results.

Plain data and protocols, no behaviour beyond the memory/CPU model's formula (``modelled_duration_ms``,
explained in ``localstage.lambdas``), so the runtime, pollers and gateways can share them without the emulator.
"""

from __future__ import annotations

import base64
import json
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from localstage.functions import FunctionSpec

FULL_VCPU_MB = 1769
RUNTIME_BASELINE_MB = 38  # what a near-empty Python handler reports on AWS
LOG_TAIL_BYTES = 4096


class LambdaEmulatorError(Exception):
    """Base class of the emulator's errors."""


class FunctionNotFoundError(LambdaEmulatorError):
    """No function of that name is registered (AWS: ResourceNotFoundException)."""


class RuntimeReportedError(LambdaEmulatorError):
    """An error a function's own runtime reported (a worker process: ``localstage.runtime``).

    ``payload`` is what the runtime posted (``errorType``, ``errorMessage``, ...), returned to the
    caller as it is, and the runtime has already logged it, so the emulator does not log it again.
    ``environment_lost``: the runtime process is gone (an init error, an exit), so the environment
    is discarded, as Lambda discards a sandbox whose runtime died.
    """

    def __init__(self, payload: dict[str, Any], environment_lost: bool = False) -> None:
        super().__init__(f"{payload.get('errorType')}: {payload.get('errorMessage')}")
        self.payload = payload
        self.environment_lost = environment_lost


class LambdaThrottledError(LambdaEmulatorError):
    """Reserved concurrency exhausted.

    AWS: 429 ``TooManyRequestsException``, Reason ``ReservedFunctionConcurrentInvocationLimitExceeded``.
    """


@dataclass(frozen=True)
class AsyncConfig:
    """What ``PutFunctionEventInvokeConfig`` sets for asynchronous invocations (AWS defaults)."""

    max_retries: int = 2
    max_event_age_s: int = 21_600
    on_success: str | None = None
    on_failure: str | None = None


@dataclass(frozen=True)
class LiveConfig:
    """A function's configuration at invoke time (it may change through the Lambda API)."""

    arn: str
    memory_mb: int
    timeout_s: float
    reserved_concurrency: int | None = None
    version: str = "$LATEST"
    asynchronous: AsyncConfig = AsyncConfig()
    active_tracing: bool = False  # TracingConfig Mode=Active: Lambda writes segments and passes a header
    revision: str = ""  # code, handler, role, variables: environments are built for one revision


ConfigSource = Callable[[FunctionSpec, str | None], LiveConfig]


def static_config(spec: FunctionSpec, qualifier: str | None) -> LiveConfig:
    """The spec's own settings, for use without moto."""
    from localstage.server import ACCOUNT_ID, REGION  # not at import: Lambda workers load this module

    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{spec.name}"
    return LiveConfig(arn=arn, memory_mb=spec.memory_mb, timeout_s=spec.timeout_s)


class Clock(Protocol):
    def __call__(self) -> float: ...


@dataclass
class LambdaContext:
    """The attributes of AWS's Python runtime context object."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass(eq=False)  # identity: each environment is its own, and keys the state it holds
class Environment:
    """One execution environment: its log stream and the configuration it was built for."""

    stream: str
    config_key: tuple[int, float, str]
    cold: bool = True


# What an execution environment holds of its own while it runs a handler (the app's container, its
# caches and clients): on Lambda each environment is a process; here they share one.
EnvironmentScope = Callable[[FunctionSpec, Environment], AbstractContextManager[None]]


@dataclass(frozen=True)
class Usage:
    """What one invocation used, measured by a runtime that runs outside this process."""

    cpu_ms: float
    max_memory_mb: int


class EnvironmentRuntime(Protocol):
    """Runs a function's execution environments in processes of their own (``localstage.runtime``).

    The emulator keeps its semantics (timeouts, concurrency, warm reuse, logs, metrics) and asks the
    runtime for what only it knows: how long an environment took to start, what an invocation used,
    and when an environment it discards must be stopped.
    """

    def init(self, spec: FunctionSpec, env: Environment, config: LiveConfig) -> float:
        """Start ``env`` for ``config`` (Lambda's Init phase, outside the invocation's clock); its ms."""
        ...

    def scope(self, spec: FunctionSpec, env: Environment) -> AbstractContextManager[None]:
        """Entered around the handler on the invocation's thread: the handler runs in ``env``."""
        ...

    def usage(self, env: Environment) -> Usage | None:
        """What the invocation that just ended used, if the runtime measured it."""
        ...

    def retire(self, spec: FunctionSpec, env: Environment) -> None:
        """``env`` is discarded (timeout, runtime lost, out of memory, new configuration): stop it."""
        ...


@dataclass
class InvocationResult:
    request_id: str
    payload: bytes
    function_error: str | None
    log_lines: list[str]
    duration_ms: float
    measured_ms: float
    billed_ms: int
    max_memory_mb: int
    init_ms: float | None
    executed_version: str = "$LATEST"

    @property
    def log_tail(self) -> str:
        """Base64 of the last 4 KB of this invocation's log, as ``LogType=Tail`` returns it."""
        text = "\n".join(self.log_lines) + "\n"
        return base64.b64encode(text.encode()[-LOG_TAIL_BYTES:]).decode()

    def json(self) -> Any:
        return json.loads(self.payload) if self.payload else None


def modelled_duration_ms(wall_ms: float, cpu_ms: float, memory_mb: int) -> float:
    """Wall time with the CPU part stretched by Lambda's memory-proportional CPU share."""
    factor = max(1.0, FULL_VCPU_MB / memory_mb)
    return wall_ms + cpu_ms * (factor - 1.0)


def error_payload(exc: BaseException, request_id: str) -> dict[str, Any]:
    """What the Lambda runtime answers for ``exc`` raised by a handler (as reported if already reported)."""
    if isinstance(exc, RuntimeReportedError):
        return exc.payload
    # The Python runtime's shape for an unhandled exception.
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(_handler_frames(exc)),
    }


def print_unhandled(exc: BaseException) -> None:
    """The lines the Python runtime writes to the log for an unhandled exception."""
    print(f"[ERROR] {type(exc).__name__}: {exc}")
    print("Traceback (most recent call last):")
    print("".join(traceback.format_list(_handler_frames(exc))), end="")


def _handler_frames(exc: BaseException) -> list[traceback.FrameSummary]:
    # Drop the frame that called the handler, as the Lambda runtime's frames are not shown either.
    return traceback.extract_tb(exc.__traceback__)[1:]
