"""The package's own bytecode (infra/bytecode.py): app.py, chalicelib and Chalice's runtime, checked by hash,
where Chalice's zip puts each beside its source. The real package's zip is checked in
tests/integration/test_package.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from infra.bytecode import chalice_runtime_sources, compile_app_bytecode

pytestmark = pytest.mark.unit

THIS_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def _flags(pyc: Path) -> int:
    return int.from_bytes(pyc.read_bytes()[4:8], "little")


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "chalicelib" / "api").mkdir(parents=True)
    (project / "app.py").write_text("from chalicelib.api import routes\n")
    (project / "chalicelib" / "__init__.py").write_text("")
    (project / "chalicelib" / "api" / "__init__.py").write_text("")
    (project / "chalicelib" / "api" / "routes.py").write_text("ROUTES = 1\n")
    return project


def test_given_a_project_copy_when_compiled_then_each_module_has_checked_hash_bytecode_where_the_zip_puts_it(
    tmp_path: Path,
) -> None:
    project = _project(tmp_path)
    # WHEN compiled for this interpreter's runtime version
    written = compile_app_bytecode(project, THIS_PYTHON)
    # THEN chalicelib's bytecode is beside its sources, app.py's and Chalice's runtime's in vendor/ (zipped at the root)
    tag = sys.implementation.cache_tag
    expected = {
        project / "vendor" / "__pycache__" / f"app.{tag}.pyc",
        project / "chalicelib" / "__pycache__" / f"__init__.{tag}.pyc",
        project / "chalicelib" / "api" / "__pycache__" / f"__init__.{tag}.pyc",
        project / "chalicelib" / "api" / "__pycache__" / f"routes.{tag}.pyc",
        project / "vendor" / "chalice" / "__pycache__" / f"app.{tag}.pyc",
        project / "vendor" / "chalice" / "__pycache__" / f"__init__.{tag}.pyc",
    }
    assert set(written) == expected
    # AND each is checked by hash (PEP 552 flags 0b11): Chalice's 1980 dates in the zip do not matter
    assert {_flags(pyc) for pyc in written} == {0b11}


def test_given_compiled_bytecode_when_the_source_is_the_one_zipped_then_python_loads_it_and_refuses_a_changed_one(
    tmp_path: Path,
) -> None:
    project = _project(tmp_path)
    compile_app_bytecode(project, THIS_PYTHON)
    routes = project / "chalicelib" / "api" / "routes.py"
    compiled: list[str] = []

    class Loader(importlib.machinery.SourceFileLoader):
        def source_to_code(self, data: bytes, path: str, *, _optimize: int = -1) -> object:  # type: ignore[override]
            compiled.append(path)
            return super().source_to_code(data, path, _optimize=_optimize)

    loader = Loader("routes", str(routes))
    # WHEN Python asks for the module's code, once with the source as compiled and once with it changed
    as_compiled = loader.get_code("routes")
    routes.write_text("ROUTES = 2\n")
    changed = loader.get_code("routes")
    # THEN the first came from the bytecode, and the changed source was compiled again (its hash differs)
    assert compiled == [str(routes)]
    assert as_compiled is not None and changed is not None
    namespace: dict[str, int] = {}
    exec(as_compiled, namespace)
    exec(changed, namespace)
    assert namespace["ROUTES"] == 2


def test_given_the_chalice_runtime_then_its_bytecode_is_compiled_from_the_files_chalice_zips() -> None:
    import chalice
    from chalice import app as chalice_app

    sources = chalice_runtime_sources()
    assert sources == {"chalice/app.py": Path(chalice_app.__file__), "chalice/__init__.py": Path(chalice.__file__)}
    assert all(path.suffix == ".py" and path.is_file() for path in sources.values())


def test_given_another_runtime_version_when_compiled_then_nothing_is_written(tmp_path: Path) -> None:
    project = _project(tmp_path)
    # WHEN the functions run another Python than this one: Lambda would ignore this interpreter's bytecode
    assert compile_app_bytecode(project, "3.9") == []
    assert not list(project.rglob("*.pyc"))
