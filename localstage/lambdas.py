"""A Lambda emulator that runs the app's real handlers in this process.

moto stores functions but can only run them in Docker; this runs them in-process,
with what Lambda adds around a handler:

- a context (``function_name``, ``memory_limit_in_mb``, ``aws_request_id``,
  ``invoked_function_arn``, ``get_remaining_time_in_millis()``),
- the timeout: past it the invocation fails with ``Sandbox.Timedout``. Python
  cannot kill a thread, so the handler's thread runs on in the background
  (AWS would freeze and discard the environment);
- reserved concurrency: past it an invocation is throttled (``LambdaThrottledError``);
- execution environments: the first invocation of each is a cold start with
  ``Init Duration``; a timeout or a configuration change discards them;
- the START/END/REPORT log lines, the ``AWS/Lambda`` metrics and the log tail.

A function registered with an ``EnvironmentRuntime`` (code deployed through the Lambda API:
``localstage.runtime``) keeps all of the above, but each of its environments is a process of its
own: its init is measured, its CPU and memory are the process's, and a timeout kills it.

Memory/CPU model (labelled "modelled" everywhere it shows): Lambda gives a
function a CPU share proportional to its memory, one full vCPU at 1,769 MB.
The handler's CPU time on this machine (``time.thread_time``) is stretched by
``max(1, 1769 / memory)``, its waiting time (I/O) is not::

    modelled = wall + cpu * (max(1, 1769 / memory_mb) - 1)

``Duration``, ``Billed Duration`` and the ``Duration`` metric are modelled; the
REPORT line adds ``Measured Duration`` (wall clock) so the two can be compared.
``Max Memory Used`` is modelled as a Python runtime baseline plus the peak of
Python allocations during the invocation (``tracemalloc``; process-wide, so
concurrent invocations share one peak).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import tracemalloc
import uuid
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from localstage import output
from localstage.aws_limits import lambda_response_error
from localstage.faults import FaultInjector, FaultMode, FaultPlan, InjectedFault
from localstage.functions import FunctionSpec
from localstage.iam.principals import Acting, acting_as
from localstage.lambda_model import (
    RUNTIME_BASELINE_MB,
    ConfigSource,
    Environment,
    EnvironmentRuntime,
    EnvironmentScope,
    FunctionNotFoundError,
    InvocationResult,
    LambdaContext,
    LambdaThrottledError,
    LiveConfig,
    RuntimeReportedError,
    error_payload,
    modelled_duration_ms,
    print_unhandled,
    static_config,
)
from localstage.telemetry import TELEMETRY_BATCH_S, Telemetry
from localstage.threads import KeptThreads, counting_served_cpu, served_cpu_s
from localstage.xray import ServiceTracing, invocation_header

log = logging.getLogger("localstage.lambdas")
# Handlers run on kept threads (localstage/threads.py): one left behind by a timeout is simply not idle.
_HANDLERS = KeptThreads("lambda")


@dataclass
class _FunctionState:
    spec: FunctionSpec
    in_flight: int = 0
    idle: list[Environment] = field(default_factory=list)
    runtime: EnvironmentRuntime | None = None  # None: the handler runs on the emulator's thread


class LambdaEmulator:
    """Registered functions, invoked in-process with Lambda's semantics."""

    def __init__(
        self,
        telemetry: Telemetry | None = None,
        config_source: ConfigSource = static_config,
        init_duration_ms: float = 0.0,
        measure_memory: bool = True,
        faults: FaultPlan | None = None,
        tracing: ServiceTracing | None = None,
        principals: Mapping[str, Acting] | None = None,
        environment_scope: EnvironmentScope | None = None,
    ) -> None:
        # Batched off the invocation's thread, as Lambda delivers them (localstage/telemetry.py).
        self.telemetry = telemetry or Telemetry(batch_window_s=TELEMETRY_BATCH_S)
        self.tracing = tracing
        # The role session each function runs with (IAM enforced); without one, it acts as the stage.
        self.principals: Mapping[str, Acting] = principals or {}
        self.environment_scope = environment_scope
        self.faults = FaultInjector(faults or FaultPlan())
        self.config_source = config_source
        self.init_duration_ms = init_duration_ms
        self.measure_memory = measure_memory
        self._functions: dict[str, _FunctionState] = {}
        self._lock = threading.Lock()
        if measure_memory and not tracemalloc.is_tracing():
            tracemalloc.start()

    # -- registry -----------------------------------------------------------------------------

    def register(self, spec: FunctionSpec, runtime: EnvironmentRuntime | None = None) -> None:
        """``runtime``: where the function's environments run (default: the handler on a thread here)."""
        self._functions[spec.name] = _FunctionState(spec, runtime=runtime)
        self.telemetry.ensure_log_group(self.log_group(spec.name))

    def unregister(self, name: str) -> None:
        """Forget a deleted function (its runtime stops its environments itself)."""
        self._functions.pop(name, None)

    def __contains__(self, name: str) -> bool:
        return name in self._functions

    def spec(self, name: str) -> FunctionSpec:
        try:
            return self._functions[name].spec
        except KeyError:
            raise FunctionNotFoundError(f"Function not found: {name}") from None

    def config(self, name: str, qualifier: str | None = None) -> LiveConfig:
        """The function's configuration as it is right now (memory, timeout, async settings...)."""
        return self.config_source(self.spec(name), qualifier)

    @property
    def names(self) -> list[str]:
        return list(self._functions)

    @staticmethod
    def log_group(name: str) -> str:
        return f"/aws/lambda/{name}"

    # -- invoke -------------------------------------------------------------------------------

    def invoke(
        self,
        name: str,
        payload: Any = None,
        qualifier: str | None = None,
        request_id: str | None = None,
        trace_header: str | None = None,
    ) -> InvocationResult:
        """Run the function synchronously (``RequestResponse``).

        ``payload`` is bytes/str holding JSON, or any JSON-serialisable value.
        Raises ``LambdaThrottledError`` past the reserved concurrency; handler
        errors and timeouts come back as a result with ``function_error`` set.
        ``request_id`` is given by asynchronous retries, which keep the id of the
        original request as Lambda does; a new one is made otherwise.
        ``trace_header`` (``X-Amzn-Trace-Id``) is the caller's trace, which an actively traced
        function continues; without it, such a function starts a trace.
        ``InvocationType=Event`` is ``localstage.async_invoke``.
        """
        state = self._functions.get(name)
        if state is None:
            raise FunctionNotFoundError(f"Function not found: {name}")
        config = self.config_source(state.spec, qualifier)
        event = self.decode_payload(payload)
        env, concurrent = self._acquire(state, config)
        try:
            result = self._run(state, config, env, event, request_id or str(uuid.uuid4()), trace_header)
        finally:
            with self._lock:
                state.in_flight -= 1
        self._record(name, result, concurrent)
        return result

    @staticmethod
    def decode_payload(payload: Any) -> Any:
        """The event a handler receives: JSON text decoded, anything else as given, nothing as ``{}``."""
        if payload is None or payload == b"" or payload == "":
            return {}
        if isinstance(payload, bytes | bytearray | str):
            return json.loads(payload)
        return payload

    def _acquire(self, state: _FunctionState, config: LiveConfig) -> tuple[Environment, int]:
        key = (config.memory_mb, config.timeout_s, config.revision)
        reserved = config.reserved_concurrency
        env: Environment | None = None
        retired: list[Environment] = []
        with self._lock:
            throttled = reserved is not None and state.in_flight >= reserved
            if not throttled:
                state.in_flight += 1
                # A configuration change retires the old environments, as on AWS.
                retired = [e for e in state.idle if e.config_key != key]
                state.idle = [e for e in state.idle if e.config_key == key]
                env = state.idle.pop() if state.idle else None
            concurrent = state.in_flight
        for old in retired:
            self._retire(state, old)
        if throttled:
            self.telemetry.put_metrics(state.spec.name, [("Throttles", 1, "Count")])
            log.warning("%s throttled: reserved concurrency %s reached", state.spec.name, reserved)
            raise LambdaThrottledError(f"Rate Exceeded. (reserved concurrency {reserved} of {state.spec.name})")
        if env is None:
            stream = time.strftime("%Y/%m/%d/") + f"[{config.version}]{uuid.uuid4().hex}"
            env = Environment(stream=stream, config_key=key)
            # Lambda creates the stream with the function's role (logs:CreateLogStream on its own group).
            with acting_as(self.principals.get(state.spec.name)):
                self.telemetry.open_stream(self.log_group(state.spec.name), stream)
        return env, concurrent

    def _run(
        self,
        state: _FunctionState,
        config: LiveConfig,
        env: Environment,
        event: Any,
        request_id: str,
        trace_header: str | None = None,
    ) -> InvocationResult:
        spec = state.spec
        runtime = state.runtime
        # Lambda's Init phase is not part of the invocation's Duration or timeout.
        init_measured = runtime.init(spec, env, config) if runtime is not None and env.cold else None
        started = time.monotonic()
        context = LambdaContext(
            function_name=spec.name,
            function_version=config.version,
            invoked_function_arn=config.arn,
            memory_limit_in_mb=config.memory_mb,
            aws_request_id=request_id,
            log_group_name=self.log_group(spec.name),
            log_stream_name=env.stream,
            deadline=started + config.timeout_s,
        )
        outcome: dict[str, Any] = {}
        fault = self.faults.draw(spec.name, spec.resource_name)
        span = self.tracing.begin_lambda(trace_header) if self.tracing and config.active_tracing else None

        def target() -> None:
            cpu_start, served_start = time.thread_time(), served_cpu_s()
            principal = self.principals.get(spec.name)
            if runtime is not None:
                scope = runtime.scope(spec, env)
            else:
                scope = self.environment_scope(spec, env) if self.environment_scope else nullcontext()
            with (
                output.captured() as printed,
                invocation_header(span.header if span else None),
                acting_as(principal),
                scope,
                counting_served_cpu(),
            ):
                outcome["printed"] = printed
                try:
                    if fault == FaultMode.ERROR:
                        raise InjectedFault(f"fault injected into {spec.name} (LOCAL_FAULT_MODE=error)")
                    outcome["value"] = spec.handler(event, context)
                except RuntimeReportedError as exc:  # already logged by the function's runtime
                    outcome["error"] = exc
                except BaseException as exc:  # the runtime reports anything the handler raises
                    outcome["error"] = exc
                    print_unhandled(exc)
            # The embedded AWS's work for the handler's calls ran on this thread too: it is not the handler's.
            outcome["cpu_ms"] = (time.thread_time() - cpu_start - (served_cpu_s() - served_start)) * 1000

        if self.measure_memory:
            tracemalloc.reset_peak()
            mem_before = tracemalloc.get_traced_memory()[0]
        worker = _HANDLERS.submit(target, name=f"lambda-{spec.name}-{request_id[:8]}")
        finished = worker.wait(config.timeout_s)
        measured_ms = (time.monotonic() - started) * 1000
        peak_mb = 0.0
        if self.measure_memory:
            peak_mb = max(0, tracemalloc.get_traced_memory()[1] - mem_before) / 1_048_576
        max_memory = RUNTIME_BASELINE_MB + math.ceil(peak_mb)

        # An injected timeout comes after the handler finished: its side effects stand, its answer is lost.
        timed_out = not finished or fault == FaultMode.TIMEOUT
        usage = runtime.usage(env) if runtime is not None and not timed_out else None
        if usage is not None:  # measured in the environment's own process
            outcome["cpu_ms"], max_memory = usage.cpu_ms, usage.max_memory_mb
        duration = measured_ms
        if not timed_out:
            duration = modelled_duration_ms(measured_ms, outcome.get("cpu_ms", 0.0), config.memory_mb)
            timed_out = duration > config.timeout_s * 1000
        out_of_memory = not timed_out and max_memory > config.memory_mb
        lines = [f"START RequestId: {request_id} Version: {config.version}"]
        lines += "".join(outcome.get("printed", [])).splitlines()
        function_error: str | None = None
        status = ""
        if timed_out:
            duration = config.timeout_s * 1000
            message = f"RequestId: {request_id} Error: Task timed out after {config.timeout_s:.2f} seconds"
            payload: Any = {"errorType": "Sandbox.Timedout", "errorMessage": message}
            lines.append(
                f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {request_id} {message.split('Error: ')[1]}"
            )
            function_error, status = "Unhandled", "\tStatus: timeout"
            log.warning("%s timed out after %.2f s (request %s)", spec.name, config.timeout_s, request_id)
        elif out_of_memory:
            payload = {"errorType": "Runtime.OutOfMemory", "errorMessage": "Runtime exited with error: signal: killed"}
            function_error, status = "Unhandled", "\tStatus: error\tError Type: Runtime.OutOfMemory"
        elif "error" in outcome:
            payload = error_payload(outcome["error"], request_id)
            function_error = "Unhandled"
            log.warning("%s raised %s: %s", spec.name, payload["errorType"], payload["errorMessage"])
        else:
            payload = outcome.get("value")
        try:
            # bytes are a response as the runtime posted it (awslambdaric returns a handler's bytes as they are)
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        except (TypeError, ValueError) as exc:
            function_error = "Unhandled"
            body = json.dumps(
                {"errorType": "Runtime.MarshalError", "errorMessage": f"Unable to marshal response: {exc}"}
            ).encode()
        oversized = lambda_response_error(body)
        if oversized is not None:  # Lambda drops an answer over its quota and reports this instead
            function_error, body = "Unhandled", json.dumps(oversized).encode()

        if span is not None and self.tracing is not None:
            self.tracing.end_lambda(span, spec.name, request_id, failed=function_error is not None)
        init_ms = (self.init_duration_ms if init_measured is None else init_measured) if env.cold else None
        env.cold = False
        billed = math.ceil(duration)
        lines.append(f"END RequestId: {request_id}")
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tBilled Duration: {billed} ms"
            f"\tMemory Size: {config.memory_mb} MB\tMax Memory Used: {min(max_memory, config.memory_mb)} MB"
        )
        if init_ms is not None:
            report += f"\tInit Duration: {init_ms:.2f} ms"
        report += f"{status}\tMeasured Duration: {measured_ms:.2f} ms"
        lines.append(report)
        lost = isinstance(outcome.get("error"), RuntimeReportedError) and outcome["error"].environment_lost
        if timed_out or out_of_memory or lost:  # Lambda discards the environment
            self._retire(state, env)
        else:
            with self._lock:
                state.idle.append(env)
        # Written with the function's role, as Lambda does: without logs:PutLogEvents on its group
        # the lines (and the EMF metrics in them) are lost, on AWS and here.
        # CloudWatch Logs then extracts the EMF metrics from what reached the group, as itself.
        with acting_as(self.principals.get(spec.name)):
            self.telemetry.write_log(self.log_group(spec.name), env.stream, lines)
        return InvocationResult(
            request_id=request_id,
            payload=body,
            function_error=function_error,
            log_lines=lines,
            duration_ms=duration,
            measured_ms=measured_ms,
            billed_ms=billed,
            max_memory_mb=min(max_memory, config.memory_mb),
            init_ms=init_ms,
            executed_version=config.version,
        )

    @staticmethod
    def _retire(state: _FunctionState, env: Environment) -> None:
        if state.runtime is not None:
            state.runtime.retire(state.spec, env)

    def _record(self, name: str, result: InvocationResult, concurrent: int) -> None:
        self.telemetry.put_metrics(
            name,
            [
                ("Invocations", 1, "Count"),
                ("Errors", 1 if result.function_error else 0, "Count"),
                ("Duration", result.duration_ms, "Milliseconds"),
                ("ConcurrentExecutions", concurrent, "Count"),
            ],
        )
