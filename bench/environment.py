"""The environment a benchmark child process runs in: in-memory adapters, fake AWS credentials."""

from __future__ import annotations

import os
from collections.abc import Mapping

from chalicelib.config import ADAPTERS, ADAPTERS_MEMORY, AWS_DEFAULT_REGION

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    AWS_DEFAULT_REGION: "us-east-1",
}
# Settings that could send a child to a real account or change what boto3 loads.
_DROPPED = ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL")


def child_environment(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """``base`` (default: this process's environment) with in-memory adapters and fake credentials."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _DROPPED}
    env.update(FAKE_AWS)
    env[ADAPTERS] = ADAPTERS_MEMORY
    env.update(extra)
    return env
