"""The embedded AWS throttling a fifth of first and second attempts: the app's retries carry every request.

A separate stage with ``LOCAL_AWS_THROTTLE_RATE`` (localstage/aws_throttle.py). The app's clients
use botocore's standard retry mode with 4 attempts (chalicelib/adapters/aws.py), so every HTTP
request must still succeed and every order still complete, while the stage's log shows that
throttling errors were answered.

Lambda is left out: its only caller here is moto's Step Functions interpreter, which does not
retry (``total_max_attempts: 1``) and reports a throttled invoke as a plain ``Exception`` rather
than ``Lambda.TooManyRequestsException``, so the workflow's Retry cannot see it. That is the
emulation's limit, not the app's; AWS Step Functions retries that error by the definition.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningStage
from tests.e2e.stage_process import separate_stage
from tests.e2e.support import StageShop

pytestmark = pytest.mark.e2e

ORDERS = 4
# Every service the app's code calls (chalicelib/adapters), by signing name.
APP_SERVICES = "dynamodb,cognito-idp,secretsmanager,sqs,sns,events,states,s3"


@pytest.fixture(scope="module")
def throttled_stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningStage, Path]]:
    state = tmp_path_factory.mktemp("throttled-stage")
    switch = {
        "LOCAL_AWS_THROTTLE_RATE": "0.2",
        "LOCAL_AWS_THROTTLE_SERVICES": APP_SERVICES,
        "LOCAL_AWS_THROTTLE_SEED": "11",
        "LOCAL_LAMBDA_MEASURE_MEMORY": "0",
    }
    # A new interpreter, as `make run` starts it: the one e2e stage not forked from the warm fork server.
    with separate_stage(state, switch, warm=False) as stage:
        yield stage, state / "stage.log"


def test_given_a_throttling_aws_when_using_the_api_then_every_request_succeeds(
    throttled_stage: tuple[RunningStage, Path],
) -> None:
    stage, log_path = throttled_stage
    shop = StageShop(stage)  # admin login, registration, buyer login: each asserts its 2xx
    product = shop.product(price=3.0, stock=50)
    order_ids = [shop.order(product) for _ in range(ORDERS)]
    listed = shop.http.get("/orders", headers=shop.buyer)
    assert listed.status_code == 200 and len(listed.json()["items"]) == ORDERS
    assert shop.http.get("/products", params={"limit": 100}).status_code == 200

    outcomes = [shop.settle(order_id, timeout=60)["status"] for order_id in order_ids]
    assert outcomes == ["COMPLETED"] * ORDERS
    assert shop.stock(product) == 50 - ORDERS

    throttled = re.findall(r"throttled a (\S+) request", log_path.read_text())
    assert len(throttled) >= 5 and "dynamodb" in throttled, throttled
