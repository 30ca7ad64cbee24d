"""The whole local stage (``python -m localstage``) as a subprocess on free ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localstage.process import FAST_RETRIES, PROJECT_DIR, StageProcess, StageStartError, stage_process

STARTUP_TIMEOUT_S = 60
# What the e2e tests see of a running stage (api_url, aws_endpoint, admin credentials).
RunningStage = StageProcess

__all__ = ["PROJECT_DIR", "RunningStage", "local_stage"]


@pytest.fixture(scope="session")
def local_stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStage]:
    """GIVEN a fresh local stage, healthy (GET /health 200); stopped with SIGTERM afterwards."""
    # Its own state dir, never the work tree's .localstage: xdist workers run stages side by side.
    try:
        with stage_process(
            tmp_path_factory.mktemp("stage"), FAST_RETRIES, startup_timeout_s=STARTUP_TIMEOUT_S
        ) as stage:
            yield stage
    except StageStartError as exc:
        pytest.fail(str(exc))
