"""Cold start: a fresh interpreter that imports the app and answers its first request.

Each child times itself from the first line of its script to the response (``perf_counter``), and
the parent times the whole process (interpreter start-up included). The floor is what any Chalice
function with boto3 pays before doing anything: ``import chalice, boto3`` and one DynamoDB client.
Variants run interleaved, rotating their order, so a noisy moment hurts all of them alike.
No data is seeded: ``GET /health`` answers 200 and ``GET /products/{id}`` answers 404 from an
empty in-memory catalog, which still builds the container, the catalog service and its repository.

Every child has ``LAMBDA_TASK_ROOT``, as in Lambda. The app runs as deployed on dev and prod, with
active tracing: Lambda's X-Ray variables (``bench.environment.active_tracing``) make its first
invocation import the SDK and patch botocore, in Lambda mode. The daemon is a UDP port this process
holds and never reads. One variant runs with tracing off, so the SDK's share shows. The SDK comes
from the virtualenv: the same pinned versions ``vendor/`` holds (requirements-vendor.txt). In
Lambda mode the SDK touches ``/tmp/.aws-xray/initialized``, as it does there.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from bench.environment import LAMBDA_TASK_ROOT, active_tracing, child_environment
from bench.events import ApiRequest
from bench.figures import Figure, milliseconds, times
from bench.importtime import ImportEntry, measure_importtime, render_imports, top_cumulative
from bench.registry import Options
from bench.stats import median, ratio, spread

BAR = 1.25
FLOOR = "floor"

# Each child prints ``BENCH <ms> <status> <1 if the X-Ray SDK was imported, else 0>``.
FLOOR_SCRIPT = """\
import time
started = time.perf_counter()
import chalice, boto3
boto3.client("dynamodb")
elapsed = time.perf_counter() - started
import sys
print("BENCH", elapsed * 1000, 0, int("aws_xray_sdk.core" in sys.modules))
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
elapsed = time.perf_counter() - started
import sys
print("BENCH", elapsed * 1000, response["statusCode"], int("aws_xray_sdk.core" in sys.modules))
"""


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    script: str
    expected_status: int
    traced: bool = False  # with Lambda's active-tracing variables: the SDK must be imported, else not


def app_variant(name: str, label: str, request: ApiRequest, expected_status: int, traced: bool = True) -> Variant:
    return Variant(name, label, APP_SCRIPT.format(event=request.proxy_event()), expected_status, traced)


HEALTH = ApiRequest("GET", "/health")
VARIANTS = (
    Variant(FLOOR, "import chalice, boto3 + boto3.client('dynamodb')", FLOOR_SCRIPT, 0),
    app_variant("health", "GET /health (200), tracing on as deployed", HEALTH, 200),
    app_variant(
        "product",
        "GET /products/{id} (404), tracing on as deployed",
        ApiRequest("GET", "/products/{product_id}", {"product_id": "prod_0123456789abcdef0123456789abcdef"}),
        404,
    ),
    app_variant("health-untraced", "GET /health (200), tracing off", HEALTH, 200, traced=False),
)
# The X-Ray SDK's share of a cold start: the same request with tracing on, then off.
SDK_SHARE = ("health", "health-untraced")
# What the first traced invocation adds to ``import app``: the same call set_up_once makes.
TRACING_SETUP = "import app; from chalicelib.observability import tracing; tracing.configure(True)"


class ChildReport(NamedTuple):
    ms: float
    status: int
    sdk_loaded: bool


@dataclass(frozen=True)
class Sample:
    child_ms: float  # first line of the script to the response, as the child measured it
    wall_ms: float  # process start to exit, as the parent measured it


def parse_child_output(stdout: str) -> ChildReport:
    """What the child's ``BENCH <ms> <status> <sdk>`` line reports."""
    for line in stdout.splitlines():
        if line.startswith("BENCH "):
            _, ms, status, sdk = line.split()
            return ChildReport(float(ms), int(status), sdk == "1")
    raise ValueError(f"no BENCH line in child output: {stdout[-500:]!r}")


def run_child(variant: Variant, project_root: Path, env: dict[str, str]) -> Sample:
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own interpreter running our own script
        [sys.executable, "-c", variant.script], cwd=project_root, env=env, capture_output=True, text=True, timeout=120
    )
    wall_ms = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"{variant.name} child exited {done.returncode}: {done.stderr[-1000:]}")
    report = parse_child_output(done.stdout)
    if report.status != variant.expected_status:
        raise RuntimeError(f"{variant.name} child answered {report.status}, expected {variant.expected_status}")
    if report.sdk_loaded != variant.traced:
        # A traced figure without the SDK (or the reverse) would measure something else than it says.
        loaded = "imported" if report.sdk_loaded else "did not import"
        raise RuntimeError(f"{variant.name} child {loaded} the X-Ray SDK (tracing {'on' if variant.traced else 'off'})")
    return Sample(report.ms, wall_ms)


@contextmanager
def unread_udp_address() -> Iterator[str]:
    """``127.0.0.1:<port>`` of a UDP socket held and never read: the children's X-Ray daemon.

    Sending to it cannot fail, and while it is held no other process (a local stage's X-Ray
    listener) can take the port and receive the benchmark's segments.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        host, port = sock.getsockname()
        yield f"{host}:{port}"


@dataclass
class ColdStartResult:
    runs: int
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    imports: list[ImportEntry] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    tracing_imports: list[ImportEntry] = field(default_factory=list)  # imported by the setup, after app

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
        traced, untraced = SDK_SHARE
        if traced in self.samples and untraced in self.samples:
            share = median(self.child_ms(traced)) - median(self.child_ms(untraced))
            rows.append(
                Figure(
                    name="cold start, the X-Ray SDK's share (tracing on less off, GET /health)",
                    value=milliseconds(share),
                    baseline=milliseconds(floor_child),
                    ratio=times(share / floor_child),
                    note="difference of the two medians: importing aws_xray_sdk.core in Lambda mode, "
                    "the botocore modules it loads, and patch(('botocore',))",
                )
            )
        return rows

    def details(self) -> str:
        sections = []
        if self.imports:
            sections.append(
                "### What `import app` spends its time on\n\n"
                'Top 10 of `python -X importtime -c "import app"` by cumulative time '
                "(one run, `ADAPTERS=memory`; nested modules count inside their parents):\n\n"
                + render_imports(top_cumulative(self.imports))
            )
        if self.tracing_imports:
            sections.append(
                "### What tracing imports at the first invocation\n\n"
                f"Top 10 of `python -X importtime -c {TRACING_SETUP!r}` by cumulative time, counting only "
                "what was imported after `app` (one run, with Lambda's active-tracing variables):\n\n"
                + render_imports(top_cumulative(self.tracing_imports))
            )
        return "\n\n".join(sections)


def imported_after(entries: list[ImportEntry], module: str = "app") -> list[ImportEntry]:
    """The imports ``-X importtime`` lists after ``module``'s own top-level line: those made once it was in."""
    for index, entry in enumerate(entries):
        if entry.module == module and entry.depth == 0:
            return entries[index + 1 :]
    raise ValueError(f"{module} was not imported at top level")


def measure_cold_start(options: Options, variants: tuple[Variant, ...] = VARIANTS) -> ColdStartResult:
    result = ColdStartResult(runs=options.runs, labels={v.name: v.label for v in variants})
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache, unread_udp_address() as daemon:
        # Bytecode goes to a private cache that the warm-up run fills: every timed child then loads
        # every module from bytecode, whatever __pycache__ the tree has, and the tree stays untouched.
        env = child_environment(PYTHONPYCACHEPREFIX=pycache)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env[LAMBDA_TASK_ROOT] = str(options.project_root)  # the code's directory, /var/task on Lambda
        traced_env = {**env, **active_tracing(daemon)}
        env_of = {v.name: traced_env if v.traced else env for v in variants}
        for variant in variants:  # warm-up, discarded
            run_child(variant, options.project_root, env_of[variant.name])
        for index in range(options.runs):
            shift = index % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                sample = run_child(variant, options.project_root, env_of[variant.name])
                result.samples.setdefault(variant.name, []).append(sample)
        result.imports = measure_importtime(options.project_root, env)
        if any(v.traced for v in variants):
            setup = measure_importtime(options.project_root, traced_env, TRACING_SETUP)
            result.tracing_imports = imported_after(setup)
    return result
