"""Abuse limits that live in configuration: API throttling per deployed stage, the authorizer cache, body size."""

from __future__ import annotations

import pytest

import app as application
from chalicelib.config import Settings
from infra.package import STAGE_DEPLOYMENTS, merge_template
from infra.stage_settings import StageSettings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("stage", sorted(STAGE_DEPLOYMENTS))
def test_given_a_deployed_stage_then_its_api_is_throttled_and_answers_429_in_the_error_format(stage: str) -> None:
    api = merge_template(stage, ["api_handler"], StageSettings(), xray=False, endpoint_type="EDGE")["Resources"][
        "RestAPI"
    ]["Properties"]
    settings = api["MethodSettings"][0]
    assert (settings["ResourcePath"], settings["HttpMethod"]) == ("/*", "*")
    assert 0 < settings["ThrottlingRateLimit"] <= settings["ThrottlingBurstLimit"] <= 1000
    throttled = api["GatewayResponses"]["THROTTLED"]
    assert (
        throttled["StatusCode"] == "429"
        and '"error": "throttled"' in throttled["ResponseTemplates"]["application/json"]
    )


def test_given_the_authorizer_then_its_verdicts_are_cached_at_most_a_minute() -> None:
    # The window in which a deleted account's token still works (docs/security.md).
    assert 0 < application.jwt_auth.config.ttl_seconds <= 60


def test_given_default_settings_then_bodies_are_limited_to_64_kib() -> None:
    assert Settings.from_env({}).max_body_bytes == 64 * 1024
