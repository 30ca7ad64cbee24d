"""What a deployed function's process finds on its path: its unpacked code and the runtime's libraries.

Lambda unpacks a function's zip into ``/var/task`` (``LAMBDA_TASK_ROOT``, first on ``sys.path``; chalice
puts the requirements at the zip's root) and provides the runtime's own libraries in ``/var/runtime``:
boto3, botocore and their dependencies, and the runtime interface client. Nothing else: a package the
code needs must be in its zip. Here those libraries come from this virtualenv, as one symlink per
top-level module of an allow-listed distribution, so the deployed code can import boto3 but not the
developer's packages (pytest, moto, chalice), which would hide a dependency missing from the zip.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib.metadata
import io
import logging
import shutil
import threading
import uuid
import zipfile
from pathlib import Path, PurePosixPath

log = logging.getLogger("localstage.runtime")

# What the Lambda Python runtime provides besides the standard library: the AWS SDK with its
# dependencies, and awslambdaric (the runtime interface client) with its own.
RUNTIME_DISTRIBUTIONS = (
    "boto3",
    "botocore",
    "jmespath",
    "s3transfer",
    "urllib3",
    "python-dateutil",
    "six",
    "awslambdaric",
    "simplejson",
    "snapshot-restore-py",
)


class RuntimeUnavailableError(RuntimeError):
    """A library the Lambda Python runtime provides is not installed in this virtualenv."""


def runtime_libraries(target: Path, distributions: tuple[str, ...] = RUNTIME_DISTRIBUTIONS) -> Path:
    """``target`` filled with links to the top-level modules (and metadata) of ``distributions`` only."""
    target.mkdir(parents=True, exist_ok=True)
    for name in distributions:
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise RuntimeUnavailableError(
                f"{name} is not installed, but deployed functions need it from the runtime: "
                "pip install -r requirements-dev.txt"
            ) from None
        tops = {PurePosixPath(str(path)).parts[0] for path in distribution.files or []}
        for top in sorted(tops - {"..", "__pycache__"}):
            link = target / top
            source = Path(str(distribution.locate_file(top))).resolve()
            if link.is_symlink() and link.resolve() == source:
                continue
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(source, target_is_directory=source.is_dir())
    return target


def is_deployment_package(archive: bytes) -> bool:
    """A zip with code in it: not the local stage's own placeholder (``README.txt`` alone)."""
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
            names = zipped.namelist()
    except zipfile.BadZipFile:
        return False
    return bool(names) and names != ["README.txt"]


class CodeCache:
    """Each code version unpacked once (keyed by its CodeSha256) and shared by its environments."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._lock = threading.Lock()

    def task_root(self, code_sha256: str, archive: bytes) -> Path:
        """The directory holding ``archive`` unpacked (``LAMBDA_TASK_ROOT``), unpacking it on first use."""
        target = self._root / _directory_name(code_sha256, archive)
        with self._lock:
            if target.is_dir():
                return target
            self._root.mkdir(parents=True, exist_ok=True)
            staging = self._root / f".{target.name}.{uuid.uuid4().hex}"
            try:
                _unpack(archive, staging)
                staging.rename(target)  # whole or not at all: a failed unpack never looks like code
            finally:
                if staging.exists():
                    shutil.rmtree(staging)
        log.info("unpacked code %s into %s", code_sha256, target)
        return target


def _directory_name(code_sha256: str, archive: bytes) -> str:
    # Lambda's CodeSha256 is base64 (it may hold "/"); its hex form names a directory.
    try:
        return base64.b64decode(code_sha256, validate=True).hex()
    except (binascii.Error, ValueError):
        return hashlib.sha256(archive).hexdigest()


def _unpack(archive: bytes, target: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        for member in zipped.infolist():
            path = Path(zipped.extract(member, target))  # extract() drops ".." and absolute parts
            mode = (member.external_attr >> 16) & 0o777
            if mode and not member.is_dir():
                path.chmod(mode)  # as Lambda keeps the zip's permissions (an executable stays one)
