"""What the ``make deploy`` steps share: their error, the stage's names, and ``chalice deploy``'s state.

``scripts/deploy.py`` (the steps) and ``scripts/deploy_finish.py`` (step 4) both read these; so does
``scripts/compare_stage.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from infra.package import LOG_RETENTION_DAYS, ROOT
from infra.policies import function_name
from infra.template import APP

Json = dict[str, Any]

CHALICE_STATE_SCHEMA = "2.0"  # what chalice/deploy/deployer.py writes (chalice 1.x)


class DeployError(Exception):
    """A deploy step cannot go on: something it needs is missing. The message names it and what to run."""


def stack_name(stage: str) -> str:
    return f"{APP}-{stage}-resources"


def deploy_project(stage: str) -> Path:
    """The project ``prepare`` writes and ``chalice deploy`` runs in (its state lives there too)."""
    return ROOT / "build" / stage / "deploy"


def api_log_group(stage: str) -> str:
    """Where the API handler logs: Lambda writes to ``/aws/lambda/<function name>``, here ``<app>-<stage>``."""
    return f"/aws/lambda/{function_name('api_handler', stage)}"


def chalice_api_log_group(stage: str) -> str:
    """The group ``chalice deploy`` makes for the API handler: appgraph.py names it after the Chalice
    name (``api_handler``), not after the function it deploys, so nothing ever writes to it."""
    return f"/aws/lambda/{APP}-{stage}-api_handler"


def ensure_api_log_group(stage: str, session: boto3.session.Session) -> None:
    """Create the API handler's log group with the package path's retention; a second run only re-sets it.

    No function role may create log groups (``infra.policies`` grants writes to the function's own
    group only), so without this group the API's logs and its EMF business metrics are dropped.
    """
    logs = session.client("logs")
    name = api_log_group(stage)
    if find_log_group(logs, name) is None:
        logs.create_log_group(logGroupName=name)
    logs.put_retention_policy(logGroupName=name, retentionInDays=LOG_RETENTION_DAYS)


def find_log_group(logs: Any, name: str) -> Json | None:
    pages = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name)
    return next((g for page in pages for g in page["logGroups"] if g["logGroupName"] == name), None)


@dataclass(frozen=True)
class DeployedState:
    """What ``chalice deploy`` recorded it made, in ``<project>/.chalice/deployed/<stage>.json``.

    chalice/deploy/deployer.py writes ``{"schema_version": "2.0", "resources": [...]}``, one entry per
    resource with its ``name`` and ``resource_type`` (planner.py): ``rest_api`` (``rest_api_id``),
    ``<function>-sqs-event-source`` (``queue``, ``queue_arn``, ``event_uuid``), ``<function>-log-group``.
    Ids from here, not names, because two stages in one account share the REST API's name.
    """

    path: Path
    resources: dict[str, Json]

    @classmethod
    def load(cls, project: Path, stage: str) -> DeployedState:
        path = project / ".chalice" / "deployed" / f"{stage}.json"
        if not path.is_file():
            raise DeployError(f"no chalice deploy state {path}: run `chalice deploy --stage {stage}` in {project}")
        try:
            recorded = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise DeployError(f"chalice deploy state {path} is not JSON: {exc}") from exc
        if recorded.get("schema_version") != CHALICE_STATE_SCHEMA:
            raise DeployError(
                f"chalice deploy state {path} has schema {recorded.get('schema_version')!r}, "
                f"this script reads {CHALICE_STATE_SCHEMA!r}"
            )
        return cls(path, {r["name"]: r for r in recorded.get("resources", [])})

    def resource(self, name: str, resource_type: str, what: str) -> Json:
        found = self.resources.get(name)
        if found is None or found.get("resource_type") != resource_type:
            raise DeployError(
                f"chalice deploy state {self.path} records no {what} ({resource_type} {name!r}): "
                "run chalice deploy for this stage"
            )
        return found
