"""Execution environments as worker processes (localstage/lambda_processes.py), with a toy project.

The toy ``app.py`` is written to a temporary project; its functions run in processes forked from the
zygote and reach this test's embedded AWS over their pipes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest

from localstage.functions import FunctionSpec, discover_functions
from localstage.iam.principals import Acting, assume
from localstage.lambda_processes import WorkerProcesses
from localstage.lambdas import LambdaEmulator
from localstage.moto_lambda import ensure_role, moto_config, register_functions, uninstall_invoke_hook
from localstage.server import EmbeddedAws
from localstage.telemetry import Telemetry

pytestmark = pytest.mark.integration

TOY_APP = textwrap.dedent(
    """
    import os
    import time

    import boto3
    from chalice import Chalice

    app = Chalice(app_name="toy")
    CALLS = []  # module state: each environment has its own


    @app.lambda_function()
    def echo(event, context):
        CALLS.append(event)
        print("echoing", event)
        return {
            "event": event,
            "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
            "context": context.function_name,
            "calls": len(CALLS),
            "pid": os.getpid(),
        }


    @app.lambda_function()
    def boom(event, context):
        raise ValueError("the handler failed")


    @app.lambda_function()
    def slow(event, context):
        time.sleep(event.get("sleep", 5))
        return os.getpid()


    @app.lambda_function()
    def crash(event, context):
        os._exit(3)


    @app.lambda_function()
    def whoami(event, context):
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=event["bucket"])
        return {
            "arn": boto3.client("sts").get_caller_identity()["Arn"],
            "buckets": [b["Name"] for b in s3.list_buckets()["Buckets"]],
        }
    """
)

CONFIG = {
    "app_name": "toy",
    "stages": {"local": {"lambda_functions": {"slow": {"lambda_timeout": 1}}}},
}


@pytest.fixture(scope="module")
def toy_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("toy-project")
    (project / "app.py").write_text(TOY_APP)
    (project / ".chalice").mkdir()
    (project / ".chalice" / "config.json").write_text(json.dumps(CONFIG))
    return project


class Toy:
    def __init__(self, aws: EmbeddedAws, emulator: LambdaEmulator, processes: WorkerProcesses) -> None:
        self.aws = aws
        self.emulator = emulator
        self.processes = processes
        self.principals: dict[str, Acting] = {}

    def invoke(self, name: str, event: Any = None) -> Any:
        return self.emulator.invoke(f"toy-local-{name}", event or {})

    def client(self, service: str) -> Any:
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
        return session.client(service, endpoint_url=self.aws.endpoint)


def _toy_functions(project: Path) -> list[FunctionSpec]:
    """The toy app's functions as the stage discovers them (its module loaded here under its own name)."""
    spec = importlib.util.spec_from_file_location("toy_app_for_discovery", project / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return discover_functions(module.app, "local", CONFIG)


@contextmanager
def _toy_stage(project: Path) -> Iterator[Toy]:
    aws = EmbeddedAws(port=0, in_process=True).start(environ={})
    principals: dict[str, Acting] = {}
    environment = {**os.environ, **aws.environment()}
    processes = WorkerProcesses(project, "local", principals.get, environment=environment)
    toy = Toy(aws, LambdaEmulator(config_source=moto_config, measure_memory=False), processes)
    toy.principals = principals
    toy.emulator.telemetry = Telemetry(toy.client("logs"), toy.client("cloudwatch"))
    try:
        role = ensure_role(toy.client("iam"), "toy-local")
        register_functions(toy.emulator, _toy_functions(project), toy.client("lambda"), role, processes)
        principals["toy-local-whoami"] = assume(toy.client("sts"), role, "toy-local-whoami")
        yield toy
    finally:
        processes.stop()
        uninstall_invoke_hook(toy.emulator)
        toy.emulator.telemetry.close()
        aws.stop()


@pytest.fixture(scope="module")
def toy(toy_project: Path) -> Iterator[Toy]:
    with _toy_stage(toy_project) as running:
        yield running


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


def test_given_two_invocations_when_run_then_one_process_serves_both_and_only_the_first_is_cold(toy: Toy) -> None:
    first = toy.invoke("echo", {"n": 1})
    second = toy.invoke("echo", {"n": 2})

    one, two = first.json(), second.json()
    assert one["event"] == {"n": 1} and two["event"] == {"n": 2}
    assert one["function"] == one["context"] == "toy-local-echo"  # its own variables, as Lambda sets them
    assert one["pid"] == two["pid"] != os.getpid()
    assert two["calls"] == one["calls"] + 1  # the environment's module state carried over: warm
    assert first.init_ms is not None and second.init_ms is None
    assert any("echoing {'n': 1}" in line for line in first.log_lines)
    assert 20 <= first.max_memory_mb < 512  # the process's own peak resident set, not a model


def test_given_a_ctrl_c_in_the_terminal_when_it_reaches_the_environments_then_they_carry_on(toy: Toy) -> None:
    environment = toy.invoke("echo", {"n": 1}).json()["pid"]
    status = Path(f"/proc/{environment}/status").read_text()
    zygote = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
    # WHEN SIGINT reaches the environment and the zygote it was forked from, as a Ctrl-C reaches make run's group
    for pid in (environment, zygote):
        os.kill(pid, signal.SIGINT)
    time.sleep(0.3)
    # THEN both carry on (the stage stops them itself), and the warm environment serves the next invocation
    assert _pid_alive(environment) and _pid_alive(zygote)
    again = toy.invoke("echo", {"n": 2})
    assert again.json()["pid"] == environment and again.init_ms is None


def test_given_a_raising_handler_when_invoked_then_the_runtimes_error_and_log(toy: Toy) -> None:
    result = toy.invoke("boom")

    assert result.function_error == "Unhandled"
    payload = result.json()
    assert payload["errorType"] == "ValueError" and payload["errorMessage"] == "the handler failed"
    assert any("in boom" in frame for frame in payload["stackTrace"])
    assert "[ERROR] ValueError: the handler failed" in result.log_lines


def test_given_a_handler_past_its_timeout_when_invoked_then_its_process_is_killed_and_replaced(toy: Toy) -> None:
    late = toy.invoke("slow", {"sleep": 5})
    pids_after_timeout = set(toy.processes.processes())

    assert late.function_error == "Unhandled" and late.json()["errorType"] == "Sandbox.Timedout"
    quick = toy.invoke("slow", {"sleep": 0})
    assert quick.function_error is None and quick.init_ms is not None  # a new environment: cold
    assert quick.json() not in pids_after_timeout
    killed_gone = time.monotonic() + 5
    while any(_pid_alive(pid) for pid in pids_after_timeout - set(toy.processes.processes())):
        assert time.monotonic() < killed_gone, "the timed-out environment's process still runs"
        time.sleep(0.05)


def test_given_a_process_that_dies_when_invoked_then_the_invocation_fails_and_the_next_one_starts_afresh(
    toy: Toy,
) -> None:
    died = toy.invoke("crash")

    assert died.function_error == "Unhandled" and died.json()["errorType"] == "Runtime.ExitError"
    assert toy.invoke("echo", {"after": "crash"}).function_error is None


def test_given_a_role_session_when_the_handler_calls_aws_then_it_signs_as_the_role_and_reaches_this_aws(
    toy: Toy,
) -> None:
    result = toy.invoke("whoami", {"bucket": "made-by-a-worker"})

    assert result.function_error is None, result.json()
    answer = result.json()
    assert answer["arn"].endswith(":assumed-role/toy-local/toy-local-whoami")
    assert "made-by-a-worker" in answer["buckets"]
    buckets = toy.client("s3").list_buckets()["Buckets"]
    assert "made-by-a-worker" in [b["Name"] for b in buckets]  # the embedded AWS of this process


def test_given_the_runtime_stopped_when_stopped_then_no_process_is_left(toy_project: Path) -> None:
    with _toy_stage(toy_project) as running:
        assert running.invoke("echo").function_error is None
        pids = running.processes.processes()
        assert pids

    deadline = time.monotonic() + 5
    while any(_pid_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, "an environment's process outlived the runtime"
        time.sleep(0.05)
    late = running.invoke("echo")  # one racing the stop: refused, and no zygote started again
    assert late.function_error == "Unhandled" and "stopped" in late.json()["errorMessage"]
    assert running.processes._zygote is None
