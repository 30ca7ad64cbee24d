"""The environment a benchmark child process runs in: in-memory adapters, fake AWS credentials."""

from __future__ import annotations

import os
from collections.abc import Mapping

from chalicelib.config import ADAPTERS, ADAPTERS_MEMORY, AWS_DEFAULT_REGION, AWS_XRAY_DAEMON_ADDRESS

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


# Set by Lambda in every function; the X-Ray SDK reads it to run in Lambda mode (a local sampler, the
# segment from the runtime's trace header) instead of building sampling clients for a daemon.
LAMBDA_TASK_ROOT = "LAMBDA_TASK_ROOT"
# A sampled invocation's header, as the runtime sets it per invocation under active tracing.
SAMPLED_TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def active_tracing(daemon_address: str) -> dict[str, str]:
    """What Lambda adds to a function's environment with active tracing (dev and prod: ``"xray": true``).

    ``AWS_XRAY_DAEMON_ADDRESS`` is what turns tracing on in ``app.py``; the SDK then records under the
    ``_X_AMZN_TRACE_ID`` segment and sends to ``daemon_address`` (UDP: sending never fails).
    """
    return {
        AWS_XRAY_DAEMON_ADDRESS: daemon_address,
        "_X_AMZN_TRACE_ID": SAMPLED_TRACE_HEADER,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }
