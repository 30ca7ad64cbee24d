"""Helpers for tests that need the embedded AWS and the emulator without touching ``os.environ``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from chalice import Chalice

from localstage.event_sources import put_rules, subscribe_sns_handlers
from localstage.eventbridge import install_events_hook
from localstage.functions import FunctionSpec, discover_functions
from localstage.lambdas import LambdaEmulator
from localstage.moto_lambda import (
    async_invocations,
    ensure_role,
    moto_config,
    register_functions,
    uninstall_invoke_hook,
)
from localstage.patches import Patches
from localstage.server import REGION, EmbeddedAws
from localstage.sns_delivery import install_sns_hook
from localstage.telemetry import Telemetry

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Asynchronous retries in tests: 0.2 s then 0.4 s instead of AWS's 1 and 2 minutes.
TEST_ASYNC_RETRY_DELAYS_S = (0.2, 0.4)


@dataclass
class Harness:
    aws: EmbeddedAws
    emulator: LambdaEmulator
    functions: list[FunctionSpec]

    def client(self, service: str) -> Any:
        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        ).client(service, endpoint_url=self.aws.endpoint)

    def serve_through(self, middleware: Callable[[Wsgi], Wsgi]) -> Wsgi:
        """Put ``middleware(app)`` in front of the embedded AWS's WSGI app (outermost), as
        ``EmbeddedAws.start`` wires its own middlewares; returns the middleware. Gone when the server stops."""
        return self.aws.serve_through(middleware)


@contextmanager
def emulated(app: Chalice, stage: str = "local", config: dict[str, Any] | None = None) -> Iterator[Harness]:
    """A moto server on a free port with ``app``'s functions registered and invocable.

    Event delivery is wired as the stage wires it: SNS subscriptions and
    EventBridge rules for the app's handlers, delivered asynchronously (short
    retry delays). The scheduler and the Step Functions watcher are not
    started; tests drive them (``Scheduler.tick``, ``sfn_events.install_status_events``).
    """
    aws = EmbeddedAws(port=0).start(environ={})
    emulator = LambdaEmulator(config_source=moto_config)
    harness = Harness(aws, emulator, discover_functions(app, stage, config))
    emulator.telemetry = Telemetry(harness.client("logs"), harness.client("cloudwatch"))
    patches = Patches()
    try:
        role = ensure_role(harness.client("iam"), f"{app.app_name}-{stage}")
        register_functions(harness.emulator, harness.functions, harness.client("lambda"), role)
        async_invocations(emulator).delays = TEST_ASYNC_RETRY_DELAYS_S
        install_sns_hook(patches)
        install_events_hook(patches)
        subscribe_sns_handlers(harness.functions, harness.client("sns"), harness.client("lambda"))
        put_rules(harness.functions, harness.client("events"), harness.client("lambda"))
        yield harness
    finally:
        try:
            patches.undo()
            uninstall_invoke_hook(harness.emulator)
        finally:
            aws.stop()
