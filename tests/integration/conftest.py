"""Fixtures more than one integration module uses.

``repos`` runs each repository contract test twice, once per implementation (in memory, DynamoDB in
moto on the stage's own tables); ``moto_stage`` is that DynamoDB. Both are function-scoped: a test
starts from empty tables, so splitting the contract over modules costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from chalicelib.adapters.dynamodb import DynamoOrderRepository, DynamoProductRepository, DynamoUserRepository
from chalicelib.adapters.memory import InMemoryOrderRepository, InMemoryProductRepository, InMemoryUserRepository
from infra.template import stage_template
from localstage.provision import Provisioner
from tests.integration.repository_support import REGION, MotoStage, Repositories, tables_only


@pytest.fixture
def moto_stage(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoStage]:
    """GIVEN the test stage's tables, provisioned from the template inside moto."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        outputs = Provisioner(session).apply(tables_only(stage_template("test"))).outputs
        yield MotoStage(session.client("dynamodb"), outputs)


@pytest.fixture(params=["memory", "dynamodb"])
def repos(request: pytest.FixtureRequest) -> Repositories:
    if request.param == "memory":
        return Repositories(InMemoryUserRepository(), InMemoryProductRepository(), InMemoryOrderRepository())
    stage: MotoStage = request.getfixturevalue("moto_stage")
    out = stage.outputs
    return Repositories(
        DynamoUserRepository(stage.client, out["USERS_TABLE"]),
        DynamoProductRepository(stage.client, out["PRODUCTS_TABLE"], sleep=lambda _: None),
        DynamoOrderRepository(stage.client, out["ORDERS_TABLE"], out["IDEMPOTENCY_TABLE"]),
    )
