"""boto3 clients for a runbook: the stage's endpoint and region; placeholder credentials on loopback only.

The local stage's embedded AWS accepts any credentials, and a fresh clone has none configured; a
deployed stage uses the operator's own (profile, SSO, environment), never placeholders. The clients
themselves come from the one stage client (``runbooks.stage_client.aws_client``).
"""

from __future__ import annotations

from typing import Any

import boto3

from runbooks.params import is_loopback_url
from runbooks.stage_client import LOCAL_CREDENTIALS, aws_client


def clients(aws_endpoint_url: str, region: str, *services: str) -> list[Any]:
    local = bool(aws_endpoint_url) and is_loopback_url(aws_endpoint_url) is None
    credentials = LOCAL_CREDENTIALS if local and boto3.Session().get_credentials() is None else None
    return [aws_client(aws_endpoint_url, service, region=region, credentials=credentials) for service in services]
