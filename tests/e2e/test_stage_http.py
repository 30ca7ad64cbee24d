"""The running local stage over HTTP and its AWS endpoint."""

from __future__ import annotations

import base64
import json

import boto3
import httpx
import pytest

from localstage.seed import DEMO_CATALOG
from tests.e2e.conftest import RunningStage

pytestmark = pytest.mark.e2e

SEEDED_CATEGORIES = {"footwear", "apparel", "gear"}  # localstage/seed.py's demo catalog
SEEDED_PRODUCTS = len(DEMO_CATALOG)  # what localstage/seed.py puts in the catalog


def test_given_the_seeded_admin_when_logging_in_then_products_are_listed(local_stage: RunningStage) -> None:
    login = httpx.post(
        f"{local_stage.api_url}/auth/login",
        json={"email": local_stage.admin_email, "password": local_stage.admin_password},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]

    products = httpx.get(
        f"{local_stage.api_url}/products?limit=100", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )

    assert products.status_code == 200
    # The seeded catalog is there (other tests on this stage may have added products of their own).
    seeded = [item for item in products.json()["items"] if item["category"] in SEEDED_CATEGORIES]
    assert len(seeded) == SEEDED_PRODUCTS
    assert {item["category"] for item in seeded} == SEEDED_CATEGORIES


def test_given_the_stage_when_asking_its_aws_then_the_functions_are_registered_and_invocable(
    local_stage: RunningStage,
) -> None:
    lam = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("lambda", endpoint_url=local_stage.aws_endpoint)
    names = {f["FunctionName"] for f in lam.list_functions()["Functions"]}
    assert {"ecommerce-backend-local", "ecommerce-backend-local-jwt_auth"} <= names

    # The authorizer, invoked the way API Gateway would, denies a bad token.
    event = {"type": "TOKEN", "authorizationToken": "Bearer not-a-token", "methodArn": "arn:aws:execute-api:x"}
    response = lam.invoke(FunctionName="ecommerce-backend-local-jwt_auth", Payload=json.dumps(event), LogType="Tail")
    assert response["StatusCode"] == 200
    assert "REPORT RequestId" in base64.b64decode(response["LogResult"]).decode()
