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
from tests.integration.repository_support import REGION, MotoStage, Repositories, tables_only


@pytest.fixture(scope="module")
def _moto_tables() -> Iterator[MotoStage]:
    """The test stage's tables, provisioned from the template inside moto once per module."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", REGION)
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
            env.delenv(name, raising=False)
        with mock_aws():
            session = boto3.session.Session(region_name=REGION)
            outputs = Provisioner(session).apply(tables_only(stage_template("test"))).outputs
            yield MotoStage(session.client("dynamodb"), outputs)


@pytest.fixture
def moto_stage(_moto_tables: MotoStage) -> MotoStage:
    """GIVEN the test stage's tables in moto, empty: the module's tables with every item deleted.

    Emptied rather than made again: provisioning in a fresh moto took about half a second per test,
    and a contract test only needs empty tables of the stage's own definition.
    """
    client = _moto_tables.client
    for table in client.list_tables()["TableNames"]:
        keys = [k["AttributeName"] for k in client.describe_table(TableName=table)["Table"]["KeySchema"]]
        for page in client.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                client.delete_item(TableName=table, Key={k: item[k] for k in keys})
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
