"""Each runbook's parameters: default (targets the local stage), check and meaning.

Each notebook's ``parameters`` cell (``notebooks/<name>.py``) holds these defaults, written out so
that JupyterLab users see and edit them; ``tests/unit/test_runbook_notebooks.py`` fails when the cell
and this spec differ, and the notebook validates what papermill injected against the same spec.
"""

from __future__ import annotations

from runbooks.params import (
    Param,
    is_bool,
    is_int,
    is_list_of,
    is_nonempty_str,
    is_number,
    is_optional,
    is_str,
    is_url,
    is_weights,
    one_of,
)
from runbooks.shop import SANDBOX_TOKENS
from runbooks.tuning import MAX_MEMORY_MB, MIN_MEMORY_MB, STRATEGIES

ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.com", "Admin-Passw0rd"  # the local stage's sandbox admin


def _common(name: str) -> dict[str, Param]:
    """The parameters every runbook takes; each writes into a folder of its own (made if missing)."""
    return {
        "api_url": Param("http://127.0.0.1:8000", is_url, "the stage's HTTP API (make run's by default)"),
        "aws_endpoint_url": Param(
            "http://127.0.0.1:4566", is_optional(is_url), "AWS endpoint (make run's); empty string for real AWS"
        ),
        "region": Param("us-east-1", is_nonempty_str, "AWS region of the stage"),
        "stage": Param("local", is_nonempty_str, "stage name: functions are ecommerce-backend-STAGE-HANDLER"),
        "output_dir": Param(
            f"out/{name}", is_nonempty_str, "where result.json, CSVs and PNGs go (relative to the working directory)"
        ),
    }


def _is_payloads(value: object) -> str | None:
    if not isinstance(value, list):
        return "must be a list of {'payload': ..., 'weight': number}"
    for entry in value:
        if not isinstance(entry, dict) or "payload" not in entry or set(entry) - {"payload", "weight"}:
            return "each entry must be {'payload': ..., 'weight': number}"
        weight = entry.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            return "weights must be non-negative numbers"
    return None


WORKFLOW_INSPECTION = {
    **_common("workflow_inspection"),
    "state_machine": Param("", is_str, "name or ARN; empty: ecommerce-backend-order-workflow-STAGE"),
    "window_minutes": Param(60, is_number(1, 60 * 24 * 90), "look at executions started this many minutes back"),
    "execution_arn": Param("", is_str, "inspect this execution; empty: the latest failed one, else the latest"),
    "max_executions": Param(20, is_int(1, 1000), "how many executions to analyse (newest first)"),
    "max_failed_share": Param(0.5, is_number(0, 1), "threshold: share of FAILED/TIMED_OUT/ABORTED executions"),
    "max_execution_p95_s": Param(60.0, is_number(0), "threshold: p95 execution duration in seconds"),
}

LOAD_TEST = {
    **_common("load_test"),
    "rate_rps": Param(2.0, is_number(0.1, 1000), "target rate, requests per second (after the ramp)"),
    "duration_s": Param(20.0, is_number(1, 3600), "length of the run, ramp included"),
    "ramp_s": Param(2.0, is_number(0, 3600), "linear ramp from 0 to the target rate"),
    "mix": Param({"browse": 3, "order": 1}, is_weights(("browse", "order")), "scenario weights"),
    "order_tokens": Param({"tok_success": 1}, is_weights(SANDBOX_TOKENS), "sandbox card tokens and their weights"),
    "slo_p95_ms": Param(5000.0, is_number(0), "SLO: p95 latency from the scheduled time, ms"),
    "slo_error_rate": Param(0.01, is_number(0, 1), "SLO: share of requests not answered 2xx"),
    "timeout_s": Param(10.0, is_number(0.1, 60), "per-request timeout"),
    "max_in_flight": Param(32, is_int(1, 512), "concurrent requests the generator may hold"),
    "generator_lag_tolerance_ms": Param(100.0, is_number(1), "a request sent later than this is late"),
    "pipeline_bound_s": Param(60.0, is_number(1, 3600), "every accepted order must be terminal within this"),
    "admin_email": Param(ADMIN_EMAIL, is_str, "admin who creates the load-test product; empty: use the catalog"),
    "admin_password": Param(ADMIN_PASSWORD, is_str, "that admin's password (local sandbox default)", secret=True),
    "allow_remote": Param(False, is_bool, "must be True to load a non-loopback API (a deployed stage)"),
    "seed": Param(0, is_int(0), "seed of the scenario draw"),
}

COST_ANALYSIS = {
    **_common("cost_analysis"),
    "window_days": Param(1, is_int(1, 455), "look-back window in days, as the optimizer's"),
    "functions": Param([], is_list_of(is_nonempty_str, 0), "function names; empty: every function of the stage"),
    "monthly_orders": Param(100_000, is_int(1), "order volume for the monthly projection"),
    "free_tier": Param(False, is_bool, "apply the monthly free tier in the projection"),
    "sample_executions": Param(20, is_int(0, 500), "executions whose histories give transitions per order"),
    "load_latest_report": Param(True, is_bool, "also show the latest scheduled optimizer report from S3"),
    "max_monthly_cost_usd": Param(1000.0, is_number(0), "threshold: projected monthly cost at monthly_orders"),
}

MEMORY_TUNING = {
    **_common("memory_tuning"),
    "function": Param("", is_str, "function to tune; empty: ecommerce-backend-STAGE-jwt_auth"),
    "memory_sizes": Param(
        [128, 256, 512, 1024], is_list_of(is_int(MIN_MEMORY_MB, MAX_MEMORY_MB), 1, 50), "sizes to measure, MB"
    ),
    "invocations": Param(10, is_int(2, 1000), "invocations per size"),
    "payloads": Param(
        [], _is_payloads, "payloads and weights; empty: a realistic one for the function (runbooks.payloads)"
    ),
    "strategy": Param("balanced", one_of(*STRATEGIES), "what to optimise: cost, speed or balanced"),
    "balanced_weight": Param(0.5, is_number(0, 1), "balanced: 1 = only cost, 0 = only speed"),
    "architectures": Param(
        ["x86_64"], is_list_of(one_of("x86_64", "arm64"), 1, 2), "architectures to compare (see the notes)"
    ),
    "apply": Param(False, is_bool, "set the chosen memory afterwards (otherwise the original is kept)"),
    "save_to_reports_bucket": Param(True, is_bool, "save the result where the cost optimizer reads it"),
    "monthly_invocations": Param(1_000_000, is_int(1), "volume for the monthly cost projection"),
    "max_error_rate": Param(0.0, is_number(0, 1), "threshold: share of failed invocations at any size"),
}

SPECS = {
    "workflow_inspection": WORKFLOW_INSPECTION,
    "load_test": LOAD_TEST,
    "cost_analysis": COST_ANALYSIS,
    "memory_tuning": MEMORY_TUNING,
}
