"""Which Lambda functions ``chalice deploy`` would create for an app, and their handlers.

Naming follows ``chalice.deploy.appgraph``: the API handler is ``<app>-<stage>``
(kept for back-compatibility with Chalice's old deployer), every other handler
is ``<app>-<stage>-<handler name>``. Memory and timeout follow chalice's config
precedence (function, then stage, then top level), defaulting like chalice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from chalice.app import (
    Chalice,
    CloudWatchEventConfig,
    ScheduledEventConfig,
    SNSEventConfig,
    SQSEventConfig,
)

Handler = Callable[[Any, Any], Any]

DEFAULT_MEMORY_MB = 128
DEFAULT_TIMEOUT_S = 60
API_HANDLER = "api_handler"


@dataclass(frozen=True)
class FunctionSpec:
    """One function: its deployed name, the callable Lambda runs, and what triggers it."""

    name: str
    resource_name: str
    handler: Handler
    handler_string: str
    memory_mb: int = DEFAULT_MEMORY_MB
    timeout_s: int = DEFAULT_TIMEOUT_S
    environment: dict[str, str] = field(default_factory=dict)
    event_source: object | None = None
    active_tracing: bool = False  # the stage's (or function's) "xray" setting in .chalice/config.json

    @property
    def sqs(self) -> SQSEventConfig | None:
        return self.event_source if isinstance(self.event_source, SQSEventConfig) else None

    @property
    def sns(self) -> SNSEventConfig | None:
        return self.event_source if isinstance(self.event_source, SNSEventConfig) else None

    @property
    def schedule(self) -> ScheduledEventConfig | None:
        return self.event_source if isinstance(self.event_source, ScheduledEventConfig) else None

    @property
    def cw_event(self) -> CloudWatchEventConfig | None:
        return self.event_source if isinstance(self.event_source, CloudWatchEventConfig) else None


def load_chalice_config(project_dir: Path) -> dict[str, Any]:
    path = project_dir / ".chalice" / "config.json"
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _setting(config: dict[str, Any], stage: str, resource: str, key: str, default: Any) -> Any:
    stage_cfg = config.get("stages", {}).get(stage, {})
    function_cfg = stage_cfg.get("lambda_functions", {}).get(resource, {})
    for scope in (function_cfg, stage_cfg, config):
        if key in scope:
            return scope[key]
    return default


def _environment(config: dict[str, Any], stage: str, resource: str) -> dict[str, str]:
    stage_cfg = config.get("stages", {}).get(stage, {})
    env: dict[str, str] = {}
    for scope in (config, stage_cfg, stage_cfg.get("lambda_functions", {}).get(resource, {})):
        env.update(scope.get("environment_variables", {}))
    return env


def discover_functions(
    app: Chalice, stage: str, config: dict[str, Any] | None = None, app_name: str | None = None
) -> list[FunctionSpec]:
    """The app's functions as ``chalice deploy`` names them, API handler first."""
    config = config or {}
    prefix = f"{app_name or config.get('app_name') or app.app_name}-{stage}"

    def spec(name: str, resource: str, handler: Handler, handler_string: str, source: object = None) -> FunctionSpec:
        return FunctionSpec(
            name=name,
            resource_name=resource,
            handler=handler,
            handler_string=handler_string,
            memory_mb=int(_setting(config, stage, resource, "lambda_memory_size", DEFAULT_MEMORY_MB)),
            timeout_s=int(_setting(config, stage, resource, "lambda_timeout", DEFAULT_TIMEOUT_S)),
            environment=_environment(config, stage, resource),
            event_source=source,
            active_tracing=bool(_setting(config, stage, resource, "xray", False)),
        )

    found: list[FunctionSpec] = []
    if app.routes:
        found.append(spec(prefix, API_HANDLER, app, "app.app"))
    for auth in app.builtin_auth_handlers:
        found.append(spec(f"{prefix}-{auth.name}", auth.name, app.handler_map[auth.name], auth.handler_string))
    for pure in app.pure_lambda_functions:
        found.append(spec(f"{prefix}-{pure.name}", pure.name, app.handler_map[pure.name], pure.handler_string))
    for source in app.event_sources:
        found.append(
            spec(f"{prefix}-{source.name}", source.name, app.handler_map[source.name], source.handler_string, source)
        )
    return found
