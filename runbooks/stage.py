"""A local stage for a runbook run: ``python -m localstage`` on free ports, stopped afterwards.

``make runbooks`` uses it when no ``API_URL`` is given, so a fresh clone needs nothing running.
The same settings as the e2e fixture: quick SQS and async retries so failure paths settle fast.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from localstage.server import free_port

PROJECT_DIR = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 90


class StageStartError(RuntimeError):
    """The local stage did not become healthy."""


@dataclass(frozen=True)
class Stage:
    api_url: str
    aws_endpoint_url: str


@contextmanager
def local_stage(log_path: Path) -> Iterator[Stage]:
    api_port, aws_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "PORT", "AWS_PORT"))}
    env.update({"PORT": str(api_port), "AWS_PORT": str(aws_port), "PYTHONUNBUFFERED": "1"})
    env.update({"LOCAL_SQS_RETRY_VISIBILITY_SECONDS": "0", "LOCAL_LAMBDA_ASYNC_RETRY_DELAYS_SECONDS": "1,1"})
    stage = Stage(f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{aws_port}")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "localstage"], cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
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
            raise StageStartError(f"the local stage exited with {process.returncode}: see {log_path}")
        try:
            if httpx.get(f"{api_url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.25)
            continue
        time.sleep(0.25)
    raise StageStartError(f"the local stage was not healthy within {STARTUP_TIMEOUT_S} s: see {log_path}")
