"""A function's code as Lambda runs it: the unpacked deployment package, the runtime's boto3, a stub AWS.

The development virtualenv is not what a function imports: there PyJWT finds ``cryptography`` (not in
the zip) and loads it, and ``site`` puts every dev package on the path. A cold-start child that runs
from the virtualenv measures an import graph no deployed function has. ``deployed_tree`` builds the
package as ``make package`` does (``bench.package.build_package``: Chalice's zip, ``vendor/`` included),
unpacks it, and lays out a second directory holding only what the Lambda Python runtime provides
(boto3, botocore and their dependencies, linked from the virtualenv at the pinned versions). A child
started with ``python -S`` and ``PYTHONPATH=<task>:<runtime>`` sees the standard library, the zip and
the runtime's packages, as ``/var/task`` and ``/var/runtime`` on Lambda.

``StubAws`` is the endpoint such a child's boto3 talks to (``AWS_ENDPOINT_URL``): a small HTTP server
that answers every DynamoDB JSON call with an empty object (``GetItem`` of a missing item) and counts
the calls by ``X-Amz-Target``, so a benchmark can check that the route really built its client and made
its call, as the first invocation on Lambda does. Anything else it answers 400, so a route that starts
calling another service fails the benchmark instead of being timed against a silent stub.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.package import build_package

# What the Lambda Python 3.11 runtime has on its path besides the standard library: boto3 and what it needs.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
# What the Powertools layer adds (its dependencies that the runtime lacks): the peer's /opt/python.
PEER_LAYER_PACKAGES = ("aws_lambda_powertools", "typing_extensions")
PEER_SOURCE = Path(__file__).with_name("peer") / "powertools_app.py"
DYNAMODB_TARGET_PREFIX = "DynamoDB_20120810."


class DeployedTreeError(RuntimeError):
    """A runtime package could not be found in this interpreter, or the package did not build."""


@dataclass(frozen=True)
class DeployedTree:
    task: Path  # the unpacked zip: /var/task
    runtime: Path  # boto3, botocore and their dependencies: the runtime's own packages
    layer: Path  # Powertools, for the peer only: /opt/python

    @property
    def python_path(self) -> str:
        return os.pathsep.join((str(self.task), str(self.runtime)))

    def child_args(self) -> list[str]:
        """Interpreter flags: no ``site``, so no virtualenv package is importable."""
        return ["-S"]


def link_runtime_packages(target: Path, packages: tuple[str, ...] = RUNTIME_PACKAGES) -> None:
    """Symlink each top-level package (or single-module distribution) of this interpreter into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise DeployedTreeError(f"{name} is not installed in this interpreter (requirements-dev.txt pins it)")
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (target / source.name).symlink_to(source, target_is_directory=source.is_dir())


@contextmanager
def deployed_tree(project_root: Path, stage: str = "dev", peer_module: str = "") -> Iterator[DeployedTree]:
    """The package built from ``project_root`` and unpacked, with the runtime's packages beside it.

    With ``peer_module``, the Powertools peer is copied into the package under that name, and its
    layer (Powertools) laid out beside: the same package, two handlers.
    """
    with tempfile.TemporaryDirectory(prefix="bench-deployed-") as workdir:
        root = Path(workdir)
        zip_path = build_package(project_root, stage, root)
        task = root / "task"
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(task)
        runtime = root / "runtime"
        link_runtime_packages(runtime)
        layer = root / "layer"
        link_runtime_packages(layer, PEER_LAYER_PACKAGES if peer_module else ())
        if peer_module:
            shutil.copy2(PEER_SOURCE, task / f"{peer_module}.py")
        yield DeployedTree(task, runtime, layer)


@dataclass
class StubAws:
    """Counts of the calls it answered, by ``X-Amz-Target`` (``DynamoDB_20120810.GetItem``)."""

    calls: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, target: str, answered: bool) -> None:
        with self._lock:
            (self.calls if answered else self.refused)[target] += 1

    def snapshot(self) -> tuple[Counter[str], Counter[str]]:
        with self._lock:
            return Counter(self.calls), Counter(self.refused)


def _handler(stub: StubAws) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            target = self.headers.get("X-Amz-Target") or f"{self.command} {self.path}"
            answered = target.startswith(DYNAMODB_TARGET_PREFIX)
            stub.record(target, answered)
            body = b"{}" if answered else b'{"__type":"StubAws#Unsupported","message":"not stubbed"}'
            self.send_response(200 if answered else 400)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-amzn-RequestId", "stub")
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = do_DELETE = do_POST

        def log_message(self, format: str, *args: object) -> None:
            return  # the benchmark reports the counts; a line per request would only be noise

    return Handler


@contextmanager
def stub_aws() -> Iterator[tuple[StubAws, str]]:
    """A running stub and its endpoint URL (``http://127.0.0.1:<port>``), stopped on exit."""
    stub = StubAws()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    thread = threading.Thread(target=server.serve_forever, name="stub-aws", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield stub, f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
