"""Which grants of a policy no allowed call used: least privilege made visible.

A grant is one (action, resource pattern) pair of an ``Allow`` statement. It is *used* when the
ledger holds an allowed call by that role whose action and resource the pair matches. Run every
path of the system on an IAM-enforcing stage, and what is left unused is a permission no path needs
(``tests/e2e/test_iam.py``); a missing one shows up as a refusal instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from localstage.iam.policy import wildcard_match

Json = dict[str, Any]


@dataclass(frozen=True)
class Grant:
    action: str
    resource: str


def grants(document: Json) -> list[Grant]:
    """Every (action, resource) pair the document's ``Allow`` statements give."""
    statements = document.get("Statement", [])
    found: list[Grant] = []
    for statement in [statements] if isinstance(statements, dict) else statements:
        if statement.get("Effect") != "Allow" or "Action" not in statement or "Resource" not in statement:
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        found += [Grant(a, r) for a in actions for r in resources]
    return found


def unused(policies: Mapping[str, Json], used: Iterable[tuple[str, str]]) -> list[Grant]:
    """The grants of ``policies`` that none of the ``used`` (action, resource) pairs matches."""
    calls = list(used)
    return [
        grant
        for document in policies.values()
        for grant in grants(document)
        if not any(
            wildcard_match(grant.action, action, ignore_case=True) and wildcard_match(grant.resource, resource)
            for action, resource in calls
        )
    ]
