"""boto3 clients for a runbook: the stage's endpoint and region; placeholder credentials on loopback only.

The local stage's embedded AWS accepts any credentials, and a fresh clone has none configured; a
deployed stage uses the operator's own (profile, SSO, environment), never placeholders.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from runbooks.params import is_loopback_url

CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=60)


def session(aws_endpoint_url: str, region: str) -> Any:
    local = bool(aws_endpoint_url) and is_loopback_url(aws_endpoint_url) is None
    if local and boto3.Session().get_credentials() is None:
        return boto3.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=region)
    return boto3.Session(region_name=region)


def clients(aws_endpoint_url: str, region: str, *services: str) -> list[Any]:
    made = session(aws_endpoint_url, region)
    endpoint = aws_endpoint_url or None
    return [made.client(service, endpoint_url=endpoint, config=CONFIG) for service in services]
