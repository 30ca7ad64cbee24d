"""The dev package's own bytecode (infra/bytecode.py): every module in the zip make package writes has
checked-hash bytecode, and the app imported from the unpacked zip compiles none of its modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bench.package import inspect_zip
from infra.package import package

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def zipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package("dev", tmp_path_factory.mktemp("build")).with_name("deployment.zip")


# Run in the unpacked package: every module the package holds that ``import app`` loads, from its bytecode.
_IMPORT_FROM_BYTECODE = """
import json, sys
from importlib import machinery
task = sys.argv[1]
compiled = []
original = machinery.SourceFileLoader.source_to_code
def source_to_code(self, data, path, *args, **kwargs):
    compiled.append(path)
    return original(self, data, path, *args, **kwargs)
machinery.SourceFileLoader.source_to_code = source_to_code
sys.path.insert(0, task)
import app
from chalicelib.observability import tracing
tracing.configure(True)  # what the first invocation with active tracing loads: the X-Ray SDK
loaded = sorted(m.__file__ for m in list(sys.modules.values()) if (getattr(m, "__file__", None) or "").startswith(task))
print(json.dumps({"compiled": [p for p in compiled if p.startswith(task)], "loaded": loaded}))
"""


def test_given_the_dev_package_then_every_module_in_it_loads_from_bytecode_checked_by_hash(
    zipped: Path, tmp_path: Path
) -> None:
    # GIVEN the zip make package writes: every module in it has bytecode checked by hash, none stale
    contents = inspect_zip(zipped)
    assert contents.modules_without_bytecode == [] and contents.stray_bytecode_files == 0
    # WHEN the app is imported from the unpacked zip, as Lambda imports it from /var/task (read-only)
    task = tmp_path / "task"
    with zipfile.ZipFile(zipped) as archive:
        archive.extractall(task)
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1", "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_FROM_BYTECODE, str(task)],
        env=env,
        cwd=task,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    # THEN app.py, chalicelib, Chalice's runtime and the vendored SDK came from the package, none compiled
    loaded = {Path(path).relative_to(task).parts[0] for path in outcome["loaded"]}
    assert {"app.py", "chalicelib", "chalice", "aws_xray_sdk"} <= loaded, loaded
    assert outcome["compiled"] == []
