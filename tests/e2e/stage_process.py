"""A separate local stage for tests that must not share the session's: switches on, or data they pollute.

The session fixture (``tests/e2e/conftest.py``) serves most e2e tests; the fuzzer (which creates
products at random) and the fault tests (handlers failing on purpose) each start their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from localstage.seed import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD
from localstage.server import free_port
from tests.e2e.conftest import PROJECT_DIR, RunningStage, _wait_healthy

# The session stage's shortcuts: retries within seconds, not AWS's minutes.
FAST_RETRIES = {"LOCAL_SQS_RETRY_VISIBILITY_SECONDS": "0", "LOCAL_LAMBDA_ASYNC_RETRY_DELAYS_SECONDS": "1,1"}


@contextmanager
def separate_stage(state_dir: Path, extra_env: Mapping[str, str] | None = None) -> Iterator[RunningStage]:
    """GIVEN a fresh ``python -m localstage`` on free ports with ``extra_env``; SIGTERM afterwards."""
    api_port, aws_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "LOCAL_", "PORT", "AWS_PORT"))}
    env.update({"PORT": str(api_port), "AWS_PORT": str(aws_port), "PYTHONUNBUFFERED": "1"})
    env.update({"LOCAL_ADMIN_EMAIL": DEFAULT_ADMIN_EMAIL, "LOCAL_ADMIN_PASSWORD": DEFAULT_ADMIN_PASSWORD})
    env.update({**FAST_RETRIES, "LOCAL_STAGE_STATE_DIR": str(state_dir), **(extra_env or {})})
    log_path = state_dir / "stage.log"
    stage = RunningStage(
        f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{aws_port}", DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD
    )
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
