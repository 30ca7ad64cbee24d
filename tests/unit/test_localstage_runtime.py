"""The pieces of the deployed-code runtime that need no process and no AWS: variables, code, libraries."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from botocore.credentials import Credentials

from localstage.runtime.api import Answer
from localstage.runtime.code import CodeCache, is_deployment_package, runtime_libraries
from localstage.runtime.environments import FunctionSetup, lambda_environment

pytestmark = pytest.mark.unit


def archive(files: dict[str, tuple[str, int]]) -> bytes:
    """A zip of ``{name: (text, unix mode)}``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name, (text, mode) in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            zipped.writestr(info, text)
    return buffer.getvalue()


def setup(**variables: str) -> FunctionSetup:
    return FunctionSetup(
        name="shop-dev-process_order",
        version="$LATEST",
        handler="app.process_order",
        runtime="python3.11",
        role_arn="arn:aws:iam::123456789012:role/shop-dev-process_order",
        code_sha256="c2hh",
        code=b"",
        variables=variables,
    )


def environment(tmp_path: Path, xray: str | None = None, **variables: str) -> dict[str, str]:
    return lambda_environment(
        setup(**variables),
        memory_mb=256,
        log_stream="2026/12/01/[$LATEST]abc",
        task_root=tmp_path / "task",
        libraries=tmp_path / "runtime",
        credentials=Credentials("ASIAKEY", "secret", "token"),
        endpoint="http://127.0.0.1:4566",
        region="us-east-1",
        scratch=tmp_path / "tmp",
        xray_daemon_address=xray,
    )


def test_given_a_function_then_its_process_gets_what_lambda_gives_and_its_own_variables(tmp_path: Path) -> None:
    env = environment(tmp_path, ORDERS_TABLE="orders-dev")

    assert env["ORDERS_TABLE"] == "orders-dev"
    assert env["_HANDLER"] == "app.process_order" and env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "shop-dev-process_order"
    assert (env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], env["AWS_LAMBDA_FUNCTION_VERSION"]) == ("256", "$LATEST")
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/shop-dev-process_order"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == "2026/12/01/[$LATEST]abc"
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]) == (
        "ASIAKEY",
        "secret",
        "token",
    )
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566" and env["AWS_REGION"] == "us-east-1"
    assert env["LAMBDA_TASK_ROOT"] == str(tmp_path / "task")
    # The zip's root first (chalice's dependencies live there), then the runtime's boto3, nothing else.
    assert env["PYTHONPATH"] == f"{tmp_path / 'task'}:{tmp_path / 'runtime'}"
    assert env["TMPDIR"] == str(tmp_path / "tmp")
    assert not {k for k in env if k.startswith("AWS_XRAY") or k.startswith("_AWS_XRAY")}


def test_given_variables_that_lambda_reserves_then_lambdas_values_win(tmp_path: Path) -> None:
    env = environment(
        tmp_path, AWS_REGION="eu-west-1", AWS_ACCESS_KEY_ID="mine", AWS_LAMBDA_FUNCTION_NAME="other", PYTHONPATH="/x"
    )

    assert env["AWS_REGION"] == "us-east-1" and env["AWS_ACCESS_KEY_ID"] == "ASIAKEY"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "shop-dev-process_order"
    assert env["PYTHONPATH"].split(":")[0] == str(tmp_path / "task")


def test_given_an_xray_daemon_then_the_sdk_finds_it_as_on_lambda(tmp_path: Path) -> None:
    env = environment(tmp_path, xray="127.0.0.1:2000")

    assert env["AWS_XRAY_DAEMON_ADDRESS"] == "127.0.0.1:2000"
    assert (env["_AWS_XRAY_DAEMON_ADDRESS"], env["_AWS_XRAY_DAEMON_PORT"]) == ("127.0.0.1", "2000")
    assert env["AWS_XRAY_CONTEXT_MISSING"] == "LOG_ERROR"


def test_given_a_code_version_when_asked_twice_then_it_is_unpacked_once_with_its_modes(tmp_path: Path) -> None:
    cache = CodeCache(tmp_path / "code")
    code = archive({"app.py": ("x = 1\n", 0o644), "bin/tool": ("#!/bin/sh\n", 0o755)})

    first = cache.task_root("c2hh", code)
    (first / "marker").write_text("kept")
    second = cache.task_root("c2hh", code)

    assert first == second == tmp_path / "code" / b"sha".hex()
    assert (second / "marker").read_text() == "kept"  # not unpacked again
    assert (first / "app.py").read_text() == "x = 1\n"
    assert (first / "bin" / "tool").stat().st_mode & 0o777 == 0o755


def test_given_a_broken_zip_when_unpacked_then_nothing_is_left_that_looks_like_code(tmp_path: Path) -> None:
    cache = CodeCache(tmp_path / "code")

    with pytest.raises(zipfile.BadZipFile):
        cache.task_root("c2hh", b"not a zip")

    assert list((tmp_path / "code").iterdir()) == []


def test_given_packages_then_only_real_deployment_packages_are_run() -> None:
    assert is_deployment_package(archive({"app.py": ("", 0o644)}))
    assert not is_deployment_package(archive({"README.txt": ("Runs in-process in the local stage", 0o644)}))
    assert not is_deployment_package(b"PK not really")


def test_given_the_virtualenv_then_the_runtime_libraries_are_the_sdk_and_the_bootstrap_only(tmp_path: Path) -> None:
    libraries = runtime_libraries(tmp_path / "runtime")

    names = {path.name for path in libraries.iterdir()}
    assert {"boto3", "botocore", "awslambdaric", "simplejson", "dateutil", "urllib3"} <= names
    assert any(name.startswith("runtime_client") for name in names)  # awslambdaric's C extension
    assert not {"pytest", "moto", "chalice", "localstage", "_pytest"} & names
    assert runtime_libraries(tmp_path / "runtime") == libraries  # rebuilding over itself is harmless


def test_given_a_runtime_error_answer_then_its_payload_is_returned_as_posted_or_wrapped() -> None:
    posted = Answer(b'{"errorType": "ValueError", "errorMessage": "bad", "stackTrace": []}', "ValueError")
    text = Answer(b"segfault", "Runtime.ExitError")

    assert posted.error_payload() == {"errorType": "ValueError", "errorMessage": "bad", "stackTrace": []}
    assert text.error_payload() == {"errorType": "Runtime.ExitError", "errorMessage": "segfault"}


def test_given_the_stages_http_servers_then_each_answers_without_nagles_delayed_ack_stall() -> None:
    # http.server sends the headers and the body separately: with Nagle on, a kept-alive connection
    # waits 40 ms for the client's delayed ACK before the body (measured: GET /health 80 ms, 32 ms without).
    from localstage.http_gateway import TracedRequestHandler
    from localstage.runtime.api import _Handler

    assert TracedRequestHandler.disable_nagle_algorithm is True
    assert _Handler.disable_nagle_algorithm is True
