"""The cold start's deployed environment: the runtime's packages only, and a stub AWS that counts calls."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from bench.coldstart import Variant, run_child
from bench.deployed import DeployedTree, link_runtime_packages, stub_aws
from bench.environment import child_environment

NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


def test_given_the_stub_when_dynamodb_gets_an_item_then_it_answers_no_item_and_counts_the_call() -> None:
    with stub_aws() as (stub, endpoint):
        client = boto3.client(
            "dynamodb", endpoint_url=endpoint, region_name="us-east-1", config=NO_RETRIES,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        answer = client.get_item(TableName="products", Key={"pk": {"S": "p1"}})
        calls, refused = stub.snapshot()
    assert "Item" not in answer
    assert calls == {"DynamoDB_20120810.GetItem": 1}
    assert not refused


def test_given_the_stub_when_another_service_is_called_then_it_refuses_and_counts_the_refusal() -> None:
    with stub_aws() as (stub, endpoint):
        client = boto3.client(
            "sqs", endpoint_url=endpoint, region_name="us-east-1", config=NO_RETRIES,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        with pytest.raises(ClientError):
            client.list_queues()
        calls, refused = stub.snapshot()
    assert not calls
    assert sum(refused.values()) == 1


def test_given_the_runtime_directory_when_a_child_runs_without_site_then_only_boto3_and_its_kin_import(
    tmp_path: Path,
) -> None:
    # GIVEN the runtime's packages linked into a directory, as /var/runtime holds them
    link_runtime_packages(tmp_path / "runtime")
    tree = DeployedTree(task=tmp_path / "task", runtime=tmp_path / "runtime", layer=tmp_path / "layer")
    (tmp_path / "task").mkdir()
    env = child_environment(PYTHONPATH=tree.python_path)
    script = (
        "import importlib.util, boto3\n"
        "print(','.join(n for n in ('jwt', 'cryptography', 'pandas', 'pytest') if importlib.util.find_spec(n)))"
    )
    # WHEN a child runs with the tree's flags
    done = subprocess.run(
        [sys.executable, *tree.child_args(), "-c", script], env=env, capture_output=True, text=True, check=True
    )
    # THEN boto3 imports, and no development package is on its path
    assert done.stdout.strip() == ""


def test_given_a_variant_that_must_call_dynamodb_when_its_child_makes_no_call_then_the_run_fails(
    tmp_path: Path,
) -> None:
    script = "print('BENCH', 1.0, 404, 0)"
    variant = Variant(
        "product", "a route that forgot its GetItem", script, 404, aws_calls=(("DynamoDB_20120810.GetItem", 1),)
    )
    with stub_aws() as (stub, _), pytest.raises(RuntimeError, match="expected"):
        run_child(variant, tmp_path, child_environment(), stub=stub)
