"""One local stage per test session (the e2e fixture, reused as is), with a few orders placed through the API."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from runbooks.execute import QUICK, run_notebook
from runbooks.shop import OrderFate, seed_orders
from tests.e2e.conftest import RunningStage, local_stage

__all__ = ["local_stage"]

# One order down each path the runbooks should show: success, a decline (FAILED), a gateway
# timeout (a Retry with its backoff), a pending payment (the wait loop).
SEED_TOKENS = ("tok_success", "tok_declined", "tok_gateway_timeout", "tok_pending")


@pytest.fixture(scope="session")
def seeded_orders(local_stage: RunningStage) -> list[OrderFate]:
    fates = seed_orders(local_stage.api_url, SEED_TOKENS)
    assert all(f.status in ("COMPLETED", "FAILED") for f in fates), fates
    return fates


@pytest.fixture
def run_runbook(local_stage: RunningStage, tmp_path: Path) -> Any:
    """Run a notebook against the session's stage with the CI-sized parameters, plus ``overrides``."""

    def run(name: str, **overrides: Any) -> Mapping[str, Any]:
        common = {"api_url": local_stage.api_url, "aws_endpoint_url": local_stage.aws_endpoint}
        return run_notebook(name, tmp_path / name, {**common, **QUICK[name], **overrides})

    return run
