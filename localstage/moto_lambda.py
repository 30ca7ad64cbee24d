"""Plugs the Lambda emulator into moto's Lambda service.

Functions are created through the ordinary Lambda API (``create_function`` with
a placeholder zip), so list_functions, get_function_configuration,
update_function_configuration, put_function_concurrency, publish_version and
aliases are moto's own. Only running code is ours: moto routes every invoke,
whether it arrives as ``lambda:Invoke`` over HTTP, from an SNS subscription or
from a Step Functions ``Task`` (moto's interpreter calls Lambda over HTTP at
``localhost:$MOTO_PORT``), through ``LambdaFunction.invoke``, which would start a
Docker container. ``install_invoke_hook`` replaces that method once: functions
the emulator owns run in-process, any other falls through to moto.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import zipfile
from typing import Any

from moto.awslambda.models import LambdaFunction, lambda_backends
from moto.core.exceptions import JsonRESTError

from localstage.functions import FunctionSpec
from localstage.lambdas import LambdaEmulator, LambdaThrottledError, LiveConfig
from localstage.server import ACCOUNT_ID, REGION

log = logging.getLogger("localstage.moto_lambda")

RUNTIME = "python3.11"
_original_invoke = LambdaFunction.invoke
_emulators: list[LambdaEmulator] = []


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
    )


def _find_emulator(name: str) -> LambdaEmulator | None:
    for emulator in reversed(_emulators):
        if name in emulator:
            return emulator
    return None


def _invoke(fn: LambdaFunction, body: Any, request_headers: Any, response_headers: Any) -> str | bytes:
    emulator = _find_emulator(fn.function_name)
    if emulator is None:
        return _original_invoke(fn, body, request_headers, response_headers)
    qualifier = None if fn.version == "$LATEST" else str(fn.version)
    headers = request_headers or {}
    invocation_type = headers.get("x-amz-invocation-type") or headers.get("X-Amz-Invocation-Type") or "RequestResponse"
    if invocation_type == "DryRun":
        return b""
    if invocation_type == "Event":
        emulator.invoke_async(fn.function_name, body, qualifier)
        return b""
    try:
        result = emulator.invoke(fn.function_name, body, qualifier)
    except LambdaThrottledError as exc:
        raise TooManyRequestsException(str(exc)) from exc
    if result.function_error:
        response_headers["x-amz-function-error"] = result.function_error
    response_headers["x-amz-log-result"] = result.log_tail
    response_headers["x-amz-executed-version"] = result.executed_version
    return result.payload


def install_invoke_hook(emulator: LambdaEmulator) -> None:
    """Route invokes of the emulator's functions to it (idempotent per emulator)."""
    if emulator not in _emulators:
        _emulators.append(emulator)
    LambdaFunction.invoke = _invoke  # type: ignore[method-assign,assignment]


def uninstall_invoke_hook(emulator: LambdaEmulator) -> None:
    if emulator in _emulators:
        _emulators.remove(emulator)
    if not _emulators:
        LambdaFunction.invoke = _original_invoke  # type: ignore[method-assign]


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


def register_functions(emulator: LambdaEmulator, specs: list[FunctionSpec], lambda_client: Any, role_arn: str) -> None:
    """Create (or update) each function in the Lambda API and in the emulator."""
    code = _placeholder_zip()
    for spec in specs:
        emulator.register(spec)
        settings = {
            "Role": role_arn,
            "Handler": spec.handler_string,
            "Runtime": RUNTIME,
            "MemorySize": spec.memory_mb,
            "Timeout": spec.timeout_s,
            "Environment": {"Variables": spec.environment},
        }
        try:
            lambda_client.create_function(FunctionName=spec.name, Code={"ZipFile": code}, **settings)
        except lambda_client.exceptions.ResourceConflictException:
            lambda_client.update_function_configuration(FunctionName=spec.name, **settings)
    install_invoke_hook(emulator)


def decode_log_tail(encoded: str) -> str:
    return base64.b64decode(encoded).decode()
