"""Fixtures more than one integration module uses.

``repos`` runs each repository contract test twice, once per implementation (in memory, DynamoDB in
moto on the stage's own tables); ``moto_stage`` is that DynamoDB, provisioned once per module and
emptied before each test, so a test starts from empty tables.
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
from tests.fake_aws import fake_aws_environment
from tests.integration.moto_reset import empty_tables
from tests.integration.pipeline_stage import PipelineStage, pipeline_stage
from tests.integration.repository_support import REGION, MotoStage, Repositories, tables_only


@pytest.fixture(scope="module")
def _moto_tables() -> Iterator[MotoStage]:
    """The test stage's tables, provisioned from the template inside moto once per module."""
    with fake_aws_environment(), mock_aws():
        session = boto3.session.Session(region_name=REGION)
        outputs = Provisioner(session).apply(tables_only(stage_template("test"))).outputs
        yield MotoStage(session.client("dynamodb"), outputs)


@pytest.fixture(scope="module")
def module_pipeline() -> Iterator[PipelineStage]:
    """One pipeline stage for a module's tests (setting one up costs 0.5 to 2 s of CPU); each test
    calls ``PipelineStage.begin_test`` on it."""
    with pipeline_stage() as running:
        yield running


@pytest.fixture
def moto_stage(_moto_tables: MotoStage) -> MotoStage:
    """GIVEN the test stage's tables in moto, empty: the module's tables with every item deleted.

    Emptied rather than made again: provisioning in a fresh moto took about half a second per test,
    and a contract test only needs empty tables of the stage's own definition.
    """
    empty_tables(_moto_tables.client)
    return _moto_tables


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
