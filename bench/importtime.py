"""What ``import app`` spends its time on, from ``python -X importtime``."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.environment import child_environment

_PREFIX = "import time:"


@dataclass(frozen=True)
class ImportEntry:
    module: str
    self_us: int
    cumulative_us: int
    depth: int  # 0 for a module imported by the script itself


def parse_importtime(stderr: str) -> list[ImportEntry]:
    """Every ``import time:`` line of ``-X importtime`` output; other lines (warnings) are skipped.

    A line reads ``import time:   self |  cumulative | <2 spaces per nesting level>module``.
    """
    entries = []
    for line in stderr.splitlines():
        if not line.startswith(_PREFIX):
            continue
        parts = line[len(_PREFIX) :].split("|", 2)
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue  # the header line
        name = parts[2].rstrip()
        indent = len(name) - len(name.lstrip(" "))
        entries.append(ImportEntry(name.strip(), int(parts[0]), int(parts[1]), max(0, (indent - 1) // 2)))
    return entries


def top_cumulative(entries: list[ImportEntry], count: int = 10) -> list[ImportEntry]:
    return sorted(entries, key=lambda e: e.cumulative_us, reverse=True)[:count]


def measure_importtime(
    project_root: Path,
    env: dict[str, str] | None = None,
    statement: str = "import app",
    python_args: tuple[str, ...] = (),
) -> list[ImportEntry]:
    done = subprocess.run(  # noqa: S603 - our own interpreter on a fixed statement
        [sys.executable, *python_args, "-X", "importtime", "-c", statement],
        cwd=project_root,
        env=child_environment() if env is None else env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    entries = parse_importtime(done.stderr)
    if not entries:
        raise RuntimeError("python -X importtime printed no import times")
    return entries


def render_imports(entries: list[ImportEntry]) -> str:
    lines = ["| module | cumulative | self | depth |", "|---|---:|---:|---:|"]
    lines += [
        f"| `{e.module}` | {e.cumulative_us / 1000:.1f} ms | {e.self_us / 1000:.1f} ms | {e.depth} |" for e in entries
    ]
    return "\n".join(lines)
