"""Deployment package: what ``chalice package`` would upload, and what must never be in it.

Chalice caches the zip under ``.chalice/deployments`` and reuses it while the requirements and the
app files hash the same, so the package is built from a copy of the files Chalice packages
(``app.py``, ``chalicelib/``, ``requirements.txt``, ``.chalice/*.json``) in a temporary project,
with ``vendor/`` installed into it as ``make package`` does (``infra.vendor``: the X-Ray SDK and
wrapt, no botocore), and pip's cache off: every run builds from scratch and the work tree's cache is
left alone. The files are copied as ``make package`` copies them (``infra.bytecode.copy_packaged``:
without a work tree's ``__pycache__``), and the package holds checked-hash bytecode for every module
(``infra.bytecode``): the figure counts it, and any module left without it.
"""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from importlib.util import cache_from_source
from pathlib import Path

from bench.environment import child_environment
from bench.figures import Figure, megabytes
from bench.registry import Options
from infra.bytecode import copy_packaged
from infra.vendor import VendorError, stage_architecture, vendor_packages

MAX_BYTES = 2 * 1024 * 1024
BAR = "<= 2 MB zipped, no dev packages"
# Never in a Lambda package: dev-side libraries, and boto3/botocore which the runtime provides.
FORBIDDEN = ("pandas", "numpy", "jupyter*", "moto", "pytest", "_pytest", "matplotlib", "papermill", "boto3", "botocore")
# Always in it: the X-Ray SDK and its one dependency the runtime lacks, vendored (requirements-vendor.txt).
REQUIRED = ("aws_xray_sdk", "wrapt")
ZIP_NAME = "deployment.zip"


class PackageError(RuntimeError):
    """Vendoring or ``chalice package`` failed; the message carries the end of the output."""


def distribution_name(top_level: str) -> str:
    """``numpy-2.4.6.dist-info`` -> ``numpy``; ``six.py`` -> ``six``; ``jwt`` -> ``jwt``."""
    name = top_level
    for suffix in (".dist-info", ".egg-info", ".data", ".py", ".pth", ".libs"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            if suffix in (".dist-info", ".egg-info", ".data"):
                name = name.split("-", 1)[0]
            break
    return name.lower().replace("-", "_")


@dataclass(frozen=True)
class ZipContents:
    size_bytes: int
    top_level: list[str]  # first path components, sorted
    forbidden: list[str]  # those naming a forbidden package
    stray_bytecode_files: int  # bytecode Lambda would not use: checked by mtime (a work tree's __pycache__)
    missing: list[str] = field(default_factory=list)  # required packages not in it
    checked_bytecode_files: int = 0  # checked-hash bytecode, compiled on purpose (infra.vendor, infra.bytecode)
    modules_without_bytecode: list[str] = field(default_factory=list)  # compiled at every cold start


CHECKED_HASH_FLAGS = 0b11  # PEP 552: hash-based, checked against the source


def _header(archive: zipfile.ZipFile, name: str) -> bytes:
    """A bytecode file's 16-byte header, without inflating the rest of it."""
    with archive.open(name) as member:
        return member.read(16)


def _checked_hash(header: bytes) -> bool:
    return len(header) >= 8 and int.from_bytes(header[4:8], "little") == CHECKED_HASH_FLAGS


def inspect_zip(
    path: Path, forbidden: tuple[str, ...] = FORBIDDEN, required: tuple[str, ...] = REQUIRED
) -> ZipContents:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        bytecode = {name: _checked_hash(_header(archive, name)) for name in names if name.endswith(".pyc")}
    top_level = sorted({name.split("/", 1)[0] for name in names if name})
    bad = [t for t in top_level if any(fnmatch.fnmatch(distribution_name(t), pattern) for pattern in forbidden)]
    missing = [package for package in required if package not in top_level]
    checked = {name for name, ok in bytecode.items() if ok}
    uncompiled = [name for name in names if name.endswith(".py") and cache_from_source(name) not in checked]
    return ZipContents(
        path.stat().st_size, top_level, bad, len(bytecode) - len(checked), missing, len(checked), uncompiled
    )


def copy_packaged_files(project_root: Path, target: Path) -> None:
    """What ``make package`` copies (``infra.bytecode.copy_packaged``), and ``.chalice``'s configuration."""
    copy_packaged(project_root, target)
    (target / ".chalice").mkdir()
    for config in (project_root / ".chalice").glob("*.json"):
        shutil.copy2(config, target / ".chalice" / config.name)


def chalice_binary() -> str:
    beside = Path(sys.executable).with_name("chalice")
    return str(beside) if beside.exists() else "chalice"


def build_package(project_root: Path, stage: str, workdir: Path) -> Path:
    project = workdir / "project"
    project.mkdir()
    copy_packaged_files(project_root, project)
    env = child_environment(PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    try:
        vendor_packages(project, stage_architecture(project, stage), env=env)
    except VendorError as exc:
        raise PackageError(str(exc)) from exc
    out = workdir / "out"
    done = subprocess.run(  # noqa: S603 - the virtualenv's own chalice on a fixed command line
        [chalice_binary(), "--project-dir", str(project), "package", "--stage", stage, str(out)],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        raise PackageError(f"chalice package exited {done.returncode}: {output[-800:]}")
    if not (out / ZIP_NAME).exists():
        raise PackageError(f"chalice package wrote no {ZIP_NAME} (found {sorted(p.name for p in out.iterdir())})")
    return out / ZIP_NAME


@dataclass
class PackageResult:
    stage: str
    contents: ZipContents | None = None
    error: str = ""

    @property
    def name(self) -> str:
        return f"deployment package (chalice package --stage {self.stage})"

    def figures(self) -> list[Figure]:
        if self.contents is None:
            return [Figure.failed(self.name, BAR, self.error)]
        c = self.contents
        problems = [f"{megabytes(c.size_bytes)} is over {megabytes(MAX_BYTES)}"] if c.size_bytes > MAX_BYTES else []
        if c.forbidden:
            problems.append("forbidden packages inside: " + ", ".join(c.forbidden))
        if c.missing:
            problems.append("vendored packages missing: " + ", ".join(c.missing))
        note = "top level: " + ", ".join(c.top_level)
        note += f"; {c.checked_bytecode_files} checked-hash bytecode files (vendored packages, app.py, chalicelib, "
        note += f"Chalice's runtime, PyJWT); {len(c.modules_without_bytecode)} modules without bytecode"
        if c.stray_bytecode_files:
            note += f"; {c.stray_bytecode_files} bytecode files checked by mtime, stale on Lambda"
        if problems:
            note += "; " + "; ".join(problems)
        return [
            Figure(
                name=self.name,
                value=megabytes(c.size_bytes),
                bar=BAR,
                holds=not problems,
                note=note,
            )
        ]

    def details(self) -> str:
        return ""


def measure_package(options: Options, stage: str = "dev") -> PackageResult:
    with tempfile.TemporaryDirectory(prefix="bench-package-") as workdir:
        try:
            zip_path = build_package(options.project_root, stage, Path(workdir))
        except (PackageError, subprocess.TimeoutExpired, OSError) as exc:
            return PackageResult(stage, error=str(exc))
        return PackageResult(stage, inspect_zip(zip_path))
