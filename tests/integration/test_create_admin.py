"""``make admin``: the first admin of a stage, on the stage's own resources (moto)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import boto3
import pytest
from moto import mock_aws

from chalicelib.adapters.aws import reset_clients
from chalicelib.bootstrap import Container
from chalicelib.config import Settings
from localstage.provision import provision_stage
from scripts.create_admin import main

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    """``--outputs`` writes into os.environ (boto3 reads it there); give it back after each test."""
    with mock.patch.dict(os.environ):
        yield


def test_given_a_fresh_stage_when_creating_an_admin_twice_then_one_confirmed_admin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with mock_aws():
        reset_clients()
        outputs = provision_stage("test")
        outputs_file = tmp_path / "outputs.json"
        outputs_file.write_text(json.dumps(outputs))

        assert (
            main(
                [
                    "--email",
                    "Ops@Example.com",
                    "--password",
                    "Adm1n-password",
                    "--stage",
                    "test",
                    "--outputs",
                    str(outputs_file),
                ]
            )
            == 0
        )
        assert main(["--email", "ops@example.com", "--stage", "test", "--outputs", str(outputs_file)]) == 0
        assert "is now an admin" in capsys.readouterr().out

        container = Container(Settings.from_env({**outputs, "STAGE": "test"}))
        login = container.users.login("ops@example.com", "Adm1n-password")
        assert set(login.user.roles) == {"admin", "user"}
        user = boto3.client("cognito-idp", region_name="us-east-1").admin_get_user(
            UserPoolId=outputs["USER_POOL_ID"], Username="ops@example.com"
        )
        assert user["UserStatus"] == "CONFIRMED"
    reset_clients()


def test_given_a_weak_password_when_creating_an_admin_then_refused_with_exit_2(tmp_path: Path) -> None:
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps({"ADAPTERS": "memory"}))
    assert main(["--email", "ops@example.com", "--password", "weak", "--outputs", str(outputs_file)]) == 2
