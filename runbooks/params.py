"""Parameter checks for the runbooks: papermill only logs an unknown parameter, so the notebooks check.

A notebook snapshots its globals before the ``parameters`` cell; papermill injects its values in a
cell right after that one. Every global that appeared since the snapshot is therefore either a
declared parameter or a name papermill injected, and a name that is not declared is a typo the run
must not silently ignore::

    _before = snapshot(globals())          # cell before "parameters"
    # parameters cell, then papermill's injected cell
    P = validate(globals(), _before, SPEC) # raises ParameterError naming every problem

Papermill's ``-p name value`` turns only numbers and booleans into Python values; a list or a mapping
arrives as its text (``-p memory_sizes "[128, 256]"``). A parameter whose default is not a string is
therefore read back from such text (JSON or a Python literal) before it is checked, so ``-p`` works as
papermill users type it, and ``-y`` (YAML) as well.
"""

from __future__ import annotations

import ast
import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

Check = Callable[[Any], str | None]  # a problem with the value, or None when it is fine


class ParameterError(ValueError):
    """One or more runbook parameters are unknown or have a bad value."""


@dataclass(frozen=True)
class Param:
    default: Any
    check: Check
    help: str
    secret: bool = False  # a password or token: its value is never printed, in errors or in reports


def coerce(value: Any, default: Any) -> Any:
    """``value`` as papermill's ``-p`` gave it, read as a list, mapping or number where the default is one."""
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        return value
    try:
        return json.loads(value)
    except ValueError:
        pass
    try:
        return ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        return value  # the check names the problem with the text as given


def snapshot(namespace: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(namespace)


def validate(namespace: Mapping[str, Any], before: Iterable[str], spec: Mapping[str, Param]) -> dict[str, Any]:
    """The declared parameters' values; ``ParameterError`` listing every unknown name and bad value."""
    known = set(before)
    new = [name for name in namespace if name not in known and not name.startswith("_")]
    problems = [f"unknown parameter {name!r} (known: {', '.join(sorted(spec))})" for name in new if name not in spec]
    problems += [f"parameter {name!r} is missing" for name in spec if name not in namespace]
    values = {name: coerce(namespace[name], param.default) for name, param in spec.items() if name in namespace}
    for name, param in spec.items():
        if name in values:
            problem = param.check(values[name])
            if problem:
                shown = "(secret)" if param.secret else repr(values[name])
                problems.append(f"parameter {name!r} = {shown}: {problem} ({param.help})")
    if problems:
        raise ParameterError("; ".join(problems))
    return values


# Checks, each returning a problem or None.


def is_number(low: float | None = None, high: float | None = None) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        if low is not None and value < low:
            return f"must be at least {low}"
        if high is not None and value > high:
            return f"must be at most {high}"
        return None

    return check


def is_int(low: int | None = None, high: int | None = None) -> Check:
    number = is_number(low, high)

    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be a whole number"
        return number(value)

    return check


def is_bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be True or False"


def is_str(value: Any) -> str | None:
    return None if isinstance(value, str) else "must be a string"


def is_nonempty_str(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else "must be a non-empty string"


def one_of(*choices: Any) -> Check:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(map(repr, choices))}"

    return check


def is_url(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a URL string"
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return "must be an http(s) URL such as http://127.0.0.1:8000"
    return None


def is_optional(check: Check) -> Check:
    def optional(value: Any) -> str | None:
        return None if value in (None, "") else check(value)

    return optional


def is_list_of(item: Check, min_len: int = 1, max_len: int = 1000) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, list | tuple):
            return "must be a list"
        if not min_len <= len(value) <= max_len:
            return f"must have {min_len} to {max_len} entries"
        for index, entry in enumerate(value):
            problem = item(entry)
            if problem:
                return f"entry {index}: {problem}"
        return None

    return check


def is_weights(keys: Iterable[str]) -> Check:
    """A mapping of known keys to non-negative weights, at least one positive."""
    allowed = set(keys)

    def check(value: Any) -> str | None:
        if not isinstance(value, dict) or not value:
            return "must be a non-empty mapping of name to weight"
        unknown = set(value) - allowed
        if unknown:
            return f"unknown keys {sorted(unknown)} (known: {sorted(allowed)})"
        if any(isinstance(w, bool) or not isinstance(w, int | float) or w < 0 for w in value.values()):
            return "weights must be non-negative numbers"
        if not any(value.values()):
            return "at least one weight must be positive"
        return None

    return check


def is_loopback_url(value: Any) -> str | None:
    problem = is_url(value)
    if problem:
        return problem
    host = urlparse(value).hostname or ""
    if host == "localhost":
        return None
    try:
        return None if ipaddress.ip_address(host).is_loopback else "is not a loopback address"
    except ValueError:
        return "is not a loopback address"
