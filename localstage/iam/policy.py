"""IAM policy evaluation for one account: identity-based policies, a resource-based policy, conditions.

Why by hand: moto's evaluator (``moto/iam/access_control.py``) treats any condition operator but
``StringEquals`` as satisfied, matches actions case-sensitively and knows no ``?`` wildcard, so it
would allow what AWS refuses; no maintained Python library evaluates IAM policies. This module
implements the part of AWS's evaluation logic a single-account stage needs
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):

1. an explicit ``Deny`` in any applicable statement refuses the request;
2. otherwise an ``Allow`` in an identity-based policy of the principal, or in the resource's policy
   naming the principal, allows it (within one account either is enough);
3. otherwise it is refused (implicit deny).

Statements: ``Effect``, ``Action``/``NotAction`` (case-insensitive), ``Resource``/``NotResource``,
``Principal``/``NotPrincipal`` (resource policies), ``Condition`` with the string, ARN, numeric,
``Bool`` and ``Null`` operators, their ``IfExists`` forms and the ``ForAnyValue:``/``ForAllValues:``
set qualifiers. Wildcards ``*`` and ``?``. Anything else (date or IP operators, policy variables such
as ``${aws:username}``, permissions boundaries, SCPs, session policies) is not evaluated: a statement
the stage cannot evaluate never allows and always denies, so the stage is never more permissive than
AWS (the decision's reason says which statement it could not read).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any

Json = dict[str, Any]
ContextValue = str | list[str]


class Effect(Enum):
    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True)
class Request:
    """What IAM authorises: who, which action, on what, with which condition keys."""

    action: str  # "dynamodb:GetItem"
    resource: str  # an ARN, or "*" for actions without resource-level permissions
    principal_arn: str | None = None  # the role (or assumed-role session) calling, if any
    service: str | None = None  # a service principal calling ("events.amazonaws.com"), if any
    context: Mapping[str, ContextValue] = field(default_factory=dict)  # "aws:SourceArn" -> value

    @property
    def who(self) -> str:
        return self.principal_arn or self.service or "anonymous"


@dataclass(frozen=True)
class Matched:
    policy: str  # "identity:<policy name>" or "resource"
    index: int  # the statement's position in its policy
    sid: str
    effect: Effect


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # AWS's wording where AWS has one: "no identity-based policy allows the X action"
    matched: Matched | None = None

    @property
    def explicit_deny(self) -> bool:
        return self.matched is not None and self.matched.effect is Effect.DENY


class _Unreadable(Exception):
    """A statement uses something this evaluator does not implement."""


def evaluate(
    request: Request,
    identity_policies: Mapping[str, Json] | None = None,
    resource_policy: Json | None = None,
) -> Decision:
    """AWS's decision for ``request`` under the principal's policies and the resource's policy."""
    allow: Matched | None = None
    unreadable: list[str] = []
    sources: list[tuple[str, Json, bool]] = [(f"identity:{n}", p, False) for n, p in (identity_policies or {}).items()]
    if resource_policy:
        sources.append(("resource", resource_policy, True))
    for name, document, is_resource_policy in sources:
        for index, statement in enumerate(_statements(document)):
            effect = Effect(statement.get("Effect"))
            try:
                applies = _applies(statement, request, is_resource_policy)
            except _Unreadable as exc:
                unreadable.append(f"{name}#{index}: {exc}")
                applies = effect is Effect.DENY  # fail closed: an unreadable Deny denies, an unreadable Allow does not
            if not applies:
                continue
            matched = Matched(name, index, str(statement.get("Sid", "")), effect)
            if effect is Effect.DENY:
                where = "a resource-based policy" if is_resource_policy else "an identity-based policy"
                return Decision(False, f"with an explicit deny in {where}", matched)
            allow = allow or matched
    if allow is not None:
        return Decision(True, f"allowed by {allow.policy} statement {allow.index}", allow)
    kind = "identity-based" if request.principal_arn else "resource-based"
    reason = f"no {kind} policy allows the {request.action} action"
    if unreadable:
        reason += f" (the local stage could not evaluate: {'; '.join(unreadable)})"
    return Decision(False, reason)


def _statements(document: Json) -> list[Json]:
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _applies(statement: Json, request: Request, is_resource_policy: bool) -> bool:
    if "Action" in statement:
        if not any(wildcard_match(p, request.action, ignore_case=True) for p in _as_list(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(wildcard_match(p, request.action, ignore_case=True) for p in _as_list(statement["NotAction"])):
            return False
    else:
        return False
    if "Resource" in statement:
        if not any(_resource_match(p, request.resource) for p in _as_list(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(_resource_match(p, request.resource) for p in _as_list(statement["NotResource"])):
            return False
    elif not is_resource_policy:
        return False  # an identity-based statement without Resource is invalid
    if is_resource_policy and not _principal_matches(statement, request):
        return False
    return _conditions_hold(statement.get("Condition") or {}, request.context)


def _resource_match(pattern: str, resource: str) -> bool:
    if "${" in pattern:
        raise _Unreadable(f"policy variable in Resource {pattern}")
    return wildcard_match(pattern, resource)


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def wildcard_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM's matching: ``*`` any run of characters (colons and slashes included), ``?`` one character."""
    return _glob(pattern, ignore_case).match(value) is not None


def _principal_matches(statement: Json, request: Request) -> bool:
    if "Principal" in statement:
        return _principal_in(statement["Principal"], request)
    if "NotPrincipal" in statement:
        return not _principal_in(statement["NotPrincipal"], request)
    return False


def _principal_in(principal: Any, request: Request) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        raise _Unreadable(f"Principal {principal!r}")
    for kind, values in principal.items():
        for value in _as_list(values):
            if kind == "Service" and request.service is not None and value == request.service:
                return True
            if kind == "AWS" and request.principal_arn is not None and _aws_principal(value, request.principal_arn):
                return True
            if kind not in ("Service", "AWS"):
                raise _Unreadable(f"Principal type {kind}")
    return False


def _aws_principal(value: str, caller: str) -> bool:
    """``*``, an account (``123456789012`` or its root ARN), the role, or the role session, as AWS matches."""
    if value == "*":
        return True
    account = caller.split(":")[4]
    if value in (account, f"arn:aws:iam::{account}:root"):
        return True
    if value == caller:
        return True
    # A session arn:aws:sts::A:assumed-role/R/S is also the role arn:aws:iam::A:role/R.
    parts = caller.split(":", 5)
    if parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        role = parts[5].split("/")[1]
        return value == f"arn:aws:iam::{account}:role/{role}"
    return False


# -- conditions -------------------------------------------------------------------------------------


def _conditions_hold(conditions: Mapping[str, Mapping[str, Any]], context: Mapping[str, ContextValue]) -> bool:
    for operator, keys in conditions.items():
        for key, expected in keys.items():
            if not _condition(operator, key, _as_list(expected), context):
                return False
    return True


def _lookup(context: Mapping[str, ContextValue], key: str) -> list[str] | None:
    # Condition keys are case-insensitive.
    for name, value in context.items():
        if name.lower() == key.lower():
            return [str(v) for v in _as_list(value)]
    return None


def _condition(operator: str, key: str, expected: list[Any], context: Mapping[str, ContextValue]) -> bool:
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists") and base != "IfExists"
    base = base.removesuffix("IfExists") if if_exists else base
    actual = _lookup(context, key)
    if base == "Null":
        return (actual is None) == (str(expected[0]).lower() == "true")
    compare, negated = _operator(base)
    if actual is None:
        # AWS: a missing key fails a condition, except a negated one; IfExists makes it pass.
        return if_exists or negated
    if qualifier == "ForAllValues":
        return all(_one(compare, negated, value, expected) for value in actual)
    if qualifier in ("ForAnyValue", ""):
        return any(_one(compare, negated, value, expected) for value in actual)
    raise _Unreadable(f"condition qualifier {qualifier}")


def _one(compare: Any, negated: bool, value: str, expected: list[Any]) -> bool:
    hit = any(compare(str(e), value) for e in expected)
    return not hit if negated else hit


def _arn_like(pattern: str, value: str) -> bool:
    # Each of an ARN's six colon-separated parts is matched on its own.
    pattern_parts, value_parts = pattern.split(":", 5), value.split(":", 5)
    if len(pattern_parts) != 6 or len(value_parts) != 6:
        return False
    return all(wildcard_match(p, v) for p, v in zip(pattern_parts, value_parts, strict=True))


def _numeric(test: Any) -> Any:
    def compare(expected: str, value: str) -> bool:
        try:
            return bool(test(float(value), float(expected)))
        except ValueError:
            return False

    return compare


_OPERATORS: dict[str, tuple[Any, bool]] = {
    "StringEquals": (lambda e, v: e == v, False),
    "StringNotEquals": (lambda e, v: e == v, True),
    "StringEqualsIgnoreCase": (lambda e, v: e.lower() == v.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda e, v: e.lower() == v.lower(), True),
    "StringLike": (wildcard_match, False),
    "StringNotLike": (wildcard_match, True),
    "ArnEquals": (_arn_like, False),  # AWS: ArnEquals and ArnLike behave the same
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "NumericEquals": (_numeric(lambda v, e: v == e), False),
    "NumericNotEquals": (_numeric(lambda v, e: v == e), True),
    "NumericLessThan": (_numeric(lambda v, e: v < e), False),
    "NumericLessThanEquals": (_numeric(lambda v, e: v <= e), False),
    "NumericGreaterThan": (_numeric(lambda v, e: v > e), False),
    "NumericGreaterThanEquals": (_numeric(lambda v, e: v >= e), False),
    "Bool": (lambda e, v: e.lower() == v.lower(), False),
}


def _operator(name: str) -> tuple[Any, bool]:
    try:
        return _OPERATORS[name]
    except KeyError:
        raise _Unreadable(f"condition operator {name}") from None


def actions_of(document: Json) -> Iterable[str]:
    """Every action an ``Allow`` statement names (for reports of unused grants)."""
    for statement in _statements(document):
        if statement.get("Effect") == "Allow":
            yield from _as_list(statement.get("Action", []))
