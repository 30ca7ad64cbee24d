"""One definition of a stage: .chalice/config.json, the template and the settings agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib import config
from chalicelib.config import Settings
from infra.template import stage_template

pytestmark = pytest.mark.unit

CHALICE_CONFIG = json.loads((Path(__file__).parents[2] / ".chalice" / "config.json").read_text())
STAGES = sorted(CHALICE_CONFIG["stages"])

# Env var -> (logical id in the template, the property that carries the physical name).
NAMED_RESOURCES = {
    "ORDERS_TABLE": ("OrdersTable", "TableName"),
    "USERS_TABLE": ("UsersTable", "TableName"),
    "PRODUCTS_TABLE": ("ProductsTable", "TableName"),
    "IDEMPOTENCY_TABLE": ("IdempotencyTable", "TableName"),
    "EVENT_BUS_NAME": ("EventBus", "Name"),
    "UPLOADS_BUCKET": ("UploadsBucket", "BucketName"),
    "REPORTS_BUCKET": ("ReportsBucket", "BucketName"),
    "SIGNING_KEY_SECRET_ID": ("SigningKeySecret", "Name"),
}


def test_the_three_stages_exist() -> None:
    assert STAGES == ["dev", "local", "prod"]
    assert CHALICE_CONFIG["app_name"] == "ecommerce-backend"


@pytest.mark.parametrize("stage", STAGES)
def test_given_a_stage_then_config_json_names_the_resources_the_template_creates(stage: str) -> None:
    env = CHALICE_CONFIG["stages"][stage]["environment_variables"]
    resources = stage_template(stage)["Resources"]
    for var, (logical_id, prop) in NAMED_RESOURCES.items():
        assert env[var] == resources[logical_id]["Properties"][prop], var
    assert env["STAGE"] == stage


@pytest.mark.parametrize("stage", STAGES)
def test_given_a_stage_then_settings_defaults_match_the_template_when_env_is_sparse(stage: str) -> None:
    settings = Settings.from_env({"STAGE": stage})
    resources = stage_template(stage)["Resources"]
    assert settings.orders_table == resources["OrdersTable"]["Properties"]["TableName"]
    assert settings.event_bus_name == resources["EventBus"]["Properties"]["Name"]
    assert settings.signing_key_secret_id == resources["SigningKeySecret"]["Properties"]["Name"]


def test_every_template_output_is_a_setting_the_functions_read() -> None:
    known = {value for name, value in vars(config).items() if name.isupper() and isinstance(value, str)}
    assert set(stage_template("dev")["Outputs"]) <= known


def test_every_stage_traces_the_local_one_included() -> None:
    # The local stage traces too, into its embedded X-Ray (localstage/xray.py), from the same setting.
    assert {name: stage["xray"] for name, stage in CHALICE_CONFIG["stages"].items()} == {
        "local": True,
        "dev": True,
        "prod": True,
    }
