"""``python -m bench``: run the benchmarks, print the table, write it into docs/benchmarks.md.

Bars are reported, not enforced: the exit code is 0 whether or not they hold, and non-zero only
when the harness itself fails (bad arguments, a report that cannot be written).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.registry import Options, Registry, run_benchmark
from bench.report import commit, now, render_report, this_machine, write_report
from bench.suite import REGISTRY

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: Sequence[str] | None, registry: Registry) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per cold-start variant (default 15)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds of warm timing (default 7)")
    parser.add_argument("--round-seconds", type=float, default=2.0, help="seconds per warm round (default 2)")
    parser.add_argument("--with-test-suite", action="store_true", help="also time one `make test` (slow)")
    parser.add_argument(
        "--e2e-seconds", type=float, default=30.0, help="end-to-end load window of each rate step (default 30)"
    )
    parser.add_argument(
        "--e2e-rate",
        type=float,
        default=1.0,
        help="orders per second of the first end-to-end step; each next step offers 1.5 times more (default 1)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short runs for a smoke test: 10 s end-to-end steps, 3 warm rounds, 5 processes",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        choices=[b.name for b in registry.benchmarks],
        help="run only this benchmark (repeatable)",
    )
    parser.add_argument("--output", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true", help="print the table without writing the document")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.rounds < 1 or args.round_seconds <= 0:
        parser.error("--runs and --rounds must be at least 1, --round-seconds positive")
    if args.e2e_seconds <= 0 or args.e2e_rate <= 0:
        parser.error("--e2e-seconds and --e2e-rate must be positive")
    return args


def options_of(args: argparse.Namespace) -> Options:
    if args.quick:
        return Options(
            project_root=PROJECT_ROOT,
            runs=min(args.runs, 5),
            rounds=min(args.rounds, 3),
            round_seconds=min(args.round_seconds, 1.0),
            with_test_suite=args.with_test_suite,
            e2e_seconds=min(args.e2e_seconds, 10.0),
            e2e_rate=args.e2e_rate,
            e2e_capacity_seconds=3.0,
        )
    return Options(
        project_root=PROJECT_ROOT,
        runs=args.runs,
        rounds=args.rounds,
        round_seconds=args.round_seconds,
        with_test_suite=args.with_test_suite,
        e2e_seconds=args.e2e_seconds,
        e2e_rate=args.e2e_rate,
    )


def main(argv: Sequence[str] | None = None, registry: Registry = REGISTRY) -> int:
    args = parse_args(argv, registry)
    options = options_of(args)
    started = time.perf_counter()
    sections = []
    for benchmark in registry.selected(options, args.only):
        print(f"bench: {benchmark.name} ...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        section = run_benchmark(benchmark, options)
        sections.append(section)
        if section.carry is not None:
            options = section.carry(options)
        print(f"bench: {benchmark.name} done in {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    report = render_report(sections, this_machine(), commit(PROJECT_ROOT), now(), time.perf_counter() - started)
    print(report)
    if not args.no_write:
        write_report(args.output, report)
        print(f"bench: wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
