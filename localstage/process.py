"""The local stage as a child process on free ports, for tests, runbooks and benchmarks.

Each caller used to carry its own copy of this: strip the parent's endpoint and
stage settings, pick free ports, start ``python -m localstage``, wait for
``GET /health``, and stop it with SIGTERM (then SIGKILL) whatever happens.

``warm=True`` (the test suite, which starts about ten stages per run) forks the stage from a
multiprocessing fork server that has already imported moto, Flask, Chalice, botocore and the X-Ray
SDK: measured, a stage then reaches ``GET /health`` on 6.0 s of CPU instead of 9.3 (the rest is
provisioning, registering the functions and seeding). The child then runs exactly what
``python -m localstage`` runs (``localstage.__main__.main``) with the same environment, working
directory and log; only the interpreter's imports happened before the fork. Benchmarks and runbooks
start a fresh interpreter, as a user does.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import multiprocessing
import os
import subprocess  # starts our own interpreter on our own module, no shell  # nosec B404
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Protocol

import httpx

from localstage.seed import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD
from localstage.server import free_port

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Retries within seconds instead of AWS's minutes, so failure paths settle inside bounded waits.
FAST_RETRIES = {"LOCAL_SQS_RETRY_VISIBILITY_SECONDS": "0", "LOCAL_LAMBDA_ASYNC_RETRY_DELAYS_SECONDS": "1,1"}
_INHERITED_NOT = ("AWS_ENDPOINT_URL", "LOCAL_", "PORT", "AWS_PORT")
# What the fork server imports once (third-party only: the stage's own modules read their settings
# from the environment, which each child sets before importing them).
WARM_MODULES = (
    "moto.cloudformation.parsing",  # imports most of moto's services, API Gateway's validators included
    "moto.server",
    "moto.stepfunctions.parser.asl.parse.asl_parser",
    "flask",
    "chalice.app",
    "chalice.local",
    "chalice.cli",  # the stage packages the app as `chalice package` does
    "aws_xray_sdk.core",
    "boto3",
    "httpx",
)


class _Child(Protocol):
    """What ``stage_process`` needs of the stage's process: ``subprocess.Popen``'s calls."""

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    @property
    def pid(self) -> int | None: ...


class _ForkedChild:
    """A stage forked from the fork server, behind ``subprocess.Popen``'s calls."""

    def __init__(self, process: BaseProcess) -> None:
        self._process = process
        self.pid = process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def terminate(self) -> None:
        self._process.terminate()

    def kill(self) -> None:
        self._process.kill()

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired("localstage", timeout or 0)
        return self._process.exitcode


@functools.cache
def _fork_server() -> ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(WARM_MODULES))
    return context


def _run_forked(env: dict[str, str], log_path: str, cwd: str) -> None:
    """The forked child: ``python -m localstage``'s environment, directory and output, then its main."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    from localstage.__main__ import exit_with, main

    exit_with(main())


class StageStartError(RuntimeError):
    """The local stage exited or did not become healthy in time; the message ends with its log."""


@dataclass(frozen=True)
class StageProcess:
    api_url: str
    aws_endpoint: str
    state_dir: Path
    admin_email: str = DEFAULT_ADMIN_EMAIL
    admin_password: str = DEFAULT_ADMIN_PASSWORD
    pid: int | None = None  # the stage's process, once started (benchmarks read its CPU time)

    @property
    def aws_endpoint_url(self) -> str:
        return self.aws_endpoint

    @property
    def log_path(self) -> Path:
        return self.state_dir / "stage.log"

    def outputs(self) -> dict[str, str]:
        """The stage's environment as it wrote it (``localstage.envfile``)."""
        return dict(json.loads((self.state_dir / "outputs.json").read_text()))


@contextmanager
def stage_process(
    state_dir: Path,
    extra_env: Mapping[str, str] | None = None,
    module: str = "localstage",
    startup_timeout_s: float = 90,
    warm: bool = False,
) -> Iterator[StageProcess]:
    """A fresh ``python -m <module>`` on free ports, healthy, with ``extra_env``; stopped afterwards.

    ``warm``: forked from the fork server instead (``localstage`` only; see the module's docstring).
    """
    api_port, aws_port = free_port(), free_port()
    state_dir.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(_INHERITED_NOT)}
    env.update({"PORT": str(api_port), "AWS_PORT": str(aws_port), "PYTHONUNBUFFERED": "1"})
    env.update({"LOCAL_ADMIN_EMAIL": DEFAULT_ADMIN_EMAIL, "LOCAL_ADMIN_PASSWORD": DEFAULT_ADMIN_PASSWORD})
    env.update({"LOCAL_STAGE_STATE_DIR": str(state_dir), **(extra_env or {})})
    stage = StageProcess(f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{aws_port}", state_dir)
    with stage.log_path.open("w") as log:
        process: _Child
        if warm and module == "localstage":
            forked = _fork_server().Process(target=_run_forked, args=(env, str(stage.log_path), str(PROJECT_DIR)))
            forked.start()
            process = _ForkedChild(forked)
        else:
            process = subprocess.Popen(  # noqa: S603 - sys.executable -m <module>, fixed argv  # nosec B603
                [sys.executable, "-m", module], cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        stage = dataclasses.replace(stage, pid=process.pid)
        try:
            wait_healthy(stage, process, startup_timeout_s)
            yield stage
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def wait_healthy(stage: StageProcess, process: _Child, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StageStartError(f"the local stage exited with {process.returncode}:\n{_tail(stage.log_path)}")
        try:
            if httpx.get(f"{stage.api_url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet: keep polling until the deadline
        time.sleep(0.25)
    raise StageStartError(f"the local stage was not healthy within {timeout_s:.0f} s:\n{_tail(stage.log_path)}")


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text()[-chars:] if path.exists() else "(no log)"
