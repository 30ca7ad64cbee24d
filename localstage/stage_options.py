"""What the local stage reads from the environment (read once), and the banner it prints when ready."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from localstage.async_invoke import retry_delays_from_env
from localstage.aws_throttle import ThrottlePlan
from localstage.faults import FaultPlan
from localstage.iam.stage import IamOptions
from localstage.lambda_processes import enabled_from_env as lambda_processes_from_env
from localstage.patches import allowed_from_env
from localstage.server import DEFAULT_HOST

if TYPE_CHECKING:
    from localstage.stage import LocalStage


@dataclass(frozen=True)
class StageOptions:
    """Everything the stage reads from the environment, read once (see docs/local-stage.md)."""

    host: str = DEFAULT_HOST
    aws_port: int = 4566
    http_port: int = 8000
    retry_visibility_s: int | None = None
    measure_memory: bool = True
    # Each execution environment a worker process (LOCAL_LAMBDA_PROCESSES=0: threads; lambda_processes.py).
    lambda_processes: bool = True
    async_retry_delays_s: tuple[float, ...] = (60.0, 120.0)
    faults: FaultPlan = field(default_factory=FaultPlan)  # off; LOCAL_FAULT_* (localstage/faults.py)
    aws_throttle: ThrottlePlan = field(default_factory=ThrottlePlan)  # off; LOCAL_AWS_THROTTLE_* (aws_throttle.py)
    xray_max_traces: int = 2_000  # the embedded X-Ray keeps the latest N traces (localstage/xray_moto.py)
    iam: IamOptions = field(default_factory=IamOptions)  # enforced; LOCAL_IAM=off, LOCAL_IAM_REVOKE (iam/stage.py)
    # Packages whose installed version may differ from the layer's (LOCAL_ALLOW_UNTESTED_VERSIONS; patches.py).
    allow_untested: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> StageOptions:
        env = dict(os.environ) if env is None else env
        retry = env.get("LOCAL_SQS_RETRY_VISIBILITY_SECONDS")
        return cls(
            aws_port=int(env.get("AWS_PORT") or 4566),
            http_port=int(env.get("PORT") or 8000),
            retry_visibility_s=int(retry) if retry else None,
            measure_memory=env.get("LOCAL_LAMBDA_MEASURE_MEMORY", "1") != "0",
            lambda_processes=lambda_processes_from_env(env),
            async_retry_delays_s=retry_delays_from_env(env),
            faults=FaultPlan.from_env(env),
            aws_throttle=ThrottlePlan.from_env(env),
            xray_max_traces=int(env.get("LOCAL_XRAY_MAX_TRACES") or 2_000),
            iam=IamOptions.from_env(env),
            allow_untested=allowed_from_env(env),
        )


def banner(stage: LocalStage) -> str:
    from localstage.seed import AdminCredentials

    admin = AdminCredentials.from_env()
    assert stage.aws is not None
    names = "\n".join(f"    {spec.name}" for spec in stage.functions)
    untested = "".join(
        f"  UNTESTED      {package} {installed} (the layer was written for {expected})\n"
        for package, (expected, installed) in stage.untested_versions.items()
    )
    return (
        f"\n  ecommerce-backend local stage is ready (in {stage.timings.get('http', 0):.1f} s)\n\n"
        f"  HTTP API      {stage.api_url}   (try {stage.api_url}/health)\n"
        f"  AWS endpoint  {stage.aws.endpoint}   (AWS_ENDPOINT_URL, region us-east-1, any credentials)\n"
        f"  Admin         {admin.email} / {admin.password}\n"
        f"  IAM           {stage.options.iam.banner()}\n"
        f"{untested}"
        f"  Functions\n{names}\n\n"
        "  Ctrl-C stops everything.\n"
    )
