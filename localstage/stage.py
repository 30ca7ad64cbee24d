"""The local stage, assembled: embedded AWS, resources, functions, event delivery, seed, HTTP API.

Order matters: the installed versions of the packages the stage patches are checked first
(``localstage.patches.check_versions``: a mismatch refuses to start); the AWS endpoint and the stage's
outputs must be in the environment before the app is imported and its container built; and the HTTP
API starts last, so ``GET /health`` answering 200 means everything is ready.

Every change the stage makes to moto, botocore, Chalice or the X-Ray SDK goes through its ``Patches``
(or the ``Patches`` of the embedded AWS, the deployed functions and the shared invoke and in-process
hooks, each undone by its owner's stop), and ``stop`` undoes them all.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from infra.pipeline import reports_batch_item_failures
from localstage import apigateway, cloudformation, output
from localstage.async_invoke import configure_async_invokes
from localstage.envfile import state_dir, write_environment
from localstage.functions import API_HANDLER, FunctionSpec, discover_functions, load_chalice_config
from localstage.iam import enforcement, principals
from localstage.iam.stage import FunctionRoles, WorkflowSessions, function_policies, install_workflow_principal, revoked
from localstage.lambda_model import Environment
from localstage.lambda_processes import WorkerProcesses
from localstage.lambdas import LambdaEmulator
from localstage.moto_dispatch import dispatch_directly
from localstage.moto_patches import cache_asl_parse_trees, cache_moto_lookups, serialise_dynamodb_writes
from localstage.moto_speedups import speed_up_moto
from localstage.patches import Patches, check_versions
from localstage.runtime import DeployedFunctions
from localstage.server import ACCOUNT_ID, REGION, EmbeddedAws
from localstage.sfn_logs import deliver_execution_logs
from localstage.sqs_poller import SqsMapping, SqsPoller
from localstage.stage_options import StageOptions, banner
from localstage.telemetry_direct import direct_telemetry
from localstage.threads import detach_from_served_calls
from localstage.xray import ServiceTracing, XRayDaemon, install_sdk_context

log = logging.getLogger("localstage")

__all__ = ["LocalStage", "StageOptions", "banner"]

STAGE = "local"
PROJECT_DIR = Path(__file__).resolve().parent.parent


@dataclass
class LocalStage:
    options: StageOptions
    project_dir: Path = PROJECT_DIR
    aws: EmbeddedAws | None = None
    emulator: LambdaEmulator | None = None
    functions: list[FunctionSpec] = field(default_factory=list)
    pollers: list[SqsPoller] = field(default_factory=list)
    background: list[Any] = field(default_factory=list)  # scheduler and Step Functions watcher: stop()
    outputs: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    tracing: ServiceTracing | None = None  # X-Ray, when the stage's "xray" is on in .chalice/config.json
    xray_daemon: XRayDaemon | None = None
    authorizer: enforcement.Authorizer | None = None  # IAM, unless LOCAL_IAM=off
    roles: FunctionRoles | None = None
    deployed: DeployedFunctions | None = None  # what make deploy creates here, run from its code
    processes: WorkerProcesses | None = None  # the functions' environments, with LOCAL_LAMBDA_PROCESSES=1
    untested_versions: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # allowed mismatches
    _patches: Patches = field(default_factory=Patches)
    # One app container per execution environment; forgotten with the environment.
    _containers: weakref.WeakKeyDictionary[Environment, Any] = field(default_factory=weakref.WeakKeyDictionary)
    _containers_lock: threading.Lock = field(default_factory=threading.Lock)
    _http: Any = None
    _http_thread: threading.Thread | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.options.host}:{self.options.http_port}"

    def start(self) -> LocalStage:
        """Start everything; ``PatchVersionError`` before anything is changed if a patched package moved."""
        started = time.monotonic()
        self.untested_versions = check_versions(self.options.allow_untested)
        for package, (expected, installed) in self.untested_versions.items():
            log.warning("%s %s is installed; the stage's patches were written for %s", package, installed, expected)
        output.install()
        serialise_dynamodb_writes(self._patches)
        cache_moto_lookups(self._patches)
        cache_asl_parse_trees(self._patches)
        speed_up_moto(self._patches)
        dispatch_directly(self._patches)  # the SDK's requests answered without Flask's contexts
        deliver_execution_logs(self._patches)  # Express keeps its executions only there (localstage/sfn_logs.py)
        # What make deploy needs of the embedded AWS: CloudFormation for the resource stack, chalice
        # deploy's Swagger 2.0 import, API Gateway's deployment snapshots.
        cloudformation.install(self._patches)
        apigateway.install(self._patches)
        if self.options.iam.enforce:
            self._enforce_iam()
        self.aws = EmbeddedAws(
            self.options.host, self.options.aws_port, self.options.aws_throttle, iam=self.authorizer
        ).start()
        self._mark("aws", started)
        config = load_chalice_config(self.project_dir)
        stage_env = {
            **config.get("environment_variables", {}),
            **config.get("stages", {}).get(STAGE, {}).get("environment_variables", {}),
        }
        os.environ.update(stage_env)
        from localstage.provision import provision_stage

        self.outputs = provision_stage(STAGE)
        os.environ.update(self.outputs)  # the provisioned names win over config.json's
        if config.get("stages", {}).get(STAGE, {}).get("xray"):
            self._start_xray()
        joinable = {**stage_env, **self.aws.environment(), **self.outputs}
        write_environment(state_dir(self.project_dir), joinable)
        self._mark("provision", started)

        import_started = time.monotonic()
        if str(self.project_dir) not in sys.path:
            sys.path.insert(0, str(self.project_dir))
        app_module = importlib.import_module("app")
        init_ms = (time.monotonic() - import_started) * 1000
        self._register(app_module.app, config, init_ms)
        self._mark("functions", started)
        self._start_pollers()
        self._start_event_sources()
        self._start_deployed_functions()
        self._seed()
        self._mark("seed", started)
        self._serve_http(app_module.app)
        self.aws.start_throttling()  # only now: provisioning and seeding are not what the switch tests
        self._mark("http", started)
        return self

    def _start_xray(self) -> None:
        """The X-Ray daemon and the services' tracing (localstage/xray.py), before the app is imported."""
        from localstage import xray_moto

        self.xray_daemon = XRayDaemon(xray_moto.BackendXRay(ACCOUNT_ID, REGION), self.options.host).start()
        # What Lambda sets with active tracing; chalicelib's settings turn tracing on from it.
        os.environ["AWS_XRAY_DAEMON_ADDRESS"] = self.xray_daemon.address
        install_sdk_context(self._patches, self.xray_daemon.address)
        self.tracing = ServiceTracing(self.xray_daemon, REGION, ACCOUNT_ID)
        xray_moto.install(self._patches, self.tracing, self.options.xray_max_traces)

    def _enforce_iam(self) -> None:
        """Role sessions are authorised by the embedded AWS; functions and workflows act as their roles."""
        self.authorizer = enforcement.Authorizer(revoked=[str(r) for r in self.options.iam.revoke])
        enforcement.activate(self.authorizer)
        principals.install(self._patches)
        install_workflow_principal(self._patches, WorkflowSessions(lambda: boto3.client("sts")))
        log.info("IAM %s", self.options.iam.banner())

    def _mark(self, step: str, started: float) -> None:
        self.timings[step] = round(time.monotonic() - started, 3)

    def _register(self, app: Any, config: dict[str, Any], init_ms: float) -> None:
        from localstage.moto_lambda import ensure_role, moto_config, register_functions

        self.functions = discover_functions(app, STAGE, config)
        self.emulator = LambdaEmulator(
            direct_telemetry(ACCOUNT_ID, REGION),
            config_source=moto_config,
            init_duration_ms=init_ms,
            # A worker process reports its own peak memory: tracemalloc only for handlers on threads.
            measure_memory=self.options.measure_memory and not self.options.lambda_processes,
            faults=self.options.faults,
            tracing=self.tracing,
            environment_scope=self._environment_container,
        )
        if self.aws is not None:
            emulator = self.emulator
            self.aws.telemetry = lambda: emulator.telemetry
        if self.options.faults.enabled:
            log.warning("fault switch on: %s", self.options.faults)
        if self.options.iam.enforce:
            self.roles = self._function_roles(app.app_name, config)
            self.emulator.principals = self.roles.sessions
            assert self.authorizer is not None
            self.authorizer.watch([*self.roles.arns.values(), *self._workflow_roles()])
            roles: str | dict[str, str] = self.roles.arns
        else:
            roles = ensure_role(boto3.client("iam"), f"{app.app_name}-{STAGE}")
        if self.options.lambda_processes:
            emulator = self.emulator
            processes = WorkerProcesses(self.project_dir, STAGE, lambda name: emulator.principals.get(name))
            self.processes = processes.start()
        register_functions(self.emulator, self.functions, boto3.client("lambda"), roles, self.processes)
        configure_async_invokes(STAGE, self.functions)

    def _environment_container(self, spec: FunctionSpec, env: Environment) -> AbstractContextManager[None]:
        """Each execution environment has the app's container to itself, as each Lambda process does.

        Shared, one function's caches would serve another (the API handler's signing key would spare
        the authorizer its own ``GetSecretValue``), hiding calls that need a grant on AWS.
        """
        from chalicelib import bootstrap
        from chalicelib.bootstrap import Container, scoped_container
        from chalicelib.config import get_settings

        detach_from_served_calls(bootstrap._scoped)  # an SDK call's server side is no invocation's

        with self._containers_lock:
            found = self._containers.get(env)
            if found is None:
                found = self._containers[env] = Container(get_settings())
        return scoped_container(found)

    def _workflow_roles(self) -> list[str]:
        """The state machines' roles, watched for unused grants like the functions'."""
        sfn = boto3.client("stepfunctions")
        machines = sfn.list_state_machines()["stateMachines"]
        return [sfn.describe_state_machine(stateMachineArn=m["stateMachineArn"])["roleArn"] for m in machines]

    def _function_roles(self, app_name: str, config: dict[str, Any]) -> FunctionRoles:
        """One role per function with its policy from infra/policies.py, less the drill's revocations."""
        from infra.template import stage_template
        from localstage.server import ACCOUNT_ID, REGION

        names = {spec.name: spec.resource_name for spec in self.functions}
        xray = bool(config.get("stages", {}).get(STAGE, {}).get("xray"))
        policies = function_policies(
            set(names.values()), STAGE, stage_template(STAGE), xray, REGION, ACCOUNT_ID, self.outputs["USER_POOL_ID"]
        )
        policies = revoked(policies, self.options.iam.revoke)
        return FunctionRoles.create(boto3.client("iam"), boto3.client("sts"), names, policies, app_name, STAGE)

    def _start_pollers(self) -> None:
        from localstage.moto_lambda import detach_sqs_trigger

        assert self.emulator is not None
        sqs = boto3.client("sqs")
        lambda_client = boto3.client("lambda")
        for spec in self.functions:
            source = spec.sqs
            if source is None:
                continue
            if source.queue_arn:
                arn = source.queue_arn
                url = sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
            else:
                url = sqs.get_queue_url(QueueName=source.queue)["QueueUrl"]
                arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            window = source.maximum_batching_window_in_seconds or 0
            # As deployed: only handlers the deployment gives ReportBatchItemFailures get partial retries.
            partial = reports_batch_item_failures(spec.resource_name)
            # Registered with the Lambda API so list_event_source_mappings shows it, as chalice deploy would.
            lambda_client.create_event_source_mapping(
                FunctionName=spec.name,
                EventSourceArn=arn,
                BatchSize=source.batch_size,
                MaximumBatchingWindowInSeconds=window,
                FunctionResponseTypes=["ReportBatchItemFailures"] if partial else [],
            )
            detach_sqs_trigger(self._patches, arn)
            mapping = SqsMapping(
                spec.name, url, arn, source.batch_size, window, partial, self.options.retry_visibility_s
            )
            principal = self.roles.sessions.get(spec.name) if self.roles else None
            self.pollers.append(SqsPoller(mapping, self.emulator, sqs, principal=principal).start())

    def _start_event_sources(self) -> None:
        """SNS subscriptions, EventBridge rules and schedules for the handlers, and their delivery."""
        from localstage.alarm_actions import install_alarm_actions
        from localstage.event_sources import put_rules, subscribe_sns_handlers
        from localstage.eventbridge import Scheduler, install_events_hook
        from localstage.moto_lambda import async_invocations
        from localstage.sfn_events import install_status_events
        from localstage.sns_delivery import install_sns_hook

        assert self.emulator is not None
        async_invocations(self.emulator).delays = self.options.async_retry_delays_s
        install_sns_hook(self._patches)
        install_events_hook(self._patches)
        lambda_client = boto3.client("lambda")
        subscribe_sns_handlers(self.functions, boto3.client("sns"), lambda_client)
        put_rules(self.functions, boto3.client("events"), lambda_client)
        self.background.append(Scheduler().start())
        install_status_events(self._patches, functools.cache(lambda: boto3.client("events")), self.tracing)
        sns = functools.cache(lambda: boto3.client("sns"))  # made on the first alarm only
        install_alarm_actions(self._patches, sns)

    def _start_deployed_functions(self) -> None:
        """Functions created through the Lambda API with code (``chalice deploy``) run from their zip."""
        assert self.emulator is not None and self.aws is not None
        self.deployed = DeployedFunctions(
            self.emulator,
            self.aws.endpoint,
            work_dir=state_dir(self.project_dir) / "functions",
            xray_daemon_address=self.xray_daemon.address if self.xray_daemon else None,
            retry_visibility_s=self.options.retry_visibility_s,
        ).start()

    def _seed(self) -> None:
        from chalicelib.bootstrap import container
        from localstage.seed import AdminCredentials, seed_admin, seed_catalog

        admin = AdminCredentials.from_env()
        seed_admin(container(), admin)
        added = seed_catalog(container(), admin)
        log.info("seeded admin %s and %d products", admin.email, added)

    def _serve_http(self, app: Any) -> None:
        from chalice.cli.factory import CLIFactory

        from localstage.http_gateway import create_emulated_server

        assert self.emulator is not None
        chalice_config = CLIFactory(str(self.project_dir)).create_config_obj(chalice_stage_name=STAGE)
        api_function = next(spec.name for spec in self.functions if spec.resource_name == API_HANDLER)
        host, port = self.options.host, self.options.http_port
        self._http = create_emulated_server(
            app, chalice_config, host, port, self.emulator, api_function, self._patches, self.tracing
        )
        self._http_thread = threading.Thread(target=self._http.serve_forever, name="http-api", daemon=True)
        self._http_thread.start()

    def stop(self) -> None:
        """Stop in reverse order and undo every patch; each step runs even if an earlier one failed.

        The failures, if any, are raised together at the end (``ExceptionGroup``), after the last step.
        """
        errors: list[Exception] = []
        for step in self._stop_steps():
            try:
                step()
            except Exception as exc:  # the rest must still stop and be undone; all are raised below
                errors.append(exc)
        if errors:
            raise ExceptionGroup("stopping the local stage failed", errors)

    def _stop_steps(self) -> list[Callable[[], None]]:
        return [
            self._stop_http,
            self._stop_workers,
            functools.partial(self._stop_held, "deployed"),
            functools.partial(self._stop_held, "processes"),  # the environments' processes, then their zygote
            self._stop_emulator,
            functools.partial(self._stop_held, "xray_daemon"),
            self._stop_aws,
            self._patches.undo,  # moto's, botocore's, Chalice's and the X-Ray SDK's, newest first
            self._stop_enforcing,
        ]

    def _stop_http(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            http.shutdown()

    def _stop_workers(self) -> None:
        # Every poller and worker is told first, then each is joined: they end side by side
        # (each within its current long-poll or tick) instead of one after another.
        for stoppable in (*self.pollers, *self.background):
            stoppable.request_stop()
        pollers, self.pollers = self.pollers, []
        workers, self.background = self.background, []
        errors: list[Exception] = []
        for worker in (*pollers, *workers):
            try:
                worker.stop()
            except Exception as exc:  # the others still stop
                errors.append(exc)
        if errors:
            raise ExceptionGroup("stopping the pollers and workers failed", errors)

    def _stop_emulator(self) -> None:
        if self.emulator is not None:
            from localstage.moto_lambda import uninstall_invoke_hook

            uninstall_invoke_hook(self.emulator)  # stops its event queue; the last emulator restores moto's invoke
            self.emulator.telemetry.close()  # the last invocations' logs and metrics, before AWS stops

    def _stop_held(self, name: str) -> None:
        """Stop what the field ``name`` holds, if anything, forgetting it first (a second stop does nothing)."""
        held = getattr(self, name)
        setattr(self, name, None)
        if held is not None:
            held.stop()

    def _stop_aws(self) -> None:
        if self.aws is not None:
            aws, self.aws = self.aws, None
            aws.stop()  # and its middlewares, and botocore's in-process routing once no embedded AWS is left

    def _stop_enforcing(self) -> None:
        if self.authorizer is not None:
            authorizer, self.authorizer = self.authorizer, None
            enforcement.deactivate(authorizer)
