"""The embedded AWS as a CloudFormation target, with the local stage's fills installed: what the
CloudFormation tests deploy to (test_localstage_cloudformation.py, test_localstage_cloudformation_dev.py).

Each test module opens its own (``embedded_aws``, module-scoped there): a moto server in a thread starts in
well under a second, and the expensive part, deploying the dev stage, happens in one module only.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

import scripts.deploy as deploy
from infra.template import stage_template
from localstage.cloudformation import install
from localstage.patches import Patches
from localstage.server import REGION, EmbeddedAws
from scripts.deploy import deploy_resources, stack_name, stack_outputs

APP = "ecommerce-backend"
Json = dict[str, Any]


@dataclass
class Embedded:
    aws: EmbeddedAws
    session: boto3.session.Session

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.aws.endpoint)

    def deploy(self, stage: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """``deploy_resources`` as ``make deploy`` runs it: the endpoint only from ``AWS_ENDPOINT_URL``."""
        monkeypatch.setenv("AWS_ENDPOINT_URL", self.aws.endpoint)
        deploy_resources(stage, self.session)

    def outputs(self, stage: str) -> dict[str, str]:
        return stack_outputs(stack_name(stage), EndpointSession(self))

    def stack(self, stage_or_name: str) -> Json:
        """A stage's resource stack (``dev``), or a stack by its own name (``needs-named-iam``)."""
        name = stack_name(stage_or_name) if "-" not in stage_or_name else stage_or_name
        return dict(self.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0])

    def events(self, stage: str) -> list[Json]:
        return list(self.client("cloudformation").describe_stack_events(StackName=stack_name(stage))["StackEvents"])


class EndpointSession:
    """A session whose clients reach the embedded AWS, for scripts.deploy functions that take a session."""

    def __init__(self, embedded: Embedded) -> None:
        self._embedded = embedded
        self.region_name = REGION

    def client(self, service: str) -> Any:
        return self._embedded.client(service)


@contextmanager
def embedded_aws() -> Iterator[Embedded]:
    """A fresh embedded AWS with the fills installed; every patch undone afterwards."""
    aws = EmbeddedAws(port=0).start(environ={})
    patches = Patches()
    install(patches)
    # moto's backends are per process: start from an empty account whatever ran before in this worker.
    urllib.request.urlopen(urllib.request.Request(f"{aws.endpoint}/moto-api/reset", method="POST"))
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    try:
        yield Embedded(aws, session)
    finally:
        patches.undo()
        aws.stop()


def with_template(monkeypatch: pytest.MonkeyPatch, change: Callable[[Json], Json]) -> None:
    """deploy_resources deploys ``change(stage_template(stage))`` instead of the stage template."""
    monkeypatch.setattr(deploy, "stage_template", lambda stage, **kw: change(stage_template(stage, **kw)))


def small(resources: Json) -> Callable[[Json], Json]:
    """A template of a few resources in place of the stage's (deploy_resources needs an output)."""
    return lambda _: {"Resources": resources, "Outputs": {"MARKER": {"Value": "present"}}}
