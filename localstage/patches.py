"""The one door for changing a dependency's internals: checked against the versions it was written for.

The local stage needs a few things moto, botocore and Chalice do not offer as an API (a credential per
invocation thread, a hook in moto's Step Functions interpreter, a read of moto's IAM state). Each such
patch goes through ``Patches.wrap``, which

- checks that the installed package is the version the patch was written for (``WRITTEN_FOR``) and
  raises ``PatchVersionError`` otherwise: a moved target fails the stage at start-up, loudly, instead
  of silently doing nothing;
- raises ``PatchTargetError`` if the attribute to wrap does not exist (a renamed method);
- records the original, so ``undo()`` restores every patch it made, in reverse order, as pytest's
  ``monkeypatch`` does.

Reads of a dependency's private state (moto's backends) call ``require`` first, for the same reason.
Upgrading one of these packages means re-reading every use of it here, then bumping ``WRITTEN_FOR``.
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The exact versions every patch and private read in localstage/ was checked against (requirements-dev.txt).
WRITTEN_FOR = {"moto": "5.2.5", "botocore": "1.44.8", "chalice": "1.34.0"}


class PatchVersionError(RuntimeError):
    """The installed package is not the version the local stage's patches were written for."""


class PatchTargetError(RuntimeError):
    """The attribute a patch wraps does not exist (the dependency renamed or removed it)."""


def require(package: str) -> None:
    """Fail loudly unless ``package`` is installed at the version in ``WRITTEN_FOR``."""
    expected = WRITTEN_FOR[package]
    installed = importlib.metadata.version(package)
    if installed != expected:
        raise PatchVersionError(
            f"the local stage patches {package} {expected}, but {package} {installed} is installed: "
            f"re-check every use of {package} in localstage/patches.py's callers, then update WRITTEN_FOR"
        )


@dataclass
class Patches:
    """A set of wraps that can be undone together (``with Patches() as p: p.wrap(...)`` or ``undo()``)."""

    _undo: list[tuple[Any, str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, package: str, owner: Any, name: str, wrapper: Callable[[Any], Any]) -> None:
        """Replace ``owner.name`` by ``wrapper(original)``, after checking ``package``'s version."""
        require(package)
        with self._lock:
            try:
                original = getattr(owner, name)
            except AttributeError:
                raise PatchTargetError(
                    f"{getattr(owner, '__qualname__', owner)!s}.{name} is gone from {package} "
                    f"{WRITTEN_FOR[package]}: the patch that wraps it must be rewritten"
                ) from None
            # The raw attribute (a staticmethod stays a staticmethod when restored).
            raw = vars(owner).get(name, original) if isinstance(owner, type) else original
            self._undo.append((owner, name, raw))
            setattr(owner, name, wrapper(original))

    def undo(self) -> None:
        """Restore every wrapped attribute, newest first; each restore runs even if another failed."""
        with self._lock:
            pending, self._undo = self._undo, []
        errors: list[Exception] = []
        for owner, name, original in reversed(pending):
            try:
                setattr(owner, name, original)
            except Exception as exc:  # keep restoring the rest, then report every failure
                errors.append(exc)
        if errors:
            raise ExceptionGroup("some patches could not be undone", errors)

    @property
    def active(self) -> bool:
        return bool(self._undo)

    def __enter__(self) -> Patches:
        return self

    def __exit__(self, *exc: object) -> None:
        self.undo()
