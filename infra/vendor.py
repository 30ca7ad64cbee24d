"""The X-Ray SDK in the deployment package, without botocore: ``vendor/`` of the project Chalice packages.

Chalice installs ``requirements.txt`` with every dependency, and aws-xray-sdk depends on botocore
(~10 MB, which the Lambda Python runtime already has). A project's ``vendor/`` is zipped as is, so
``requirements-vendor.txt`` is installed there with ``--no-deps``, as wheels for the functions'
platform: wrapt has a C extension, and this machine is not Lambda.

Its modules go with checked-hash bytecode. Lambda cannot write ``__pycache__`` in ``/var/task``, so
without it every cold start compiles the SDK again (import and patch measured here: ~53 ms from
source, ~30 ms from bytecode). pip's own bytecode is checked against the source's mtime, and Chalice
zips every file dated 1980-01-01: on Lambda all of it would be stale. A hash survives the zip.

    vendor_packages(project, "x86_64")   # project/vendor/{aws_xray_sdk,wrapt,...}

Only ever into a copy of the project (``build/<stage>/...`` or a temporary one): ``vendor/`` in the
work tree would be zipped by any plain ``chalice deploy`` too, with whatever it held at the time.
"""

from __future__ import annotations

import json
import shutil
import subprocess  # runs pip with a fixed argument list  # nosec B404
import sys
from collections.abc import Mapping
from pathlib import Path

from chalice.config import Config

from infra.bytecode import compile_app_bytecode

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements-vendor.txt"
# Lambda's names for its architectures -> pip platform tags. manylinux2014 (glibc 2.17) wheels load
# on every Python runtime (python3.11 runs on Amazon Linux 2, glibc 2.26).
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
PIP_TIMEOUT_S = 600
OUTPUT_TAIL = 2000  # characters of pip's output kept in the error


class VendorError(Exception):
    """The vendored packages could not be installed; the message ends with pip's output."""


def lambda_python_version() -> str:
    """``3.11``: the runtime Chalice gives the functions, which follows the interpreter running it."""
    return Config.create().lambda_python_version.removeprefix("python")


def stage_architecture(project: Path, stage: str) -> str:
    """The architecture Chalice builds ``stage`` for: its ``lambda_architecture``, else ``x86_64``."""
    config = json.loads((project / ".chalice" / "config.json").read_text())
    return Config(chalice_stage=stage, config_from_disk=config).lambda_architecture


def pip_command(vendor: Path, architecture: str, requirements: Path = REQUIREMENTS) -> list[str]:
    """The ``pip install`` that fills ``vendor`` with wheels for Lambda on ``architecture``."""
    if architecture not in PLATFORMS:
        raise VendorError(f"unknown Lambda architecture {architecture!r}; expected one of {sorted(PLATFORMS)}")
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",  # botocore comes from the runtime; requirements-vendor.txt lists everything else
        "--no-compile",  # compile_bytecode() does it, checked by hash
        "--only-binary=:all:",  # a source build would target this machine, not Lambda
        "--platform",
        PLATFORMS[architecture],
        "--python-version",
        lambda_python_version(),
        "--implementation",
        "cp",
        "--target",
        str(vendor),
        "-r",
        str(requirements),
    ]


def vendor_packages(
    target_project: Path,
    architecture: str = "x86_64",
    *,
    requirements: Path = REQUIREMENTS,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Install ``requirements`` into ``target_project/vendor`` (replaced whole); return that directory.

    With checked-hash bytecode for the vendored modules and for the rest of the package (``infra.bytecode``).

    ``env`` is pip's environment (default: this process's), e.g. to turn its cache off.
    """
    if target_project.resolve() == ROOT:
        raise VendorError("vendor/ is built into a copy of the project, never into the work tree")
    vendor = target_project / "vendor"
    command = pip_command(vendor, architecture, requirements)
    shutil.rmtree(vendor, ignore_errors=True)  # pip --target keeps what it finds; start from nothing
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell  # nosec B603
            command, capture_output=True, text=True, check=False, timeout=PIP_TIMEOUT_S, env=env
        )
    except subprocess.TimeoutExpired as exc:
        raise VendorError(f"pip did not finish within {PIP_TIMEOUT_S} s installing {requirements.name}") from exc
    if done.returncode != 0:
        raise VendorError(
            f"pip could not install {requirements.name} for {architecture} (exit {done.returncode}):\n{_tail(done)}"
        )
    compile_bytecode(vendor)
    compile_app_bytecode(target_project, lambda_python_version())  # the rest of the package's, some in vendor/
    return vendor


def compile_bytecode(vendor: Path) -> None:
    """Checked-hash ``.pyc`` beside every module in ``vendor``, with paths relative to it.

    Only when this interpreter is the runtime's version: other bytecode would be ignored by Lambda.
    """
    if lambda_python_version() != f"{sys.version_info.major}.{sys.version_info.minor}":
        return
    command = [sys.executable, "-m", "compileall", "-q", "-s", str(vendor)]
    command += ["--invalidation-mode", "checked-hash", str(vendor)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=PIP_TIMEOUT_S)  # noqa: S603 - fixed argv, no shell  # nosec B603
    if done.returncode != 0:
        raise VendorError(f"compileall failed on {vendor} (exit {done.returncode}):\n{_tail(done)}")


def _tail(done: subprocess.CompletedProcess[str]) -> str:
    return (done.stdout + done.stderr).strip()[-OUTPUT_TAIL:]
