"""The whole local stage (``python -m localstage``) as a subprocess on free ports."""

from __future__ import annotations

import re
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
            tmp_path_factory.mktemp("stage"), FAST_RETRIES, startup_timeout_s=STARTUP_TIMEOUT_S, warm=True
        ) as stage:
            yield stage
    except StageStartError as exc:
        pytest.fail(str(exc))


ERROR_LINES_SHOWN = 80
_EXCEPTION_LINE = re.compile(r"^[\w.]+(Error|Exception|Fault)\b")  # a traceback's last line


def stage_errors(stage: RunningStage) -> str:
    """The stage log's ERROR records and traceback lines, last ``ERROR_LINES_SHOWN`` of them."""
    try:
        lines = stage.log_path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(no stage log: {exc})"
    picked, in_traceback = [], False
    for line in lines:
        starts_traceback = line.startswith("Traceback") or '"level":"ERROR"' in line or line.startswith("[ERROR]")
        continues = line.startswith((" ", "\t")) or _EXCEPTION_LINE.match(line) is not None
        in_traceback = starts_traceback or (in_traceback and continues)
        if in_traceback:
            picked.append(line)
    return "\n".join(picked[-ERROR_LINES_SHOWN:]) or "(no error in the stage log)"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing e2e test's report carries the errors its stage logged: CI shows the cause, not just the 500."""
    report = yield
    if report.failed and call.when == "call":
        funcargs = getattr(item, "funcargs", {})
        for name, value in funcargs.items():
            for stage in value if isinstance(value, tuple) else (value,):
                if isinstance(stage, StageProcess):
                    report.sections.append((f"stage log errors ({name}: {stage.log_path})", stage_errors(stage)))
    return report
