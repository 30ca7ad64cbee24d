"""The running stage's environment, written out so other tools can join it.

``chalice local``, ``make admin --outputs`` and a shell with the ``aws`` CLI all
need the same variables the functions get: the AWS endpoint, fake credentials,
the region, and the stage's resource names and ids (pool ids are random per run).
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from pathlib import Path

STATE_DIR_VARIABLE = "LOCAL_STAGE_STATE_DIR"
DEFAULT_STATE_DIR = ".localstage"


def state_dir(project_dir: Path, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    configured = env.get(STATE_DIR_VARIABLE)
    return Path(configured) if configured else project_dir / DEFAULT_STATE_DIR


def write_environment(directory: Path, variables: Mapping[str, str]) -> tuple[Path, Path]:
    """``local.env`` (shell ``export`` lines, for ``set -a; . .localstage/local.env``) and ``outputs.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    shell = directory / "local.env"
    shell.write_text("".join(f"export {name}={shlex.quote(value)}\n" for name, value in sorted(variables.items())))
    as_json = directory / "outputs.json"
    as_json.write_text(json.dumps(dict(sorted(variables.items())), indent=2) + "\n")
    return shell, as_json
