"""The code Chalice zips beside ``vendor/`` (app.py, chalicelib/, Chalice's runtime, PyJWT), copied and compiled.

``copy_packaged`` copies the sources into the project copy that is packaged, never a work tree's
``__pycache__``; ``compile_app_bytecode`` gives each module checked-hash bytecode.

Lambda cannot write ``__pycache__`` in ``/var/task``, so a module the package ships without bytecode
is compiled again at every cold start. For this app that was ``app.py``, the ``chalicelib`` modules
the first import loads (40 of them) and Chalice's own ``chalice/app.py`` (about 17 ms alone):
compiling all 82 files takes about 86 ms here. ``infra.vendor`` already ships the vendored packages'
bytecode; this does the same for the rest of the package, so the deployed functions load every
module of theirs from bytecode, which is what the cold-start benchmark measures (bench/coldstart.py).

Checked by hash, as the vendored packages are: Chalice dates every file it zips 1980-01-01, so
bytecode checked against the source's modification time would be stale on Lambda; a hash survives
the zip. A source that no longer matches its bytecode is compiled again, never trusted.

Where each file goes, given what Chalice zips (``chalice.deploy.packager``):

- ``chalicelib/**/__pycache__/*.pyc``: Chalice zips ``chalicelib/`` whole;
- ``vendor/__pycache__/app.cpython-311.pyc``: Chalice zips ``vendor/``'s contents at the root of the
  zip, so it lands beside ``app.py`` (Chalice adds ``app.py`` alone, not a ``__pycache__``);
- ``vendor/chalice/__pycache__/{app,__init__}.cpython-311.pyc``: Chalice adds its runtime as two
  source files from the installation that packages (``chalice/app.py``, ``chalice/__init__.py``);
  their bytecode is compiled from those same files;
- ``vendor/jwt/__pycache__/...``: Chalice installs ``requirements.txt`` (PyJWT) itself, as sources at
  the root of the zip. Their bytecode is compiled from this virtualenv's installation of the same
  pinned release; a requirement installed here at another version gets none.
"""

from __future__ import annotations

import importlib.util
import inspect
import py_compile
import shutil
import sys
from pathlib import Path

CHECKED_HASH = py_compile.PycInvalidationMode.CHECKED_HASH
PACKAGED = ("app.py", "chalicelib", "requirements.txt")  # what Chalice zips into the functions, with vendor/


def copy_packaged(root: Path, project: Path) -> None:
    """Copy what Chalice zips from ``root`` into ``project``, without a work tree's ``__pycache__``: its
    bytecode is checked by modification time, stale once Chalice dates the files 1980-01-01. The package's
    own bytecode is compiled into the copy, checked by hash (``compile_app_bytecode``, from ``infra.vendor``)."""
    for name in PACKAGED:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.is_file():
            shutil.copy2(source, project / name)


def _compile(source: Path, bytecode: Path, name_in_package: str) -> Path:
    bytecode.parent.mkdir(parents=True, exist_ok=True)
    py_compile.compile(
        str(source), cfile=str(bytecode), dfile=name_in_package, doraise=True, invalidation_mode=CHECKED_HASH
    )
    return bytecode


def _cached_name(relative: str) -> str:
    """``chalicelib/api/x.py`` -> ``chalicelib/api/__pycache__/x.cpython-311.pyc`` (this interpreter's tag)."""
    return importlib.util.cache_from_source(relative)


def chalice_runtime_sources() -> dict[str, Path]:
    """The two files Chalice zips as its runtime, by their path in the zip, from this installation."""
    import chalice
    from chalice import app as chalice_app

    return {"chalice/app.py": Path(inspect.getfile(chalice_app)), "chalice/__init__.py": Path(chalice.__file__)}


def requirement_sources(requirements: Path) -> dict[str, Path]:
    """The modules of each ``name==version`` in ``requirements`` installed here at that version, by their
    path in the zip (``jwt/api_jwt.py``: Chalice installs them at its root) -> the installed file."""
    from importlib import metadata

    from packaging.requirements import Requirement

    sources: dict[str, Path] = {}
    if not requirements.is_file():
        return sources
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        try:
            installed = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            continue
        pins = list(requirement.specifier)
        if len(pins) != 1 or pins[0].operator != "==" or pins[0].version != installed.version:
            continue  # only a pin this installation matches exactly
        for file in installed.files or []:
            if file.suffix == ".py" and not file.as_posix().startswith(".."):
                sources[file.as_posix()] = Path(str(installed.locate_file(file)))
    return sources


def compile_app_bytecode(project: Path, runtime_version: str) -> list[Path]:
    """Checked-hash bytecode for ``project``'s ``app.py``, ``chalicelib``, Chalice's runtime and requirements;
    the files written.

    ``project`` is a copy of the project being packaged (``vendor/`` is written into it). Nothing is
    written unless this interpreter is the functions' Python (``runtime_version``, ``3.11``): Lambda
    ignores bytecode of another version.
    """
    if runtime_version != f"{sys.version_info.major}.{sys.version_info.minor}":
        return []
    written: list[Path] = []
    vendor = project / "vendor"
    app = project / "app.py"
    if app.is_file():
        written.append(_compile(app, vendor / _cached_name("app.py"), "app.py"))
    for source in sorted((project / "chalicelib").rglob("*.py")):
        relative = source.relative_to(project).as_posix()
        written.append(_compile(source, project / _cached_name(relative), relative))
    beside_vendor = {**chalice_runtime_sources(), **requirement_sources(project / "requirements.txt")}
    for in_zip, source in beside_vendor.items():
        written.append(_compile(source, vendor / _cached_name(in_zip), in_zip))
    return written
