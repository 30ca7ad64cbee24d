"""A separate local stage for tests that must not share the session's: switches on, or data they pollute.

The session fixture (``tests/e2e/conftest.py``) serves most e2e tests; the fuzzer (which creates
products at random) and the fault tests (handlers failing on purpose) each start their own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from localstage.process import FAST_RETRIES, StageStartError, stage_process
from tests.e2e.conftest import STARTUP_TIMEOUT_S, RunningStage


@contextmanager
def separate_stage(
    state_dir: Path, extra_env: Mapping[str, str] | None = None, warm: bool = True
) -> Iterator[RunningStage]:
    """GIVEN a fresh ``python -m localstage`` on free ports with ``extra_env``; SIGTERM afterwards.

    ``warm``: forked from the fork server that has the stage's dependencies imported
    (``localstage.process``); ``False`` starts a new interpreter, as ``make run`` does.

    Handlers run on threads here (``LOCAL_LAMBDA_PROCESSES=0``) unless ``extra_env`` asks for processes:
    these stages test switches and data that do not depend on where a handler runs, and a process per
    execution environment costs each stage more CPU than ``make test``'s 10 minutes leave. The
    session's stage and the IAM stages run processes, as ``make run`` does.
    """
    env = {**FAST_RETRIES, "LOCAL_LAMBDA_PROCESSES": "0", **(extra_env or {})}
    try:
        with stage_process(state_dir, env, startup_timeout_s=STARTUP_TIMEOUT_S, warm=warm) as stage:
            yield stage
    except StageStartError as exc:
        pytest.fail(str(exc))
