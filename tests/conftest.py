"""Fixtures shared by every layer: fake AWS credentials, containers, the API client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.adapters.aws import reset_clients
from chalicelib.bootstrap import Container, use_container
from chalicelib.config import Settings

# Longest first: the layers whose modules each start a stage of their own go first, the many short
# unit modules last, where they fill the gap while the other worker finishes (make test runs
# `-n 2 --dist loadscope --no-loadscope-reorder`, so xdist hands out modules in this order).
_LAYER_ORDER = ("tests/e2e/", "tests/runbooks/", "tests/integration/")


def _layer(item: pytest.Item) -> int:
    path = item.nodeid
    return next((rank for rank, prefix in enumerate(_LAYER_ORDER) if path.startswith(prefix)), len(_LAYER_ORDER))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_layer)  # stable: the order within a layer stays the collection's


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test can reach a real AWS account: fake credentials, fixed region."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
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
