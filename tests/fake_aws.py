"""The fake AWS environment every test runs in, for fixtures that outlive one test.

``tests/conftest.py`` sets it around each test (autouse); a module-scoped fixture is set up before
that, so one that talks to moto opens :func:`fake_aws_environment` itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

REGION = "us-east-1"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}
# A shell that ran make run may export these: a test would then reach past moto.
REAL_AWS_ENV = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB")


@contextmanager
def fake_aws_environment() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in FAKE_AWS_ENV.items():
            env.setenv(name, value)
        for name in REAL_AWS_ENV:
            env.delenv(name, raising=False)
        yield
