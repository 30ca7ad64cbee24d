"""Functions deployed through the Lambda API (``chalice deploy``, the CLI), run as Lambda runs them.

``DeployedFunctions`` is the entry point the stage starts. It finds the functions created in the
embedded AWS with their own code (a python3.x zip that is not the stage's placeholder) and not
owned by an in-process spec, and registers each with the stage's ``LambdaEmulator`` as a spec whose
handler hands the event to a worker process (``environments.ProcessRuntime``). So every path that
reaches the emulator reaches them too: ``lambda:Invoke``, Step Functions tasks, SNS subscriptions,
EventBridge rules, asynchronous retries and destinations (``moto_lambda.find_function``).

How functions are found, three ways, so none waits on the others:

- on first sight: ``moto_lambda``'s claimant hook, when an invoke or a delivery names a function
  no emulator owns yet (so ``create-function`` then ``invoke`` works at once);
- a ``PeriodicWorker`` that reads moto's Lambda backend every ``interval_s``: registers new
  functions, forgets deleted ones (and stops their processes), reconciles event source mappings;
- the Lambda API's event source mapping calls (create, update, delete), wrapped through
  ``localstage.patches``, apply at once: moto's own synchronous SQS trigger is detached before a
  message can reach it, and a changed ``BatchSize``, batching window or ``FunctionResponseTypes``
  (``ReportBatchItemFailures``) holds from the next batch.

Each deployed function acts as its execution role: the role is assumed once (session name = the
function's name), its keys go to the function's processes, and the same session is the emulator's
principal for the function (its log lines) and the SQS poller's (receive, delete).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import boto3

from localstage.background import PeriodicWorker
from localstage.functions import FunctionSpec
from localstage.iam.principals import acting_as
from localstage.lambda_model import LiveConfig
from localstage.lambdas import LambdaEmulator
from localstage.moto_lambda import (
    add_claimant,
    detach_sqs_trigger,
    function_name_from_arn,
    install_invoke_hook,
    remove_claimant,
)
from localstage.patches import Patches, require
from localstage.runtime.code import CodeCache, is_deployment_package, runtime_libraries
from localstage.runtime.environments import FunctionSetup, ProcessRuntime
from localstage.runtime.sessions import Principals, RoleSessions
from localstage.server import ACCOUNT_ID, FAKE_CREDENTIALS, REGION
from localstage.sqs_poller import SqsMapping, SqsPoller

log = logging.getLogger("localstage.runtime")

REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"


class DeployedFunctions:
    """Discovers functions deployed through the Lambda API and runs them in worker processes.

    ``start()`` / ``stop()``; ``endpoint`` is the embedded AWS's URL (what the functions get as
    ``AWS_ENDPOINT_URL``). ``work_dir`` holds the unpacked code (kept, keyed by CodeSha256), the
    runtime's library links and each environment's scratch space; without one, a temporary directory
    removed on stop. ``xray_daemon_address`` defaults to the stage's ``AWS_XRAY_DAEMON_ADDRESS``.
    """

    def __init__(
        self,
        emulator: LambdaEmulator,
        endpoint: str,
        *,
        session: boto3.session.Session | None = None,
        work_dir: Path | None = None,
        xray_daemon_address: str | None = None,
        retry_visibility_s: int | None = None,
        interval_s: float = 0.5,
        python: str = sys.executable,
        region: str = REGION,
        account: str = ACCOUNT_ID,
    ) -> None:
        self.emulator = emulator
        self.endpoint = endpoint
        # The stage's own clients act as the account's administrator, as the Lambda service does.
        self._session = session or boto3.session.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=region,
        )
        self._work_dir = work_dir
        self._owns_work_dir = work_dir is None
        self._xray = xray_daemon_address or os.environ.get("AWS_XRAY_DAEMON_ADDRESS")
        self._retry_visibility_s = retry_visibility_s
        self._interval_s = interval_s
        self._python = python
        self._region = region
        self._account = account
        self.sessions = RoleSessions(self._client("sts"))
        self._sqs = self._client("sqs")
        self._names: set[str] = set()  # registered by us (the rest of the emulator's are in-process)
        self._declined: set[tuple[str, str]] = set()  # (name, reason) already logged
        self._pollers: dict[str, SqsPoller] = {}  # by event source mapping UUID
        self._stopping: list[SqsPoller] = []
        self._lock = threading.RLock()
        self._patches = Patches()
        self._watcher: _Watcher | None = None
        self.runtime: ProcessRuntime | None = None
        self._principals: Principals | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        require("moto")
        if self._work_dir is None:
            self._work_dir = Path(tempfile.mkdtemp(prefix="localstage-runtime-"))
        self._work_dir.mkdir(parents=True, exist_ok=True)
        self.runtime = ProcessRuntime(
            setups=self._setup,
            credentials=self.sessions.of,
            code=CodeCache(self._work_dir / "code"),
            libraries=runtime_libraries(self._work_dir / "runtime"),
            scratch_root=self._work_dir / "environments",
            endpoint=self.endpoint,
            region=self._region,
            xray_daemon_address=self._xray,
            python=self._python,
        )
        self._principals = Principals(self.sessions, self.emulator.principals)
        self.emulator.principals = self._principals
        install_invoke_hook(self.emulator)
        add_claimant(self._claim)
        self._hook_mapping_calls()
        self.refresh()
        self._watcher = _Watcher(self, self._interval_s).start()
        log.info("deployed functions: watching the Lambda API (work dir %s)", self._work_dir)
        return self

    def stop(self) -> None:
        """Stop watching, polling and every process, and forget the functions; each step runs even if one fails."""
        errors: list[Exception] = []
        for step in (self._stop_watching, self._stop_pollers, self._stop_environments, self._forget_functions):
            try:
                step()
            except Exception as exc:  # the rest must still stop (no process left behind); all are raised below
                errors.append(exc)
        if errors:
            raise ExceptionGroup("stopping the deployed functions failed", errors)

    def _stop_watching(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        remove_claimant(self._claim)
        self._patches.undo()

    def _stop_pollers(self) -> None:
        with self._lock:
            pollers = [*self._pollers.values(), *self._stopping]
            self._pollers.clear()
            self._stopping.clear()
        for poller in pollers:  # told first, joined after: they end side by side
            poller.request_stop()
        for poller in pollers:
            poller.stop()

    def _stop_environments(self) -> None:
        if self.runtime is not None:
            self.runtime.stop()

    def _forget_functions(self) -> None:
        with self._lock:
            names = sorted(self._names)
            self._names.clear()
        for name in names:
            self.emulator.unregister(name)
        if self._principals is not None and self.emulator.principals is self._principals:
            self.emulator.principals = self._principals.fallback
        if self._owns_work_dir and self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)

    @property
    def names(self) -> list[str]:
        """The deployed functions registered with the emulator."""
        with self._lock:
            return sorted(self._names)

    # -- discovery -----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Register new functions, forget deleted ones, reconcile the SQS event source mappings."""
        current = self._latest_functions()
        with self._lock:
            for name, fn in current.items():
                if name not in self._names and self._claimable(fn):
                    self._register(fn)
            deleted = sorted(self._names - set(current))
            self._names -= set(deleted)
        for name in deleted:
            log.info("%s was deleted: stopping its environments", name)
            self.emulator.unregister(name)
            self.sessions.forget(name)
            if self.runtime is not None:
                self.runtime.stop_function(name)
        self.sync_mappings()

    def _claim(self, name: str) -> LambdaEmulator | None:
        """``moto_lambda``'s claimant: a function nobody owns yet, seen by an invoke or a delivery."""
        with self._lock:
            if name in self._names:
                return self.emulator
            try:
                fn = self._backend().get_function(name)
            except Exception:  # moto's UnknownFunctionException: not a function of the embedded AWS
                return None
            if not self._claimable(fn):
                return None
            self._register(fn)
            return self.emulator

    def _claimable(self, fn: Any) -> bool:
        name = fn.function_name
        if name in self.emulator:  # an in-process function of the stage's (or another harness's)
            return False
        reason = None
        if getattr(fn, "package_type", "Zip") != "Zip":
            reason = "it is a container image; only zip packages run locally"
        elif not str(fn.run_time or "").startswith("python3"):
            reason = f"its runtime is {fn.run_time}; only python3.x runs locally"
        elif not getattr(fn, "code_bytes", b"") or not is_deployment_package(fn.code_bytes):
            reason = "its code is not a deployment package"
        if reason is None:
            return True
        if (name, reason) not in self._declined:
            self._declined.add((name, reason))
            log.info("%s is left to moto (which would need Docker): %s", name, reason)
        return False

    def _register(self, fn: Any) -> None:
        assert self.runtime is not None
        name = fn.function_name
        try:
            self.sessions.of(name, fn.role)  # now, so even its first log stream is written as its role
        except Exception:  # its environments will report the failure when they start
            log.exception("%s: could not assume its role %s", name, fn.role)
        spec = FunctionSpec(
            name=name,
            resource_name=str(fn.handler).rsplit(".", 1)[-1],  # the faults switch matches handler names
            handler=self.runtime.handle,
            handler_string=str(fn.handler),
            memory_mb=int(fn.memory_size),
            timeout_s=int(fn.timeout),
            environment=dict(fn.environment_vars or {}),
            active_tracing=(fn.tracing_config or {}).get("Mode") == "Active",
        )
        with acting_as(None):  # the log group is the service's to create, whoever's thread found it
            self.emulator.register(spec, runtime=self.runtime)
        self._names.add(name)
        log.info("%s (%s, %s) runs from its deployed code", name, fn.run_time, fn.handler)

    def _setup(self, spec: FunctionSpec, config: LiveConfig) -> FunctionSetup:
        qualifier = None if config.version == "$LATEST" else config.version
        fn = self._backend().get_function(spec.name, qualifier)
        return FunctionSetup(
            name=spec.name,
            version=str(fn.version),
            handler=str(fn.handler),
            runtime=str(fn.run_time),
            role_arn=str(fn.role),
            code_sha256=str(fn.code_sha_256),
            code=bytes(fn.code_bytes),
            variables={str(k): str(v) for k, v in (fn.environment_vars or {}).items()},
        )

    # -- SQS event source mappings -------------------------------------------------------------

    def sync_mappings(self) -> None:
        """One poller per enabled SQS mapping of a deployed function, with the mapping's settings."""
        wanted: dict[str, SqsMapping] = {}
        for esm in list(self._backend().list_event_source_mappings("", "")):
            mapping = self._mapping(esm)
            if mapping is not None:
                wanted[esm.uuid] = mapping
        started: list[SqsPoller] = []
        with self._lock:
            for uuid, poller in list(self._pollers.items()):
                mapping = wanted.get(uuid)
                if mapping is None or (mapping.function_name, mapping.queue_arn) != (
                    poller.mapping.function_name,
                    poller.mapping.queue_arn,
                ):
                    del self._pollers[uuid]
                    poller.stop(timeout=0)  # it ends after its current poll; stop() joins it
                    self._stopping.append(poller)
                    log.info("%s: SQS mapping %s removed", poller.mapping.function_name, uuid)
            for uuid, mapping in wanted.items():
                principal = self.sessions.get(mapping.function_name)
                running = self._pollers.get(uuid)
                if running is not None:
                    # Read at every poll: the next batch follows the updated mapping.
                    running.mapping, running.principal = mapping, principal
                    continue
                new = SqsPoller(mapping, self.emulator, self._sqs, principal=principal)
                self._pollers[uuid] = new
                started.append(new)
                log.info("%s: polling %s (batch %d)", mapping.function_name, mapping.queue_arn, mapping.batch_size)
        for poller in started:
            poller.start()

    def _mapping(self, esm: Any) -> SqsMapping | None:
        arn = str(esm.event_source_arn)
        if arn.split(":")[2] != "sqs" or not esm.enabled:
            return None
        name, _ = function_name_from_arn(str(esm.function_arn))
        if self._claim(name) is None:
            return None  # not a deployed function: the stage's own, or moto's
        detach_sqs_trigger(self._patches, arn, str(esm.function_arn))
        account, queue = arn.split(":")[4:6]
        return SqsMapping(
            function_name=name,
            queue_url=f"{self.endpoint}/{account}/{queue}",  # moto's queue URL, on the embedded AWS
            queue_arn=arn,
            batch_size=int(esm.batch_size),
            batching_window_s=float(esm.max_batch_window or 0),
            report_batch_item_failures=REPORT_BATCH_ITEM_FAILURES in (esm.function_response_types or []),
            retry_visibility_s=self._retry_visibility_s,
        )

    def _hook_mapping_calls(self) -> None:
        from moto.awslambda.models import LambdaBackend

        def applied_at_once(original: Callable[..., Any]) -> Callable[..., Any]:
            def call(backend: Any, *args: Any, **kwargs: Any) -> Any:
                result = original(backend, *args, **kwargs)
                try:
                    self.sync_mappings()
                except Exception:  # the API call itself succeeded; the watcher applies it within interval_s
                    log.exception("could not apply an event source mapping change at once")
                return result

            return call

        for method in ("create_event_source_mapping", "update_event_source_mapping", "delete_event_source_mapping"):
            self._patches.wrap("moto", LambdaBackend, method, applied_at_once)

    # -- helpers -------------------------------------------------------------------------------

    def _latest_functions(self) -> dict[str, Any]:
        # moto's list_functions() iterates its dict while requests may add to it: read a copy instead.
        groups = list(self._backend()._lambdas._functions.values())
        return {group["latest"].function_name: group["latest"] for group in groups if group["latest"] is not None}

    def _backend(self) -> Any:
        from moto.awslambda.models import lambda_backends

        return lambda_backends[self._account][self._region]

    def _client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self.endpoint)

    def mapping_settings(self, uuid: str) -> SqsMapping | None:
        """The settings the poller of mapping ``uuid`` delivers with now (``None``: not polled)."""
        with self._lock:
            poller = self._pollers.get(uuid)
            return poller.mapping if poller is not None else None


class _Watcher(PeriodicWorker):
    """Reads the Lambda API every ``interval_s``: what ``chalice deploy`` created, changed or deleted."""

    thread_name = "deployed-functions"

    def __init__(self, deployed: DeployedFunctions, interval_s: float) -> None:
        super().__init__(interval_s)
        self._deployed = deployed

    def tick(self) -> None:
        self._deployed.refresh()
