"""The dependency graph of a template's resources: the order CloudFormation creates and deletes in.

moto creates lazily (a ``Ref`` creates what it names) and deletes in no order; an update and a delete
need the order explicitly, and a template naming something it does not define, or a cycle, is refused
before anything is touched, as AWS refuses it.
"""

from __future__ import annotations

import graphlib
import re
from typing import Any

from moto.cloudformation.exceptions import ValidationError

Json = dict[str, Any]

_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")


def dependencies(resources: Json) -> dict[str, set[str]]:
    """Logical id -> the resources it names (Ref, Fn::GetAtt, Fn::Sub, DependsOn)."""
    return {
        logical_id: {name for name in _named(resource) if name in resources and name != logical_id}
        for logical_id, resource in resources.items()
    }


def _named(resource: Json) -> set[str]:
    """Every name a resource refers to: resources, parameters, pseudo parameters."""
    found: set[str] = set()
    _references(resource.get("Properties") or {}, found)
    depends = resource.get("DependsOn") or []
    return found | ({depends} if isinstance(depends, str) else set(depends))


def _references(value: Any, found: set[str]) -> None:
    if isinstance(value, list):
        for item in value:
            _references(item, found)
        return
    if not isinstance(value, dict):
        return
    if len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Ref" and isinstance(argument, str):
            found.add(argument)
        elif key == "Fn::GetAtt":
            found.add(argument[0] if isinstance(argument, list) else str(argument).split(".")[0])
        elif key == "Fn::Sub":
            text, own = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
            found |= {name.split(".")[0] for name in _SUB_VARIABLE.findall(text) if name not in own}
    for item in value.values():
        _references(item, found)


def creation_order(resources: Json) -> list[str]:
    """Dependencies first; a cycle is the template error AWS reports."""
    try:
        return list(graphlib.TopologicalSorter(dependencies(resources)).static_order())
    except graphlib.CycleError as exc:
        raise ValidationError(message=f"Circular dependency between resources: {exc.args[1]}") from exc


PSEUDO_PARAMETERS = frozenset(
    {"AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition", "AWS::Region"}
    | {"AWS::StackId", "AWS::StackName", "AWS::URLSuffix"}
)


def check_template(template: Json) -> None:
    """What AWS refuses before touching anything: a name the template does not define, a cycle.
    (moto would fail half-way with a KeyError, or recurse until Python stops it.)"""
    resources = template.get("Resources") or {}
    known = set(resources) | set(template.get("Parameters") or {}) | PSEUDO_PARAMETERS
    for resource in resources.values():
        unknown = sorted(_named(resource) - known)
        if unknown:
            raise ValidationError(
                message=f"Template format error: Unresolved resource dependencies [{', '.join(unknown)}] "
                "in the Resources block of the template"
            )
    creation_order(resources)


def depended_on(graph: dict[str, set[str]], logical_id: str) -> set[str]:
    """Everything ``logical_id`` needs, transitively: it must outlive ``logical_id``."""
    seen: set[str] = set()
    pending = [logical_id]
    while pending:
        for name in graph.get(pending.pop(), ()):
            if name not in seen:
                seen.add(name)
                pending.append(name)
    return seen
