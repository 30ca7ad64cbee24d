"""The checked door for patching dependencies (localstage/patches.py): versions, missing targets, undo."""

from __future__ import annotations

import types

import pytest

from localstage import patches
from localstage.iam.coverage import Grant, grants, unused
from localstage.patches import Patches, PatchTargetError, PatchVersionError, require

pytestmark = pytest.mark.unit


class Target:
    def method(self) -> str:
        return "original"

    @staticmethod
    def helper() -> str:
        return "static"


def test_given_the_versions_written_for_then_require_passes_and_a_moved_version_fails_loudly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require("moto")  # GIVEN the pinned moto: nothing to say
    monkeypatch.setitem(patches.WRITTEN_FOR, "moto", "0.0.1")
    with pytest.raises(PatchVersionError, match=r"patches moto 0\.0\.1, but moto 5\.2\.5 is installed"):
        require("moto")


def test_given_a_wrap_when_undone_then_every_attribute_is_as_before() -> None:
    with Patches() as applied:
        applied.wrap("moto", Target, "method", lambda original: lambda self: "wrapped " + original(self))
        applied.wrap("moto", Target, "helper", lambda original: staticmethod(lambda: "patched " + original()))
        assert Target().method() == "wrapped original"
        assert Target.helper() == "patched static"
        assert applied.active
    # THEN the originals are back, the staticmethod a staticmethod again
    assert Target().method() == "original"
    assert Target.helper() == "static" and isinstance(vars(Target)["helper"], staticmethod)


def test_given_a_target_that_moved_when_wrapping_then_it_fails_naming_it() -> None:
    module = types.SimpleNamespace()
    with pytest.raises(PatchTargetError, match="renamed_away is gone from moto"):
        Patches().wrap("moto", module, "renamed_away", lambda original: original)


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
