"""The stage's own template provisioned in moto, in process: what the AWS adapter tests run against.

Shared by test_aws_adapters.py (identity, signing keys) and test_aws_adapters_dispatch.py (the order's
hand-offs, events, uploads); each module's ``stage`` fixture opens one per test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from moto import mock_aws

from infra.template import stage_template
from localstage.provision import Provisioner

REGION = "us-east-1"


@dataclass
class Stage:
    provisioner: Provisioner
    outputs: dict[str, str]

    def client(self, service: str) -> Any:
        return self.provisioner.client(service)


@contextmanager
def provisioned_stage(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stage]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        provisioner = Provisioner(region=REGION)
        provisioner.apply(stage_template("test"))
        yield Stage(provisioner, provisioner.result.outputs)
