"""The whole local stage (``python -m localstage``) as a subprocess on free ports."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from localstage.seed import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD
from localstage.server import free_port

PROJECT_DIR = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60


@dataclass(frozen=True)
class RunningStage:
    api_url: str
    aws_endpoint: str
    admin_email: str
    admin_password: str


@pytest.fixture(scope="session")
def local_stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStage]:
    """GIVEN a fresh local stage, healthy (GET /health 200); stopped with SIGTERM afterwards."""
    api_port, aws_port = free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_ENDPOINT_URL", "LOCAL_ADMIN_", "PORT", "AWS_PORT"))
    }
    env.update({"PORT": str(api_port), "AWS_PORT": str(aws_port), "LOCAL_ADMIN_EMAIL": DEFAULT_ADMIN_EMAIL})
    env.update({"LOCAL_ADMIN_PASSWORD": DEFAULT_ADMIN_PASSWORD, "PYTHONUNBUFFERED": "1"})
    # Retries within seconds, not AWS's minutes, so failure paths (DLQ, async retries) fit bounded waits.
    env.update({"LOCAL_SQS_RETRY_VISIBILITY_SECONDS": "0", "LOCAL_LAMBDA_ASYNC_RETRY_DELAYS_SECONDS": "1,1"})
    state = tmp_path_factory.mktemp("stage")
    env["LOCAL_STAGE_STATE_DIR"] = str(state)  # never the work tree's .localstage: workers run stages side by side
    log_path = state / "stage.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "localstage"], cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        stage = RunningStage(
            f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{aws_port}", DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD
        )
        try:
            _wait_healthy(stage.api_url, process, log_path)
            yield stage
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _wait_healthy(api_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the local stage exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{api_url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"the local stage was not healthy within {STARTUP_TIMEOUT_S} s:\n{log_path.read_text()[-3000:]}")
