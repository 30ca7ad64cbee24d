"""The test suite's wall time: ``make test`` once (ruff, mypy, every test). Slow, so opt-in."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

from bench.figures import Figure
from bench.registry import Options

MAX_SECONDS = 600.0
BAR = "exits 0 in < 10 min"


@dataclass(frozen=True)
class TestSuiteResult:
    __test__ = False  # not a pytest class, despite the name

    seconds: float
    returncode: int
    tail: str

    def figures(self) -> list[Figure]:
        note = "one run of `make test`"
        if self.returncode != 0:
            note += f"; it exited {self.returncode}, so the bar does not hold whatever the time: {self.tail}"
        return [
            Figure(
                name="test suite wall time (make test)",
                value=f"{self.seconds:.0f} s",
                bar=BAR,
                holds=self.returncode == 0 and self.seconds < MAX_SECONDS,
                note=note,
            )
        ]

    def details(self) -> str:
        return ""


def measure_test_suite(options: Options) -> TestSuiteResult:
    started = time.perf_counter()
    done = subprocess.run(
        ["make", "test"],  # noqa: S607 - the project's own make target, make from PATH
        cwd=options.project_root,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    seconds = time.perf_counter() - started
    tail = " ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
    return TestSuiteResult(seconds, done.returncode, tail[-300:])
