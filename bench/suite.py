"""The benchmarks ``make bench`` runs, in report order. New figures register here (see ``bench.registry``)."""

from __future__ import annotations

from bench import coldstart, iam, package, test_suite, warm
from bench.registry import Benchmark, Options, Outcome, Registry


def _cost_per_order(options: Options) -> Outcome:
    # Imported when run: a broken cost model then fails this figure only, not the whole harness.
    from bench.cost_per_order import measure_cost_per_order

    return measure_cost_per_order(options)


def _e2e(options: Options) -> Outcome:
    # Imported when run: it needs httpx and the local stage, which the other figures do not.
    from bench.e2e import measure_e2e

    return measure_e2e(options)


REGISTRY = Registry([])
REGISTRY.register(
    Benchmark(
        "cold-start",
        "cold start, import app + first request",
        f"<= {coldstart.BAR}x floor",
        coldstart.measure_cold_start,
    )
)
REGISTRY.register(Benchmark("package", "deployment package", package.BAR, package.measure_package))
REGISTRY.register(Benchmark("warm", "warm rate vs a bare Chalice app", f">= {warm.BAR}x bare", warm.measure_warm))
REGISTRY.register(Benchmark("iam", "IAM enforcement on the embedded AWS", f"<= {iam.BAR}x unenforced", iam.measure_iam))
REGISTRY.register(Benchmark("e2e", "end to end, orders completed per second (local stage)", "sustained", _e2e))
REGISTRY.register(
    Benchmark("cost-per-order", "cost per order, whole pipeline", "<= 1/3 of the seed's design", _cost_per_order)
)
REGISTRY.register(
    Benchmark(
        "test-suite",
        "test suite wall time (make test)",
        test_suite.BAR,
        test_suite.measure_test_suite,
        enabled=lambda options: options.with_test_suite,
    )
)
