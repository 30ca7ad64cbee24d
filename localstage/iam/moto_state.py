"""Reads of the embedded AWS's state that IAM evaluation needs, from moto's backends in this process.

Enforcement happens in front of moto, so it reads what moto holds rather than calling it over HTTP
(which would itself be a request to authorise): the role session an access key belongs to (moto's
STS), a role's policies (moto's IAM), a function's or a queue's resource policy, a secret's full ARN.
These are moto's private structures, so every read checks the moto version first
(``localstage.patches.require``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from localstage.patches import require

Json = dict[str, Any]

require("moto")


@dataclass(frozen=True)
class RoleSession:
    """A principal acting with credentials from ``sts:AssumeRole``."""

    session_arn: str  # arn:aws:sts::<account>:assumed-role/<role>/<session>
    role_arn: str  # arn:aws:iam::<account>:role/<role>
    account: str

    @property
    def role_name(self) -> str:
        return self.role_arn.rsplit("/", 1)[-1]

    @property
    def session_name(self) -> str:
        return self.session_arn.rsplit("/", 1)[-1]


def role_session(access_key_id: str) -> RoleSession | None:
    """The role session ``access_key_id`` was issued to by the embedded STS, if any."""
    from moto.sts.models import sts_backends

    for account in list(sts_backends.keys()):
        for backend in list(sts_backends[account].values()):
            found = backend.get_assumed_role_from_access_key(access_key_id)
            if found is not None:
                return RoleSession(found.arn, found.role_arn, found.account_id)
    return None


@lru_cache(maxsize=1024)
def _parsed(document: str) -> Json:
    parsed: Json = json.loads(document)
    return parsed


def role_policies(role_arn: str) -> dict[str, Json]:
    """The role's inline policies and the default versions of its managed ones, by name."""
    from moto.iam.models import iam_backends

    account = role_arn.split(":")[4]
    try:
        role = iam_backends[account]["aws"].get_role_by_arn(role_arn)
    except Exception:  # moto raises its NotFoundException: a deleted role has no permissions
        return {}
    policies = {name: _parsed(_text(doc)) for name, doc in role.policies.items()}
    for arn, managed in role.managed_policies.items():
        default = next(v for v in managed.versions if v.is_default)
        policies[arn] = _parsed(_text(default.document))
    return policies


def _text(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def function_policy(function_arn: str) -> Json | None:
    """A function's resource-based policy (``AddPermission``), or ``None`` if it has none."""
    from moto.awslambda.models import lambda_backends

    parts = function_arn.split(":")
    account, region, name = parts[4], parts[3], parts[6]
    qualifier = parts[7] if len(parts) > 7 else None
    try:
        wire = lambda_backends[account][region].get_policy(name, qualifier)
    except Exception:  # moto raises when the function has no policy (or does not exist)
        return None
    return _parsed(json.loads(wire)["Policy"])


def queue_policy(queue_arn: str) -> Json | None:
    """A queue's ``Policy`` attribute, or ``None``."""
    from moto.sqs.models import sqs_backends

    _, _, _, region, account, name = queue_arn.split(":")
    queue = sqs_backends[account][region].queues.get(name)
    policy = getattr(queue, "policy", None) if queue is not None else None
    return _parsed(_text(policy)) if policy else None


def secret_arn(name: str, region: str, account: str) -> str | None:
    """A secret's full ARN (``...:secret:<name>-AbCdEf``) from its name."""
    from moto.secretsmanager.models import secretsmanager_backends

    backend = secretsmanager_backends[account][region]
    for secret in list(backend.secrets.values()):
        if getattr(secret, "name", None) == name:
            return str(secret.arn)
    return None
