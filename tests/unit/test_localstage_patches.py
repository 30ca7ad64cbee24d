"""The checked door for patching dependencies (localstage/patches.py): inventory, versions, missing targets, undo."""

from __future__ import annotations

import ast
import functools
import os
import types
from pathlib import Path

import pytest

from localstage import patches
from localstage.iam.coverage import Grant, grants, unused
from localstage.patch_inventory import INVENTORY, PatchTarget
from localstage.patches import (
    Patches,
    PatchTargetError,
    PatchVersionError,
    UnlistedPatchError,
    allowed_from_env,
    check_versions,
    require,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


class Target:
    def method(self) -> str:
        return "original"

    @staticmethod
    def helper() -> str:
        return "static"

    @property
    def value(self) -> str:
        return getattr(self, "_value", "original")

    @value.setter
    def value(self, value: str) -> None:
        self._value = value


_HERE = f"{__name__}.Target"
TEST_INVENTORY = tuple(
    PatchTarget("moto", owner, name, "test", ("here",), instance=instance)
    for owner, name, instance in (
        (_HERE, "method", False),
        (_HERE, "helper", False),
        (_HERE, "value", True),
        (_HERE, "method", True),
        ("types.SimpleNamespace", "renamed_away", True),
    )
)


@pytest.fixture(autouse=True)
def _checks_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no version check remembered and nothing allowed untested."""
    monkeypatch.setattr(patches, "_checked", set())
    monkeypatch.setattr(patches, "_allowed", set())
    monkeypatch.delenv(patches.ALLOW_UNTESTED_ENV, raising=False)


def test_given_the_versions_written_for_then_require_passes_and_a_moved_version_fails_loudly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require("moto")  # GIVEN the pinned moto: nothing to say
    monkeypatch.setitem(patches.WRITTEN_FOR, "moto", "0.0.1")
    with pytest.raises(PatchVersionError, match=r"moto: written for 0\.0\.1, installed 5\.2\.5"):
        require("moto")


def test_given_a_moved_package_when_the_stage_checks_then_it_refuses_naming_each_and_the_override(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN moto and the X-Ray SDK at versions the layer was not written for
    monkeypatch.setitem(patches.WRITTEN_FOR, "moto", "9.9.9")
    monkeypatch.setitem(patches.WRITTEN_FOR, "aws-xray-sdk", "0.1")
    # WHEN the stage checks THEN it refuses, naming both, what to do, and the override
    with pytest.raises(PatchVersionError) as refused:
        check_versions()
    message = str(refused.value)
    assert "moto: written for 9.9.9, installed 5.2.5" in message
    assert "aws-xray-sdk: written for 0.1, installed 2.15.0" in message
    assert "LOCAL_ALLOW_UNTESTED_VERSIONS=moto,aws-xray-sdk" in message and "make setup" in message
    # AND allowing only one still refuses the other
    with pytest.raises(PatchVersionError, match="aws-xray-sdk"):
        check_versions(allow={"moto"})


def test_given_the_override_when_the_stage_checks_then_the_mismatch_is_returned_and_require_lets_it_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(patches.WRITTEN_FOR, "moto", "9.9.9")
    allowed = allowed_from_env({patches.ALLOW_UNTESTED_ENV: " moto "})
    assert check_versions(allow=allowed) == {"moto": ("9.9.9", "5.2.5")}
    require("moto")  # THEN no refusal: the person testing the upgrade asked for it
    with Patches(TEST_INVENTORY) as applied:
        applied.wrap("moto", Target, "method", lambda original: lambda self: "wrapped")
        assert Target().method() == "wrapped"


def test_given_an_override_naming_an_unknown_package_then_it_is_refused() -> None:
    with pytest.raises(ValueError, match="LOCAL_ALLOW_UNTESTED_VERSIONS names mot"):
        allowed_from_env({patches.ALLOW_UNTESTED_ENV: "mot"})


def test_given_a_wrap_when_undone_then_every_attribute_is_as_before() -> None:
    with Patches(TEST_INVENTORY) as applied:
        applied.wrap("moto", Target, "method", lambda original: lambda self: "wrapped " + original(self))
        applied.wrap("moto", Target, "helper", lambda original: staticmethod(lambda: "patched " + original()))
        assert Target().method() == "wrapped original"
        assert Target.helper() == "patched static"
        assert applied.active
        assert {(a.target.owner, a.target.attribute) for a in patches.applied()} >= {
            (_HERE, "method"),
            (_HERE, "helper"),
        }
    # THEN the originals are back, the staticmethod a staticmethod again, and nothing is listed as applied
    assert Target().method() == "original"
    assert Target.helper() == "static" and isinstance(vars(Target)["helper"], staticmethod)
    assert not [a for a in patches.applied() if a.target.owner == _HERE]


def test_given_an_object_when_a_property_and_a_method_are_replaced_then_undo_restores_both() -> None:
    target = Target()
    with Patches(TEST_INVENTORY) as applied:
        applied.set("moto", target, "value", "set")  # through the property's setter
        applied.wrap("moto", target, "method", lambda original: lambda: "shadowed " + original())
        assert (target.value, target.method()) == ("set", "shadowed original")
    assert target.value == "original"
    assert "method" not in vars(target)  # the shadow is gone, not replaced by a bound method


def test_given_a_target_that_moved_when_wrapping_then_it_fails_naming_it() -> None:
    module = types.SimpleNamespace()
    with pytest.raises(PatchTargetError, match="renamed_away is gone from moto"):
        Patches(TEST_INVENTORY).wrap("moto", module, "renamed_away", lambda original: original)


def test_given_a_target_the_inventory_does_not_list_when_wrapping_then_it_is_refused() -> None:
    with pytest.raises(UnlistedPatchError, match=r"Target\.method is not in localstage/patch_inventory\.py"):
        Patches().wrap("moto", Target, "method", lambda original: original)
    assert Target().method() == "original"


class Brittle:
    """An object whose attributes cannot be set once ``locked``."""

    locked = False

    def __init__(self) -> None:
        self.value = "original"

    def __setattr__(self, name: str, value: object) -> None:
        if type(self).locked:
            raise AttributeError(f"{name} is locked")
        super().__setattr__(name, value)


def test_given_a_failing_restore_when_undone_then_the_others_are_still_restored_and_all_failures_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inventory = (*TEST_INVENTORY, PatchTarget("moto", f"{__name__}.Brittle", "value", "test", ("here",), True))
    brittle = Brittle()
    applied = Patches(inventory)
    applied.wrap("moto", Target, "method", lambda original: lambda self: "wrapped")
    applied.set("moto", brittle, "value", "patched")
    monkeypatch.setattr(Brittle, "locked", True)  # GIVEN one restore that will fail
    with pytest.raises(ExceptionGroup, match="some patches could not be undone"):
        applied.undo()
    assert Target().method() == "original"  # THEN the other restore still ran


@functools.cache
def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name.startswith("test")}


def test_every_inventory_entry_names_behaviour_tests_that_exist() -> None:
    """Each patch names the tests that fail without it; a renamed or deleted test breaks this, not the proof."""
    for target in INVENTORY:
        assert target.package in patches.WRITTEN_FOR, target
        assert target.proof, target
        for proof in target.proof:
            path, _, name = proof.partition("::")
            assert name in _test_names(ROOT / path), f"{target.owner}.{target.attribute}: {proof} does not exist"


def test_the_inventory_table_in_docs_is_the_inventory() -> None:
    text = (ROOT / "docs/local-stage.md").read_text(encoding="utf-8")
    table = text.split("<!-- patch-inventory:begin -->\n", 1)[1].split("<!-- patch-inventory:end -->", 1)[0]
    assert table == patches.inventory_markdown(), "run: python -m localstage.patches markdown"


MAX_MODULE_LINES = 400
# Not the project's code: environments, caches, build output, what make package vendors.
NOT_SOURCE = frozenset({".venv", ".git", "build", "dist", "out", "vendor", ".chalice", ".localstage", "__pycache__"})


def python_modules(root: Path) -> list[Path]:
    """Every .py file of the project under ``root``, outside what NOT_SOURCE names (none is generated).

    The walk does not enter those directories at all: ``rglob`` over the virtualenv took 10 to 20 s.
    """
    found: list[Path] = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [
            d for d in subdirectories if d not in NOT_SOURCE and not (d.startswith(".") and d.endswith("_cache"))
        ]
        found += [Path(directory) / name for name in files if name.endswith(".py")]
    return sorted(found)


def test_no_module_in_the_repository_is_over_400_lines() -> None:
    """The house limit (the team guide), tests and scripts included: a long module is split by subject."""
    modules = python_modules(ROOT)
    long = {
        str(path.relative_to(ROOT)): lines
        for path in modules
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    # THEN none is over; and the walk saw the whole project (app.py, a test, a notebook), not an empty tree
    assert not long, long
    assert {"app.py", "tests/unit/test_localstage_patches.py", "notebooks/load_test.py"} <= {
        str(path.relative_to(ROOT)) for path in modules
    }


def test_given_a_long_module_and_one_in_the_virtualenv_then_only_the_projects_is_found(tmp_path: Path) -> None:
    # GIVEN a project tree with a module in the package, one in .venv and one in build output
    for relative in ("pkg/long.py", ".venv/lib/site.py", "build/dev/app.py", "pkg/__pycache__/x.py"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    # WHEN the project's modules are listed
    found = [str(path.relative_to(tmp_path)) for path in python_modules(tmp_path)]
    # THEN only the project's own module is, and it is over the limit
    assert found == ["pkg/long.py"]
    assert len((tmp_path / found[0]).read_text().splitlines()) > MAX_MODULE_LINES


def test_given_grants_and_calls_then_unused_lists_what_no_call_matched() -> None:
    policy = {
        "Statement": [
            {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"], "Resource": ["arn:t/a", "arn:t/b"]},
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::bucket/*"},
            {"Effect": "Deny", "Action": "*", "Resource": "*"},
        ]
    }
    assert len(grants(policy)) == 5  # 2 x 2 + 1; a Deny grants nothing
    used = [("dynamodb:getitem", "arn:t/a"), ("s3:PutObject", "arn:aws:s3:::bucket/uploads/x.png")]
    assert set(unused({"p": policy}, used)) == {
        Grant("dynamodb:PutItem", "arn:t/a"),
        Grant("dynamodb:GetItem", "arn:t/b"),
        Grant("dynamodb:PutItem", "arn:t/b"),
    }
