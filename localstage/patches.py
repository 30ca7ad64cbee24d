"""The one door for changing a dependency's internals: inventoried, version-checked, undone completely.

The local stage needs things moto, botocore, Chalice and the X-Ray SDK do not offer as an API (a
credential per invocation thread, hooks in moto's Step Functions interpreter and event delivery, a
per-thread X-Ray context). Every such change is an entry of ``localstage.patch_inventory.INVENTORY``
(package, owner, attribute, why, and the behaviour test that fails without it) and is made through
``Patches``, which

- refuses a target the inventory does not list (``UnlistedPatchError``): the inventory is the whole
  list, so reviewing an upgrade means reading one table;
- checks that the installed package is the version the patch was written for (``WRITTEN_FOR``) and
  raises ``PatchVersionError`` otherwise, unless that package is allowed untested
  (``LOCAL_ALLOW_UNTESTED_VERSIONS``, for whoever is testing an upgrade);
- raises ``PatchTargetError`` if the attribute does not exist (a renamed method): never skipped;
- records the original, so ``undo()`` restores every change it made, newest first, each restore
  running even if another failed, as pytest's ``monkeypatch`` does.

``applied()`` lists every change currently in place in this process, whichever ``Patches`` made it
(the stage's own, and the module-level ones of hooks shared by several stages or emulators): the test
of the whole layer checks it is the inventory after start and empty after stop.

Reads of a dependency's private state (moto's backends) call ``require`` first, for the same reason.
``check_versions`` is what the stage runs before anything else: a clear refusal naming every package
whose installed version differs. Upgrading one of these packages is described in
docs/local-stage.md, "The compatibility layer".
"""

from __future__ import annotations

import importlib.metadata
import os
import threading
import weakref
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from localstage.patch_inventory import INVENTORY, PatchTarget

# The exact versions every patch and private read in localstage/ was checked against (requirements-dev.txt).
WRITTEN_FOR = {
    "moto": "5.2.5",
    "botocore": "1.44.8",
    "chalice": "1.34.0",
    "aws-xray-sdk": "2.15.0",
    "jsonpath-ng": "1.16.0",  # moto's JSONPath library, whose parse the stage caches
    "antlr4-python3-runtime": "4.13.2",  # moto's Step Functions parser, whose kept trees answer getText once
}
# Comma-separated packages whose version may differ from WRITTEN_FOR (testing an upgrade); the stage warns.
ALLOW_UNTESTED_ENV = "LOCAL_ALLOW_UNTESTED_VERSIONS"


class PatchVersionError(RuntimeError):
    """The installed package is not the version the local stage's patches were written for."""


class PatchTargetError(RuntimeError):
    """The attribute a patch wraps does not exist (the dependency renamed or removed it)."""


class UnlistedPatchError(RuntimeError):
    """A patch of a target ``localstage.patch_inventory.INVENTORY`` does not list."""


_allowed: set[str] = set()  # packages allowed untested by check_versions(allow=...)
_checked: set[tuple[str, str]] = set()  # (package, version) already found installed


def installed_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def allowed_from_env(env: Mapping[str, str] | None = None) -> frozenset[str]:
    """The packages ``LOCAL_ALLOW_UNTESTED_VERSIONS`` names (``moto`` or ``moto,botocore``)."""
    value = (os.environ if env is None else env).get(ALLOW_UNTESTED_ENV, "")
    names = frozenset(name.strip() for name in value.split(",") if name.strip())
    unknown = sorted(names - set(WRITTEN_FOR))
    if unknown:
        raise ValueError(f"{ALLOW_UNTESTED_ENV} names {', '.join(unknown)}; the layer patches {', '.join(WRITTEN_FOR)}")
    return names


def mismatches() -> dict[str, tuple[str, str | None]]:
    """``package -> (written for, installed)`` for every package whose installed version differs."""
    found = {package: (expected, installed_version(package)) for package, expected in WRITTEN_FOR.items()}
    return {package: pair for package, pair in found.items() if pair[0] != pair[1]}


def version_refusal(found: Mapping[str, tuple[str, str | None]]) -> str:
    """The message the stage refuses to start with."""
    lines = [
        f"  {package}: written for {expected}, installed {installed or 'nothing'}"
        for package, (expected, installed) in found.items()
    ]
    return (
        "the local stage patches these packages' internals at the versions it was written for, "
        "and the installed ones differ:\n" + "\n".join(lines) + "\n"
        "Install requirements-dev.txt (make setup), or, to test an upgrade, start with "
        f"{ALLOW_UNTESTED_ENV}={','.join(found)} and follow docs/local-stage.md, 'The compatibility layer'."
    )


def check_versions(allow: Collection[str] = ()) -> dict[str, tuple[str, str | None]]:
    """Refuse (``PatchVersionError``) unless every patched package is the version written for.

    Packages in ``allow`` may differ: their mismatches are returned (the stage logs them and says so
    in its banner) and ``require`` lets them through from now on.
    """
    found = mismatches()
    refused = {package: pair for package, pair in found.items() if package not in allow}
    if refused:
        raise PatchVersionError(version_refusal(refused))
    _allowed.update(allow)
    return found


def require(package: str) -> None:
    """Fail loudly unless ``package`` is installed at the version in ``WRITTEN_FOR`` (or allowed untested)."""
    expected = WRITTEN_FOR[package]
    if (package, expected) in _checked or package in _allowed or package in allowed_from_env():
        return
    installed = installed_version(package)
    if installed != expected:
        raise PatchVersionError(version_refusal({package: (expected, installed)}))
    _checked.add((package, expected))


def owner_path(owner: Any) -> str:
    """``moto.sns.models.Subscription`` for a class, the module's name for a module, the class's for an object."""
    if isinstance(owner, ModuleType):
        return owner.__name__
    kind = owner if isinstance(owner, type) else type(owner)
    return f"{kind.__module__}.{kind.__qualname__}"


def inventory_entry(package: str, owner: Any, name: str, inventory: Collection[PatchTarget] = INVENTORY) -> PatchTarget:
    """The inventory's entry for ``owner.name``, or ``UnlistedPatchError`` saying what to add."""
    if isinstance(owner, ModuleType | type):
        paths = {owner_path(owner)}
    else:  # an object the stage made at run time: listed under its class or a base class
        paths = {f"{kind.__module__}.{kind.__qualname__}" for kind in type(owner).__mro__}
    for target in inventory:
        if target.attribute == name and target.owner in paths and target.package == package:
            return target
    raise UnlistedPatchError(
        f"{package}: {owner_path(owner)}.{name} is not in localstage/patch_inventory.py: add a PatchTarget "
        "naming its package, owner, attribute, why, and the behaviour test that fails without it"
    )


@dataclass(frozen=True)
class Applied:
    """One change in place: ``owner.attribute`` replaced, ``original`` what ``undo`` puts back."""

    target: PatchTarget
    owner: Any
    original: Any
    replacement: Any
    shadowed: bool  # the replacement is an instance attribute hiding a class attribute: undo deletes it


_live: weakref.WeakSet[Patches] = weakref.WeakSet()


def applied() -> list[Applied]:
    """Every change any ``Patches`` of this process has in place now."""
    return [record for patches in list(_live) for record in patches.records]


@dataclass(eq=False)
class Patches:
    """A set of changes that can be undone together (``with Patches() as p: p.wrap(...)`` or ``undo()``).

    ``inventory``: the targets it may change (``INVENTORY``; a test of the layer itself gives its own).
    """

    inventory: Collection[PatchTarget] = INVENTORY
    _undo: list[Applied] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        _live.add(self)

    def wrap(self, package: str, owner: Any, name: str, wrapper: Callable[[Any], Any]) -> None:
        """Replace ``owner.name`` by ``wrapper(original)``, after checking the inventory and ``package``'s version."""
        target = inventory_entry(package, owner, name, self.inventory)
        require(package)
        with self._lock:
            try:
                original = getattr(owner, name)
            except AttributeError:
                raise PatchTargetError(
                    f"{owner_path(owner)}.{name} is gone from {package} "
                    f"{installed_version(package)}: the patch that wraps it must be rewritten"
                ) from None
            raw, shadowed = original, False
            if isinstance(owner, type | ModuleType):
                raw = vars(owner).get(name, original)  # a staticmethod stays a staticmethod when restored
            elif name not in getattr(owner, "__dict__", {}):
                # A class attribute seen through the object: a data descriptor (a property, ``__class__``)
                # takes the original back through its setter; anything else is shadowed, then unshadowed.
                declared = next((vars(kind)[name] for kind in type(owner).__mro__ if name in vars(kind)), None)
                shadowed = not hasattr(declared, "__set__")
            replacement = wrapper(original)
            setattr(owner, name, replacement)
            self._undo.append(Applied(target, owner, raw, replacement, shadowed))

    def set(self, package: str, owner: Any, name: str, value: Any) -> None:
        """Replace ``owner.name`` by ``value`` (same checks and undo as ``wrap``)."""
        self.wrap(package, owner, name, lambda _original: value)

    def undo(self) -> None:
        """Restore every changed attribute, newest first; each restore runs even if another failed."""
        with self._lock:
            pending, self._undo = self._undo, []
        errors: list[Exception] = []
        for record in reversed(pending):
            try:
                if record.shadowed:
                    delattr(record.owner, record.target.attribute)
                else:
                    setattr(record.owner, record.target.attribute, record.original)
            except Exception as exc:  # keep restoring the rest, then report every failure
                errors.append(exc)
        if errors:
            raise ExceptionGroup("some patches could not be undone", errors)

    @property
    def records(self) -> list[Applied]:
        with self._lock:
            return list(self._undo)

    @property
    def active(self) -> bool:
        return bool(self._undo)

    def __enter__(self) -> Patches:
        return self

    def __exit__(self, *exc: object) -> None:
        self.undo()


def inventory_markdown(inventory: Collection[PatchTarget] = INVENTORY) -> str:
    """The inventory as the table in docs/local-stage.md ("The compatibility layer"), which a test keeps in sync."""
    rows = ["| package | owner | attribute | why | proved by |", "|---|---|---|---|---|"]
    for target in inventory:
        owner = f"{target.owner} (an instance)" if target.instance else target.owner
        proofs = "<br>".join(f"`{proof.rpartition('/')[2]}`" for proof in target.proof)
        rows.append(f"| {target.package} | `{owner}` | `{target.attribute}` | {target.why} | {proofs} |")
    return "\n".join(rows) + "\n"


def proofs(package: str, inventory: Collection[PatchTarget] = INVENTORY) -> list[str]:
    """Every behaviour test of ``package``'s patches, once each (what to run after upgrading it)."""
    return list(dict.fromkeys(proof for target in inventory if target.package == package for proof in target.proof))


def main(argv: list[str] | None = None) -> int:
    """``python -m localstage.patches markdown`` | ``proofs PACKAGE`` | ``check``."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if args == ["markdown"]:
        print(inventory_markdown(), end="")
    elif len(args) == 2 and args[0] == "proofs" and args[1] in WRITTEN_FOR:
        print("\n".join(proofs(args[1])))
    elif args == ["check"]:
        found = mismatches()
        print(version_refusal(found) if found else f"installed as written for: {WRITTEN_FOR}")
        return 1 if found else 0
    else:
        print(f"usage: python -m localstage.patches markdown | proofs {{{','.join(WRITTEN_FOR)}}} | check")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
