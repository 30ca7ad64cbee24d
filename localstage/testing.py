"""Helpers for tests that need the embedded AWS and the emulator without touching ``os.environ``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from chalice import Chalice

from localstage.functions import FunctionSpec, discover_functions
from localstage.lambdas import LambdaEmulator
from localstage.moto_lambda import ensure_role, moto_config, register_functions, uninstall_invoke_hook
from localstage.server import REGION, EmbeddedAws
from localstage.telemetry import Telemetry


@dataclass
class Harness:
    aws: EmbeddedAws
    emulator: LambdaEmulator
    functions: list[FunctionSpec]

    def client(self, service: str) -> Any:
        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        ).client(service, endpoint_url=self.aws.endpoint)


@contextmanager
def emulated(app: Chalice, stage: str = "local", config: dict[str, Any] | None = None) -> Iterator[Harness]:
    """A moto server on a free port with ``app``'s functions registered and invocable."""
    aws = EmbeddedAws(port=0).start(environ={})
    emulator = LambdaEmulator(config_source=moto_config)
    harness = Harness(aws, emulator, discover_functions(app, stage, config))
    emulator.telemetry = Telemetry(harness.client("logs"), harness.client("cloudwatch"))
    try:
        role = ensure_role(harness.client("iam"), f"{app.app_name}-{stage}")
        register_functions(harness.emulator, harness.functions, harness.client("lambda"), role)
        yield harness
    finally:
        uninstall_invoke_hook(harness.emulator)
        aws.stop()
