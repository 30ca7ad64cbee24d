"""Cold start: a fresh interpreter that imports the app and answers its first request, as deployed.

Each child times itself from the first line of its script to the response (``perf_counter``), and
the parent times the whole process (interpreter start-up included). The floor is what any Chalice
function with boto3 pays before doing anything: ``import chalice, boto3`` and one DynamoDB client.
Variants run interleaved, rotating their order, so a noisy moment hurts all of them alike.

Every child, the floor's included, runs what Lambda runs (``bench.deployed``): the unpacked deployment
package of the dev stage (``make package``'s zip, ``vendor/`` included), on a path holding only that,
the standard library and the runtime's boto3/botocore (``python -S``: no virtualenv package is
importable, so PyJWT does not find ``cryptography`` and no dev package loads). The app uses its AWS
adapters against a stub endpoint (``AWS_ENDPOINT_URL``): ``GET /products/{id}`` builds its DynamoDB
client and makes its ``GetItem`` (answered "no item", so 404), and the benchmark checks that the call
was made. ``GET /health`` makes no call.

Every child has ``LAMBDA_TASK_ROOT``, as in Lambda. The app runs as deployed on dev and prod, with
active tracing: Lambda's X-Ray variables (``bench.environment.active_tracing``) make its first
invocation import the SDK (from the package's ``vendor/``) and patch botocore, in Lambda mode. The
daemon is a UDP port this process holds and never reads. One variant runs with tracing off, so the
SDK's share shows. In Lambda mode the SDK touches ``/tmp/.aws-xray/initialized``, as it does there.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from bench.deployed import DeployedTree, StubAws, deployed_tree, stub_aws
from bench.environment import LAMBDA_TASK_ROOT, active_tracing, child_environment
from bench.events import ApiRequest
from bench.figures import Figure, milliseconds, times
from bench.importtime import ImportEntry, measure_importtime, render_imports, top_cumulative
from bench.registry import Options
from bench.stats import median, ratio, spread
from chalicelib.config import ADAPTERS, ADAPTERS_AWS, STAGE

BAR = 1.25
FLOOR = "floor"
# The stage whose package the children run (built as make package builds it).
DEPLOYED_STAGE = "dev"
# The peer's module, copied into the unpacked package under this name (bench.deployed.add_peer).
PEER_MODULE = "peer_app"

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
import {module}


class Context:
    function_name = "ecommerce-backend-dev"
    memory_limit_in_mb = 512
    aws_request_id = "cold-start"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ecommerce-backend-dev"

    def get_remaining_time_in_millis(self):
        return 30000


response = {module}.{handler}({event!r}, Context())
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
    # The AWS calls the child must make on the stub endpoint, by X-Amz-Target: what its first request
    # does on Lambda (a route whose client or call went missing would be timed doing less).
    aws_calls: tuple[tuple[str, int], ...] = ()
    peer: bool = False  # the Powertools peer: Powertools on the path as a layer; compared, not judged on the floor


def app_variant(
    name: str,
    label: str,
    request: ApiRequest,
    expected_status: int,
    traced: bool = True,
    aws_calls: tuple[tuple[str, int], ...] = (),
    peer: bool = False,
) -> Variant:
    module, handler = (PEER_MODULE, "handler") if peer else ("app", "app")
    script = APP_SCRIPT.format(module=module, handler=handler, event=request.proxy_event())
    return Variant(name, label, script, expected_status, traced, aws_calls, peer)


HEALTH = ApiRequest("GET", "/health")
PRODUCT = ApiRequest("GET", "/products/{product_id}", {"product_id": "prod_0123456789abcdef0123456789abcdef"})
GET_ITEM = (("DynamoDB_20120810.GetItem", 1),)
PEER = "Powertools peer,"
VARIANTS = (
    Variant(FLOOR, "import chalice, boto3 + boto3.client('dynamodb')", FLOOR_SCRIPT, 0),
    app_variant("health", "GET /health (200), tracing on as deployed", HEALTH, 200),
    app_variant("product", "GET /products/{id} (404), tracing on as deployed", PRODUCT, 404, aws_calls=GET_ITEM),
    app_variant("health-untraced", "GET /health (200), tracing off", HEALTH, 200, traced=False),
    app_variant("product-untraced", "GET /products/{id} (404), tracing off", PRODUCT, 404, False, GET_ITEM),
    app_variant(
        "peer-product", "Powertools peer, GET /products/{id} (404), tracing on", PRODUCT, 404, True, GET_ITEM, True
    ),
    app_variant(
        "peer-product-untraced",
        "Powertools peer, GET /products/{id} (404), tracing off",
        PRODUCT,
        404,
        False,
        GET_ITEM,
        True,
    ),
)
# Ours -> the same request on the Powertools peer (bench/peer/powertools_app.py), tracing as named.
PEER_OF = {"product": "peer-product", "product-untraced": "peer-product-untraced"}
PEER_BAR = 1.0
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


def run_child(
    variant: Variant,
    project_root: Path,
    env: dict[str, str],
    python_args: tuple[str, ...] = (),
    stub: StubAws | None = None,
) -> Sample:
    before = stub.snapshot()[0] if stub is not None else Counter[str]()
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own interpreter running our own script
        [sys.executable, *python_args, "-c", variant.script],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    wall_ms = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"{variant.name} child exited {done.returncode}: {done.stderr[-1000:]}")
    report = parse_child_output(done.stdout)
    if report.status != variant.expected_status:
        raise RuntimeError(f"{variant.name} child answered {report.status}, expected {variant.expected_status}")
    # The peer is measured as Powertools behaves: its Tracer may import the SDK even when disabled.
    if report.sdk_loaded != variant.traced and not variant.peer:
        # A traced figure without the SDK (or the reverse) would measure something else than it says.
        loaded = "imported" if report.sdk_loaded else "did not import"
        raise RuntimeError(f"{variant.name} child {loaded} the X-Ray SDK (tracing {'on' if variant.traced else 'off'})")
    if stub is not None:
        calls, refused = stub.snapshot()
        made = dict(calls - before)
        if made != dict(variant.aws_calls) or refused:
            expected = dict(variant.aws_calls)
            refusals = dict(refused)
            raise RuntimeError(f"{variant.name} child made AWS calls {made}, expected {expected}; refused {refusals}")
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
    peers: set[str] = field(default_factory=set)  # the peer's variants: compared with ours, not judged on the floor

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
            judged = name not in self.peers
            rows.append(
                Figure(
                    name=f"cold start, import app + first {self.labels[name]}",
                    value=milliseconds(child),
                    baseline=milliseconds(floor_child),
                    ratio=times(ratio(child, floor_child)),
                    bar=f"<= {BAR}x floor" if judged else "-",
                    holds=ratio(child, floor_child) <= BAR if judged else None,
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
        rows += [self._against_peer(ours, peer) for ours, peer in PEER_OF.items() if {ours, peer} <= set(self.samples)]
        return rows

    def _against_peer(self, ours: str, peer: str) -> Figure:
        held = ratio(median(self.child_ms(ours)), median(self.child_ms(peer)))
        return Figure(
            name=f"cold start against the Powertools peer, {self.labels[ours]}",
            value=milliseconds(median(self.child_ms(ours))),
            baseline=milliseconds(median(self.child_ms(peer))),
            ratio=times(held),
            bar=f"<= {PEER_BAR}x peer",
            holds=held <= PEER_BAR,
            note="the same request, services and package; peer = Logger, Metrics, Tracer and APIGatewayRestResolver "
            "as Powertools documents them, Powertools on the path as a layer (bench/peer/powertools_app.py)",
        )

    def details(self) -> str:
        sections = []
        if self.imports:
            sections.append(
                "### What `import app` spends its time on\n\n"
                'Top 10 of `python -X importtime -c "import app"` by cumulative time '
                "(one run, from the unpacked package; nested modules count inside their parents):\n\n"
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


def deployed_environment(tree: DeployedTree, endpoint: str, pycache: str) -> dict[str, str]:
    """A deployed function's environment: the AWS adapters against ``endpoint``, the dev stage's names."""
    env = child_environment(PYTHONPYCACHEPREFIX=pycache)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("VIRTUAL_ENV", None)
    env.update(
        {
            ADAPTERS: ADAPTERS_AWS,
            "AWS_ENDPOINT_URL": endpoint,
            STAGE: DEPLOYED_STAGE,
            "PYTHONPATH": tree.python_path,
            LAMBDA_TASK_ROOT: str(tree.task),  # /var/task on Lambda
            "AWS_LAMBDA_FUNCTION_NAME": "ecommerce-backend-dev",  # set by Lambda; Powertools' Tracer reads it
        }
    )
    return env


def with_layer(env: dict[str, str], tree: DeployedTree) -> dict[str, str]:
    """``env`` with the peer's layer (Powertools, as ``/opt/python``) after the package and the runtime."""
    return {**env, "PYTHONPATH": os.pathsep.join((tree.python_path, str(tree.layer)))}


def measure_cold_start(options: Options, variants: tuple[Variant, ...] = VARIANTS) -> ColdStartResult:
    result = ColdStartResult(
        runs=options.runs, labels={v.name: v.label for v in variants}, peers={v.name for v in variants if v.peer}
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache,
        unread_udp_address() as daemon,
        deployed_tree(options.project_root, DEPLOYED_STAGE, peer_module=PEER_MODULE) as tree,
        stub_aws() as (stub, endpoint),
    ):
        # Bytecode goes to a private cache that the warm-up run fills: every timed child then loads
        # every module from bytecode, as on Lambda (the zip holds checked-hash bytecode for each of its
        # modules, infra/bytecode.py; the runtime's boto3 has its own), and the tree stays untouched.
        env = deployed_environment(tree, endpoint, pycache)
        traced_env = {**env, **active_tracing(daemon)}
        # Tracing off as Powertools documents it; our app reads only the daemon address, which is absent.
        untraced_env = {**env, "POWERTOOLS_TRACE_DISABLED": "true"}
        env_of = {
            v.name: with_layer(traced_env if v.traced else untraced_env, tree)
            if v.peer
            else (traced_env if v.traced else untraced_env)
            for v in variants
        }
        args = tuple(tree.child_args())

        def child(variant: Variant) -> Sample:
            return run_child(variant, tree.task, env_of[variant.name], args, stub)

        for variant in variants:  # warm-up, discarded
            child(variant)
        for index in range(options.runs):
            shift = index % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                result.samples.setdefault(variant.name, []).append(child(variant))
        result.imports = measure_importtime(tree.task, env, python_args=args)
        if any(v.traced for v in variants):
            setup = measure_importtime(tree.task, traced_env, TRACING_SETUP, python_args=args)
            result.tracing_imports = imported_after(setup)
    return result
