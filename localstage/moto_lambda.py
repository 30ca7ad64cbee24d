"""Plugs the Lambda emulator into moto's Lambda service.

Functions are created through the ordinary Lambda API (``create_function`` with
a placeholder zip), so list_functions, get_function_configuration,
update_function_configuration, put_function_concurrency, publish_version and
aliases are moto's own. Only running code is ours: moto routes every invoke,
whether it arrives as ``lambda:Invoke`` over HTTP, from an SNS subscription or
from a Step Functions ``Task`` (moto's interpreter calls Lambda over HTTP at
``localhost:$MOTO_PORT``), through ``LambdaFunction.invoke``, which would start a
Docker container. ``install_invoke_hook`` wraps that method, through the checked
layer (``localstage.patches``), while at least one emulator is registered: functions
the emulator owns run in-process, any other falls through to moto.
``InvocationType=Event`` goes to the emulator's asynchronous queue
(``localstage.async_invoke``), whose on-failure records ``MotoDestinations``
puts straight into moto's SQS, SNS, Lambda or EventBridge backends. (SNS and
EventBridge deliveries to the stage's functions are hooked earlier, in
``sns_delivery`` and ``eventbridge``, to get AWS's event shapes.)
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import threading
import zipfile
from collections.abc import Callable, Mapping
from typing import Any

from moto.awslambda.models import LambdaFunction, lambda_backends
from moto.core.exceptions import JsonRESTError

from localstage.async_invoke import AsyncInvocations
from localstage.functions import FunctionSpec
from localstage.iam import enforcement
from localstage.iam.actions import Target
from localstage.lambda_model import AsyncConfig, LambdaThrottledError, LiveConfig
from localstage.lambda_processes import WorkerProcesses
from localstage.lambdas import LambdaEmulator
from localstage.patches import Patches
from localstage.server import ACCOUNT_ID, REGION
from localstage.xray import HEADER

log = logging.getLogger("localstage.moto_lambda")

RUNTIME = "python3.11"
_emulators: list[LambdaEmulator] = []
_hook = Patches()  # LambdaFunction.invoke, wrapped while any emulator is registered
_hook_lock = threading.Lock()
_async: dict[int, AsyncInvocations] = {}  # id(emulator) -> its event queue
# Asked, in order, about a function no emulator owns yet; one may register it and return its emulator
# (functions created through the Lambda API with real code: localstage.runtime).
Claimant = Callable[[str], LambdaEmulator | None]
_claimants: list[Claimant] = []


class TooManyRequestsException(JsonRESTError):
    """What the Lambda API answers when reserved concurrency is exhausted."""

    code = 429

    def __init__(self, message: str) -> None:
        super().__init__("TooManyRequestsException", message)
        self.description = json.dumps(
            {"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded", "Type": "User", "message": message}
        )


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "Runs in-process in the local stage (localstage.lambdas).\n")
    return buffer.getvalue()


def moto_config(spec: FunctionSpec, qualifier: str | None) -> LiveConfig:
    """The function's configuration as the Lambda API holds it right now."""
    backend = lambda_backends[ACCOUNT_ID][REGION]
    fn = backend.get_function(spec.name, qualifier)
    latest = backend.get_function(spec.name)
    reserved = latest.reserved_concurrency
    return LiveConfig(
        arn=fn.function_arn if qualifier is None else f"{latest.function_arn}:{qualifier}",
        memory_mb=int(fn.memory_size),
        timeout_s=float(fn.timeout),
        reserved_concurrency=None if reserved is None else int(reserved),
        version=str(fn.version),
        asynchronous=_async_config(latest),
        active_tracing=(latest.tracing_config or {}).get("Mode") == "Active",
        revision=revision(fn),
    )


def revision(fn: LambdaFunction) -> str:
    """What an execution environment is built from: a change (new code, handler, role, variables) retires it."""
    built_from = [fn.code_sha_256, fn.handler, fn.role, fn.run_time, fn.environment_vars, fn.layers]
    return hashlib.sha256(json.dumps(built_from, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _async_config(fn: LambdaFunction) -> AsyncConfig:
    # moto appends on every Put/UpdateFunctionEventInvokeConfig; the last one is the current one.
    if not fn.event_invoke_config:
        return AsyncConfig()
    config = fn.event_invoke_config[-1].config
    destinations = config.get("DestinationConfig") or {}
    return AsyncConfig(
        max_retries=int(config.get("MaximumRetryAttempts", 2)),
        max_event_age_s=int(config.get("MaximumEventAgeInSeconds", 21_600)),
        on_success=(destinations.get("OnSuccess") or {}).get("Destination") or None,
        on_failure=(destinations.get("OnFailure") or {}).get("Destination") or None,
    )


class DestinationRefusedError(Exception):
    """IAM refuses the function's role the call that delivers its invocation record."""


_DESTINATION_ACTIONS = {
    "sqs": "sqs:SendMessage",
    "sns": "sns:Publish",
    "lambda": "lambda:InvokeFunction",
    "events": "events:PutEvents",
}


class MotoDestinations:
    """Sends invocation records into the embedded AWS's own backends, as Lambda's service would."""

    def send(self, arn: str, record: dict[str, Any], success: bool) -> None:
        parts = arn.split(":")
        service, region, account, resource = parts[2], parts[3], parts[4], ":".join(parts[5:])
        self._authorize(service, arn, record)
        body = json.dumps(record)
        if service == "sqs":
            from moto.sqs.models import sqs_backends

            sqs_backends[account][region].send_message(resource, body)
        elif service == "sns":
            from moto.sns.models import sns_backends

            sns_backends[account][region].get_topic(arn).publish(body)
        elif service == "lambda":
            target = find_function(resource.split(":")[1])
            if target is None:
                raise LookupError(f"destination function {arn} is not one of the stage's functions")
            target[1].submit(resource.split(":")[1], record)
        elif service == "events":
            from moto.events.models import events_backends

            outcome = "Success" if success else "Failure"
            events_backends[account][region].put_events(
                [
                    {
                        "Source": "lambda",
                        "DetailType": f"Lambda Function Invocation Result - {outcome}",
                        "Detail": body,
                        "EventBusName": arn,
                        "Resources": [record["requestContext"]["functionArn"]],
                    }
                ]
            )
        else:
            raise ValueError(f"unsupported destination {arn}")

    @staticmethod
    def _authorize(service: str, arn: str, record: dict[str, Any]) -> None:
        """Lambda delivers a record with the function's execution role (AWS: ``sqs:SendMessage`` etc.)."""
        authorizer = enforcement.active()
        action = _DESTINATION_ACTIONS.get(service)
        if authorizer is None or action is None:
            return
        function_arn = str(record["requestContext"]["functionArn"])
        name, _ = function_name_from_arn(function_arn)
        role = lambda_backends[function_arn.split(":")[4]][function_arn.split(":")[3]].get_function(name).role
        decision = authorizer.decide_role(role, name, Target(action, arn))
        if not decision.allowed:
            raise DestinationRefusedError(f"{name} may not deliver to {arn}: {decision.reason}")


def _find_emulator(name: str) -> LambdaEmulator | None:
    for emulator in reversed(_emulators):
        if name in emulator:
            return emulator
    for claim in list(_claimants):
        claimed = claim(name)
        if claimed is not None:
            return claimed
    return None


def add_claimant(claim: Claimant) -> None:
    """Let ``claim`` take functions no emulator owns, on first sight (invoke, SNS, EventBridge, destinations)."""
    if claim not in _claimants:
        _claimants.append(claim)


def remove_claimant(claim: Claimant) -> None:
    if claim in _claimants:
        _claimants.remove(claim)


def function_name_from_arn(arn_or_name: str) -> tuple[str, str | None]:
    """``(name, qualifier)`` from a function ARN (qualified or not) or a plain name."""
    if not arn_or_name.startswith("arn:"):
        return arn_or_name, None
    parts = arn_or_name.split(":")
    return parts[6], parts[7] if len(parts) > 7 else None


def find_function(name: str) -> tuple[LambdaEmulator, AsyncInvocations] | None:
    """The emulator that owns ``name`` and its asynchronous event queue, if any does.

    Event sources (SNS, EventBridge, schedules) use this to hand events to
    Lambda's asynchronous path; a function no emulator owns is moto's.
    """
    emulator = _find_emulator(name)
    if emulator is None:
        return None
    return emulator, async_invocations(emulator)


def async_invocations(emulator: LambdaEmulator) -> AsyncInvocations:
    """The emulator's event queue (created on first use, delivering to the embedded AWS)."""
    if id(emulator) not in _async:
        _async[id(emulator)] = AsyncInvocations(emulator, MotoDestinations())
    return _async[id(emulator)]


def _invoking(original: Callable[..., Any]) -> Callable[..., Any]:
    def invoke(fn: LambdaFunction, body: Any, request_headers: Any, response_headers: Any) -> str | bytes:
        emulator = _find_emulator(fn.function_name)
        if emulator is None:
            return original(fn, body, request_headers, response_headers)
        return _invoke(emulator, fn, body, request_headers, response_headers)

    return invoke


def _invoke(
    emulator: LambdaEmulator, fn: LambdaFunction, body: Any, request_headers: Any, response_headers: Any
) -> str | bytes:
    qualifier = None if fn.version == "$LATEST" else str(fn.version)
    headers = request_headers or {}
    invocation_type = headers.get("x-amz-invocation-type") or headers.get("X-Amz-Invocation-Type") or "RequestResponse"
    if invocation_type == "DryRun":
        return b""
    trace_header = headers.get(HEADER) or headers.get(HEADER.lower())
    if invocation_type == "Event":
        async_invocations(emulator).submit(fn.function_name, body, qualifier, trace_header)
        return b""
    try:
        result = emulator.invoke(fn.function_name, body, qualifier, trace_header=trace_header)
    except LambdaThrottledError as exc:
        raise TooManyRequestsException(str(exc)) from exc
    if result.function_error:
        response_headers["x-amz-function-error"] = result.function_error
    response_headers["x-amz-log-result"] = result.log_tail
    response_headers["x-amz-executed-version"] = result.executed_version
    return result.payload


def install_invoke_hook(emulator: LambdaEmulator) -> None:
    """Route invokes of the emulator's functions to it (idempotent per emulator)."""
    with _hook_lock:
        if emulator not in _emulators:
            _emulators.append(emulator)
        if not _hook.active:
            _hook.wrap("moto", LambdaFunction, "invoke", _invoking)


def uninstall_invoke_hook(emulator: LambdaEmulator) -> None:
    """Forget the emulator and stop its event queue; the last one out restores moto's invoke."""
    with _hook_lock:
        if emulator in _emulators:
            _emulators.remove(emulator)
        queue = _async.pop(id(emulator), None)
        if not _emulators:
            _hook.undo()
    if queue is not None:
        queue.stop()


def detach_sqs_trigger(patches: Patches, queue_arn: str, function_arn: str | None = None) -> None:
    """Stop moto invoking ``function_arn`` (default: every function) inside ``SendMessage``; a poller delivers.

    moto runs an SQS mapping synchronously in the sender's request (no batching window, no
    visibility semantics, moto's own event); the mapping stays listed in the Lambda API. The queue's
    ``lambda_event_source_mappings`` is replaced through ``patches``, so stopping the stage puts it back.
    """
    from moto.sqs.models import sqs_backends

    _, _, _, region, account, _ = queue_arn.split(":")
    for queue in list(sqs_backends[account][region].queues.values()):
        if queue.queue_arn == queue_arn:
            mappings = queue.lambda_event_source_mappings
            kept = {arn: mapping for arn, mapping in mappings.items() if function_arn not in (None, arn)}
            if len(kept) < len(mappings):  # only a change: callers detach on every refresh
                patches.set("moto", queue, "lambda_event_source_mappings", kept)


def ensure_role(iam: Any, name: str) -> str:
    """The execution role ``chalice deploy`` creates by default (``<app>-<stage>``); moto checks roles exist."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])


def register_functions(
    emulator: LambdaEmulator,
    specs: list[FunctionSpec],
    lambda_client: Any,
    role_arn: str | Mapping[str, str],
    processes: WorkerProcesses | None = None,
) -> None:
    """Create (or update) each function in the Lambda API and in the emulator.

    ``role_arn``: one role for every function, or each function's own (by deployed name).
    ``processes``: run their environments as worker processes (``localstage.lambda_processes``).
    """
    code = _placeholder_zip()
    for spec in specs:
        if processes is None:
            emulator.register(spec)
        else:
            emulator.register(processes.wrap(spec), processes)
        settings = {
            "Role": role_arn if isinstance(role_arn, str) else role_arn[spec.name],
            "Handler": spec.handler_string,
            "Runtime": RUNTIME,
            "MemorySize": spec.memory_mb,
            "Timeout": spec.timeout_s,
            "Environment": {"Variables": spec.environment},
            "TracingConfig": {"Mode": "Active" if spec.active_tracing else "PassThrough"},
        }
        try:
            lambda_client.create_function(FunctionName=spec.name, Code={"ZipFile": code}, **settings)
        except lambda_client.exceptions.ResourceConflictException:
            lambda_client.update_function_configuration(FunctionName=spec.name, **settings)
    install_invoke_hook(emulator)


def decode_log_tail(encoded: str) -> str:
    return base64.b64decode(encoded).decode()
