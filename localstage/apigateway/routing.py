"""Which resource of a REST API a request path reaches, and its path parameters, as API Gateway matches.

Per path part, a literal part wins over a ``{param}`` part, which wins over a greedy ``{proxy+}``
(which takes one or more remaining parts); when a more specific branch leads nowhere, the next one
is tried. A trailing slash is ignored (``/items/`` is ``/items``), except for the root.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Target = TypeVar("Target")


@dataclass
class _Node(Generic[Target]):
    literal: dict[str, _Node[Target]] = field(default_factory=dict)
    variable: tuple[str, _Node[Target]] | None = None
    greedy: tuple[str, Target] | None = None
    target: Target | None = None


class RouteTable(Generic[Target]):
    """Resource paths (``/items/{id}``, ``/files/{proxy+}``) -> what each one serves."""

    def __init__(self, routes: Iterable[tuple[str, Target]]) -> None:
        self._root: _Node[Target] = _Node()
        for path, target in routes:
            self._add(path, target)

    def _add(self, path: str, target: Target) -> None:
        node = self._root
        for part in _parts(path):
            if part.startswith("{") and part.endswith("+}"):
                node.greedy = (part[1:-2], target)
                return
            if part.startswith("{") and part.endswith("}"):
                if node.variable is None:
                    node.variable = (part[1:-1], _Node())
                node = node.variable[1]
            else:
                node = node.literal.setdefault(part, _Node())
        node.target = target

    def match(self, path: str) -> tuple[Target, dict[str, str]] | None:
        """The target serving ``path`` and the path parameters it captures, or ``None``."""
        return _match(self._root, _parts(path), {})


def _parts(path: str) -> list[str]:
    trimmed = path.strip("/")
    return trimmed.split("/") if trimmed else []


def _match(node: _Node[Target], parts: list[str], captured: dict[str, str]) -> tuple[Target, dict[str, str]] | None:
    if not parts:
        return (node.target, captured) if node.target is not None else None
    head, rest = parts[0], parts[1:]
    literal = node.literal.get(head)
    if literal is not None:
        found = _match(literal, rest, captured)
        if found is not None:
            return found
    if node.variable is not None and head:
        name, child = node.variable
        found = _match(child, rest, {**captured, name: head})
        if found is not None:
            return found
    if node.greedy is not None:
        name, target = node.greedy
        return target, {**captured, name: "/".join(parts)}
    return None
