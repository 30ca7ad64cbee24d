"""requirements-vendor.txt (what ``vendor/`` of a deployment holds) and the pip command that installs it.

Installing for real needs the package index: tests/integration/test_package.py does it through
``make package`` and checks the zip.
"""

from __future__ import annotations

import importlib.metadata
import sys
from itertools import pairwise
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.vendor import REQUIREMENTS, ROOT, VendorError, compile_bytecode, pip_command, vendor_packages

pytestmark = pytest.mark.unit

RUNTIME_PROVIDED = {"botocore", "boto3"}  # in every Lambda Python runtime


def pins(path: Path) -> dict[str, str]:
    """``{canonical name: specifier}`` of a requirements file (comments and ``-r`` lines skipped)."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirement = Requirement(line)
            found[canonicalize_name(requirement.name)] = str(requirement.specifier)
    return found


def test_given_the_vendor_requirements_then_each_is_pinned_exactly_as_in_requirements_dev() -> None:
    # GIVEN what deployments vendor and what the tests run against
    vendored, dev = pins(REQUIREMENTS), pins(ROOT / "requirements-dev.txt")
    # THEN every vendored package is pinned to one exact version, the one the suite tested
    assert vendored, "requirements-vendor.txt lists nothing"
    for name, specifier in vendored.items():
        assert specifier.startswith("==") and "," not in specifier, (name, specifier)
        assert dev.get(name) == specifier, f"{name}{specifier} in requirements-vendor.txt, {dev.get(name)} in dev"


def test_given_the_installed_sdk_then_the_vendor_requirements_hold_every_dependency_the_runtime_lacks() -> None:
    # GIVEN the runtime dependencies aws-xray-sdk declares (extras left out)
    declared = [Requirement(r) for r in importlib.metadata.requires("aws-xray-sdk") or []]
    needed = {canonicalize_name(r.name) for r in declared if r.marker is None or r.marker.evaluate({"extra": ""})}
    vendored = set(pins(REQUIREMENTS))
    # THEN installed with --no-deps, nothing is missing but what Lambda provides, and that is not bundled
    assert needed - RUNTIME_PROVIDED <= vendored, needed - RUNTIME_PROVIDED - vendored
    assert not vendored & RUNTIME_PROVIDED


@pytest.mark.parametrize(
    ("architecture", "platform"), [("x86_64", "manylinux2014_x86_64"), ("arm64", "manylinux2014_aarch64")]
)
def test_given_an_architecture_when_the_pip_command_is_built_then_it_asks_for_lambda_wheels_only(
    architecture: str, platform: str, tmp_path: Path
) -> None:
    command = pip_command(tmp_path / "vendor", architecture)

    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    assert {"--no-deps", "--only-binary=:all:", "--no-compile", "--quiet"} <= set(command)
    options = dict(pairwise(command))
    assert options["--platform"] == platform
    assert options["--python-version"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert options["--implementation"] == "cp"
    assert options["--target"] == str(tmp_path / "vendor")
    assert options["-r"] == str(REQUIREMENTS)


def test_given_an_unknown_architecture_when_vendoring_then_it_is_refused_before_pip_runs(tmp_path: Path) -> None:
    with pytest.raises(VendorError, match="unknown Lambda architecture 'arm'"):
        vendor_packages(tmp_path, "arm")
    assert not (tmp_path / "vendor").exists()


def test_given_the_work_tree_when_vendoring_then_it_is_refused() -> None:
    with pytest.raises(VendorError, match="never into the work tree"):
        vendor_packages(ROOT)


def test_given_pip_fails_when_vendoring_then_the_error_carries_the_end_of_its_output(tmp_path: Path) -> None:
    # GIVEN a requirements file pip cannot open (it fails before reaching any index)
    missing = tmp_path / "missing-requirements.txt"
    # WHEN vendoring with it
    with pytest.raises(VendorError) as raised:
        vendor_packages(tmp_path / "project", requirements=missing)
    # THEN the error names the file, the architecture and pip's own complaint
    message = str(raised.value)
    assert "missing-requirements.txt for x86_64" in message
    assert "missing-requirements.txt" in message.split("\n", 1)[1]


def test_given_vendored_modules_when_compiled_then_their_bytecode_is_checked_by_hash_not_by_mtime(
    tmp_path: Path,
) -> None:
    # GIVEN a vendored module
    vendor = tmp_path / "vendor"
    (vendor / "pkg").mkdir(parents=True)
    (vendor / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    # WHEN compiled
    compile_bytecode(vendor)
    # THEN its .pyc is hash-checked (flags bit 0 set, bit 1 "check source" set): a zip's mtimes do not matter
    (pyc,) = (vendor / "pkg" / "__pycache__").glob("__init__.cpython-*.pyc")
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags == 0b11
