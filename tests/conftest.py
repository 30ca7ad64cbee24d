"""Fixtures shared by every layer: fake AWS credentials, containers, the API client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

from chalicelib.adapters.aws import reset_clients
from chalicelib.bootstrap import Container, use_container
from chalicelib.config import Settings
from tests.fake_aws import FAKE_AWS_ENV

# Longest first: the layers whose modules each start a stage of their own go first, the many short
# unit modules last, where they fill the gap while the other worker finishes (make test runs
# `-n 3 --dist loadscope --no-loadscope-reorder`, so xdist hands out modules in this order).
_LAYER_ORDER = ("tests/e2e/", "tests/runbooks/", "tests/integration/")
# The modules that use the session's stage (tests/e2e/conftest.py ``local_stage``) go to one worker as
# one unit, so one stage serves them all instead of one per worker. Every other module is a unit of
# its own (loadscope), so a module's own stage starts once. Checked against each module's fixtures.
SHARED_STAGE_MODULES = frozenset(
    {
        "tests/e2e/test_security_access.py",
        "tests/e2e/test_security_authorizer.py",
        "tests/e2e/test_stage_events.py",
        "tests/e2e/test_stage_http.py",
        "tests/e2e/test_stage_operations.py",
        "tests/e2e/test_stage_pipeline.py",
        "tests/e2e/test_stage_tracing.py",
        "tests/e2e/test_stage_uploads.py",
        "tests/runbooks/test_notebooks.py",
    }
)
SHARED_STAGE_UNIT = "tests/e2e/shared-local-stage"


def _layer(item: pytest.Item) -> int:
    path = item.nodeid
    return next((rank for rank, prefix in enumerate(_LAYER_ORDER) if path.startswith(prefix)), len(_LAYER_ORDER))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_layer)  # stable: the order within a layer stays the collection's
    uses_stage = {item.nodeid.split("::")[0] for item in items if "local_stage" in item.fixturenames}
    collected = {item.nodeid.split("::")[0] for item in items}
    wrong = (uses_stage ^ SHARED_STAGE_MODULES) & collected
    if wrong:
        raise pytest.UsageError(f"SHARED_STAGE_MODULES (tests/conftest.py) is out of date for {sorted(wrong)}")


class _SharedStageScheduling(LoadScopeScheduling):
    """xdist's loadscope, with the shared stage's modules as one unit (xdist's loadgroup marks do not
    reach the node ids under pytest 9.2, which moved ``Node._nodeid``)."""

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return SHARED_STAGE_UNIT if module in SHARED_STAGE_MODULES else super()._split_scope(nodeid)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") == "loadscope":
        return _SharedStageScheduling(config, log)
    return None


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test can reach a real AWS account: fake credentials, fixed region."""
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def memory_settings(**overrides: Any) -> Settings:
    return Settings.from_env({"ADAPTERS": "memory", "STAGE": "test", **overrides})


@pytest.fixture
def memory_container() -> Iterator[Container]:
    """The app wired to in-memory adapters, installed for the duration of a test."""
    built = Container(memory_settings())
    use_container(built)
    yield built
    use_container(None)
    reset_clients()
