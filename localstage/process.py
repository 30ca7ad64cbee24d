"""The local stage as a child process on free ports, for tests, runbooks and benchmarks.

Each caller used to carry its own copy of this: strip the parent's endpoint and
stage settings, pick free ports, start ``python -m localstage``, wait for
``GET /health``, and stop it with SIGTERM (then SIGKILL) whatever happens.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess  # starts our own interpreter on our own module, no shell  # nosec B404
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from localstage.seed import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD
from localstage.server import free_port

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Retries within seconds instead of AWS's minutes, so failure paths settle inside bounded waits.
FAST_RETRIES = {"LOCAL_SQS_RETRY_VISIBILITY_SECONDS": "0", "LOCAL_LAMBDA_ASYNC_RETRY_DELAYS_SECONDS": "1,1"}
_INHERITED_NOT = ("AWS_ENDPOINT_URL", "LOCAL_", "PORT", "AWS_PORT")


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
) -> Iterator[StageProcess]:
    """A fresh ``python -m <module>`` on free ports, healthy, with ``extra_env``; stopped afterwards."""
    api_port, aws_port = free_port(), free_port()
    state_dir.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(_INHERITED_NOT)}
    env.update({"PORT": str(api_port), "AWS_PORT": str(aws_port), "PYTHONUNBUFFERED": "1"})
    env.update({"LOCAL_ADMIN_EMAIL": DEFAULT_ADMIN_EMAIL, "LOCAL_ADMIN_PASSWORD": DEFAULT_ADMIN_PASSWORD})
    env.update({"LOCAL_STAGE_STATE_DIR": str(state_dir), **(extra_env or {})})
    stage = StageProcess(f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{aws_port}", state_dir)
    with stage.log_path.open("w") as log:
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


def wait_healthy(stage: StageProcess, process: subprocess.Popen[bytes], timeout_s: float) -> None:
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
