"""Fixtures shared by every layer: fake AWS credentials, containers, the API client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.adapters.aws import reset_clients
from chalicelib.bootstrap import Container, use_container
from chalicelib.config import Settings


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
