"""Cold start: a fresh interpreter that imports the app and answers its first request.

Each child times itself from the first line of its script to the response (``perf_counter``), and
the parent times the whole process (interpreter start-up included). The floor is what any Chalice
function with boto3 pays before doing anything: ``import chalice, boto3`` and one DynamoDB client.
Variants run interleaved, rotating their order, so a noisy moment hurts all of them alike.
No data is seeded: ``GET /health`` answers 200 and ``GET /products/{id}`` answers 404 from an
empty in-memory catalog, which still builds the container, the catalog service and its repository.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.environment import child_environment
from bench.events import ApiRequest
from bench.figures import Figure, milliseconds, times
from bench.importtime import ImportEntry, measure_importtime, render_imports, top_cumulative
from bench.registry import Options
from bench.stats import median, ratio, spread

BAR = 1.25
FLOOR = "floor"

FLOOR_SCRIPT = """\
import time
started = time.perf_counter()
import chalice, boto3
boto3.client("dynamodb")
print("BENCH", (time.perf_counter() - started) * 1000, 0)
"""

APP_SCRIPT = """\
import time
started = time.perf_counter()
import app


class Context:
    function_name = "ecommerce-backend-dev"
    memory_limit_in_mb = 512
    aws_request_id = "cold-start"

    def get_remaining_time_in_millis(self):
        return 30000


response = app.app({event!r}, Context())
print("BENCH", (time.perf_counter() - started) * 1000, response["statusCode"])
"""


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    script: str
    expected_status: int


def app_variant(name: str, label: str, request: ApiRequest, expected_status: int) -> Variant:
    return Variant(name, label, APP_SCRIPT.format(event=request.proxy_event()), expected_status)


VARIANTS = (
    Variant(FLOOR, "import chalice, boto3 + boto3.client('dynamodb')", FLOOR_SCRIPT, 0),
    app_variant("health", "GET /health (200)", ApiRequest("GET", "/health"), 200),
    app_variant(
        "product",
        "GET /products/{id} (404)",
        ApiRequest("GET", "/products/{product_id}", {"product_id": "prod_0123456789abcdef0123456789abcdef"}),
        404,
    ),
)


@dataclass(frozen=True)
class Sample:
    child_ms: float  # first line of the script to the response, as the child measured it
    wall_ms: float  # process start to exit, as the parent measured it


def parse_child_output(stdout: str) -> tuple[float, int]:
    """``(milliseconds, status)`` from the child's ``BENCH <ms> <status>`` line."""
    for line in stdout.splitlines():
        if line.startswith("BENCH "):
            _, ms, status = line.split()
            return float(ms), int(status)
    raise ValueError(f"no BENCH line in child output: {stdout[-500:]!r}")


def run_child(variant: Variant, project_root: Path, env: dict[str, str]) -> Sample:
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own interpreter running our own script
        [sys.executable, "-c", variant.script], cwd=project_root, env=env, capture_output=True, text=True, timeout=120
    )
    wall_ms = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"{variant.name} child exited {done.returncode}: {done.stderr[-1000:]}")
    child_ms, status = parse_child_output(done.stdout)
    if status != variant.expected_status:
        raise RuntimeError(f"{variant.name} child answered {status}, expected {variant.expected_status}")
    return Sample(child_ms, wall_ms)


@dataclass
class ColdStartResult:
    runs: int
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    imports: list[ImportEntry] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)

    def child_ms(self, variant: str) -> list[float]:
        return [s.child_ms for s in self.samples[variant]]

    def wall_ms(self, variant: str) -> list[float]:
        return [s.wall_ms for s in self.samples[variant]]

    def figures(self) -> list[Figure]:
        floor_child, floor_wall = median(self.child_ms(FLOOR)), median(self.wall_ms(FLOOR))
        rows = []
        for name in (v for v in self.samples if v != FLOOR):
            child, wall = median(self.child_ms(name)), median(self.wall_ms(name))
            low, high = spread(self.child_ms(name))
            rows.append(
                Figure(
                    name=f"cold start, import app + first {self.labels[name]}",
                    value=milliseconds(child),
                    baseline=milliseconds(floor_child),
                    ratio=times(ratio(child, floor_child)),
                    bar=f"<= {BAR}x floor",
                    holds=ratio(child, floor_child) <= BAR,
                    note=(
                        f"median of {self.runs} fresh processes, timed inside the child from its first line "
                        f"(range {low:.1f} to {high:.1f} ms); floor = {self.labels[FLOOR]}"
                    ),
                )
            )
            rows.append(
                Figure(
                    name=f"cold start wall time, {self.labels[name]}",
                    value=milliseconds(wall),
                    baseline=milliseconds(floor_wall),
                    ratio=times(ratio(wall, floor_wall)),
                )
            )
        return rows

    def details(self) -> str:
        if not self.imports:
            return ""
        return (
            "### What `import app` spends its time on\n\n"
            'Top 10 of `python -X importtime -c "import app"` by cumulative time '
            "(one run, `ADAPTERS=memory`; nested modules count inside their parents):\n\n"
            + render_imports(top_cumulative(self.imports))
        )


def measure_cold_start(options: Options, variants: tuple[Variant, ...] = VARIANTS) -> ColdStartResult:
    result = ColdStartResult(runs=options.runs, labels={v.name: v.label for v in variants})
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache:
        # Bytecode goes to a private cache that the warm-up run fills: every timed child then loads
        # every module from bytecode, whatever __pycache__ the tree has, and the tree stays untouched.
        env = child_environment(PYTHONPYCACHEPREFIX=pycache)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for variant in variants:  # warm-up, discarded
            run_child(variant, options.project_root, env)
        for index in range(options.runs):
            shift = index % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                result.samples.setdefault(variant.name, []).append(run_child(variant, options.project_root, env))
        result.imports = measure_importtime(options.project_root, env)
    return result
