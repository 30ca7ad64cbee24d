"""Which benchmarks ``python -m bench`` runs, in order.

A benchmark is a name, a function from ``Options`` to an ``Outcome`` (its result dataclass, which
knows its figures and any detail section for the report) and a predicate saying whether this run
wants it. To add a figure, write a module with such a function and call ``register`` from
``bench/suite.py``; for example an end-to-end throughput figure on the running local stage would
register with ``enabled=lambda options: options.local_stage_url is not None`` after adding that
option. A benchmark that raises becomes a failed figure; the others still run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bench.figures import Figure


@dataclass(frozen=True)
class Options:
    project_root: Path
    runs: int = 15  # fresh processes per variant for the cold start
    rounds: int = 7  # interleaved timing rounds for the warm rates
    round_seconds: float = 2.0
    with_test_suite: bool = False
    e2e_seconds: float = 30.0  # load window of each rate step of the end-to-end benchmark on the local stage
    e2e_rate: float = 1.0  # orders offered per second at the first step, open loop (bench/e2e.py steps it up)
    e2e_capacity_seconds: float = 10.0  # direct calls to the embedded AWS, for its bound
    # Measured by an earlier benchmark of the same run and handed on by the harness (``Section.carry``):
    # the app's AWS calls per order counted end to end, which the cost figure prices.
    e2e_calls_per_order: Mapping[tuple[str, str], float] | None = None


class Outcome(Protocol):
    def figures(self) -> list[Figure]: ...

    def details(self) -> str:
        """Markdown for the report below the table ('' for none)."""
        ...


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str  # the figure name used if the benchmark breaks before producing its own
    bar: str
    run: Callable[[Options], Outcome]
    enabled: Callable[[Options], bool] = lambda options: True


@dataclass
class Registry:
    benchmarks: list[Benchmark]

    def register(self, benchmark: Benchmark) -> Benchmark:
        if any(b.name == benchmark.name for b in self.benchmarks):
            raise ValueError(f"benchmark {benchmark.name!r} is already registered")
        self.benchmarks.append(benchmark)
        return benchmark

    def selected(self, options: Options, only: Sequence[str] = ()) -> list[Benchmark]:
        unknown = set(only) - {b.name for b in self.benchmarks}
        if unknown:
            raise ValueError(f"unknown benchmarks: {', '.join(sorted(unknown))}")
        if only:
            return [b for b in self.benchmarks if b.name in only]
        return [b for b in self.benchmarks if b.enabled(options)]


@dataclass(frozen=True)
class Section:
    title: str
    figures: list[Figure]
    details: str
    carry: Callable[[Options], Options] | None = None  # what the outcome hands the benchmarks after it


def run_benchmark(benchmark: Benchmark, options: Options) -> Section:
    """Run one benchmark; whatever it raises becomes a failed figure instead of ending the run."""
    try:
        outcome = benchmark.run(options)
        return Section(benchmark.title, outcome.figures(), outcome.details(), getattr(outcome, "carry", None))
    except Exception as exc:  # the harness reports a broken figure and goes on
        return Section(
            benchmark.title, [Figure.failed(benchmark.title, benchmark.bar, f"{type(exc).__name__}: {exc}")], ""
        )
