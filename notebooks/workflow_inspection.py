# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Workflow inspection
#
# Step Functions executions of the order workflow: statuses, one execution's timeline (Parallel
# branches side by side, retries and their backoff gaps, error and cause, its order), per-state
# p50/p95 and failures, transitions and cost per execution (`chalicelib.cost`).
#
# Parameters: see the table below the parameters cell, or `runbooks/specs.py`; the verdict is at the end
# (first, in the HTML report).

# %%
import pathlib
import sys

# Importable from JupyterLab (cwd notebooks/) and from papermill runs inside the checkout.
_here = [pathlib.Path.cwd(), *pathlib.Path.cwd().parents]
_root = next((p for p in _here if (p / "runbooks" / "__init__.py").is_file()), None)
if _root is not None and str(_root) not in sys.path:
    sys.path.insert(0, str(_root))

from runbooks import params, report
from runbooks.specs import SPECS

SPEC = SPECS["workflow_inspection"]
_before = params.snapshot(globals())  # every name that appears after this is a parameter, or a typo

# %% tags=["parameters"]
api_url = "http://127.0.0.1:8000"
aws_endpoint_url = "http://127.0.0.1:4566"
region = "us-east-1"
stage = "local"
output_dir = "out/workflow_inspection"
state_machine = ""
window_minutes = 60
execution_arn = ""
max_executions = 20
max_failed_share = 0.5
max_execution_p95_s = 60.0

# %%
# Papermill only logs an unknown parameter; this fails the run on one, or on a bad value.
P = params.validate(globals(), _before, SPEC)
report.parameters(P, SPEC)

# %%
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from runbooks import aws, plots, stats, workflow
from runbooks.outputs import Outputs, enforce

out = Outputs(P["output_dir"])
sfn, lam, ddb = aws.clients(P["aws_endpoint_url"], P["region"], "stepfunctions", "lambda", "dynamodb")
machine = P["state_machine"] or f"ecommerce-backend-order-workflow-{P['stage']}"
if machine.startswith("arn:"):
    arn = machine
else:
    found = workflow.paged(sfn.list_state_machines, "stateMachines")
    arns = [m["stateMachineArn"] for m in found if m["name"] == machine]
    if not arns:
        raise LookupError(f"no state machine named {machine!r} in {P['region']}")
    arn = arns[0]
definition = json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"])
lane_of = workflow.lanes(definition)
memory_by_function = {
    f["FunctionName"]: f["MemorySize"]
    for page in lam.get_paginator("list_functions").paginate()
    for f in page["Functions"]
}
report.markdown(f"State machine `{arn}`")

# %% [markdown]
# ## Executions by status
#
# Listed newest first, following `nextToken` (AWS pages; moto does not).

# %%
since = datetime.now(UTC) - timedelta(minutes=P["window_minutes"])
executions = workflow.list_executions(sfn, arn, since=since, limit=P["max_executions"])
if P["execution_arn"] and all(e["executionArn"] != P["execution_arn"] for e in executions):
    executions.insert(0, sfn.describe_execution(executionArn=P["execution_arn"]))
traces = [
    workflow.parse_history(workflow.get_history(sfn, e["executionArn"]), e, lane_of)
    for e in report.tracked(executions, len(executions), "histories")
]
by_status: dict[str, int] = {}
for t in traces:
    by_status[t.status] = by_status.get(t.status, 0) + 1
if by_status:
    out.figure("statuses.png", plots.status_counts(by_status, "Executions by status"))
report.table(
    [{"status": k, "executions": v} for k, v in by_status.items()],
    empty=f"No executions in the last {P['window_minutes']} minutes.",
)

# %% [markdown]
# ## One execution: its timeline, retries, failure and order

# %%
chosen = None
order: dict[str, Any] = {}
retries: list[dict[str, Any]] = []
if traces:
    failed = [t for t in traces if t.status in ("FAILED", "TIMED_OUT", "ABORTED")]
    wanted = [t for t in traces if t.arn == P["execution_arn"]]
    chosen = (wanted or failed or traces)[0]
if chosen is None:
    report.markdown("**No executions in the window**: nothing to inspect.")
else:
    spans = [s.row() for s in chosen.spans]
    out.figure("timeline.png", plots.timeline(spans, f"{chosen.arn.rsplit(':', 1)[-1]} ({chosen.status})"))
    report.table(spans, ["state", "lane", "duration_ms", "status", "attempts", "backoff_gaps_ms", "errors"])
    if chosen.order_id:
        try:
            key = {"order_id": {"S": chosen.order_id}}
            item = ddb.get_item(TableName=f"ecommerce-backend-orders-{P['stage']}", Key=key).get("Item", {})
            kept = ("status", "failure_reason", "total_amount", "correlation_id", "created_at")
            order = {k: next(iter(v.values())) for k, v in item.items() if k in kept}
        except Exception as exc:  # the orders table may not be readable with these credentials: say so
            order = {"unavailable": f"{type(exc).__name__}: {exc}"}
    retries = [
        {
            "state": s.name,
            "attempt": i + 1,
            "outcome": a.outcome,
            "error": a.error,
            "gap_before_next_ms": ([*s.backoff_gaps_ms, None])[i],
        }
        for s in chosen.spans
        if s.retries
        for i, a in enumerate(s.attempts)
    ]
    failure = f" **Error** `{chosen.error}`, cause: {chosen.cause}" if chosen.error else ""
    report.markdown(f"**Execution** `{chosen.arn}`: **{chosen.status}**, {chosen.transitions} transitions.{failure}")
    report.table({"order_id": chosen.order_id, **order}, title="Its order")
    report.table(retries, title="Retries", empty="No state was retried in this execution.")

# %% [markdown]
# ## Across executions: per-state durations and failures, transitions and cost per execution

# %%
span_rows = workflow.span_rows(traces)
per_state: list[dict[str, Any]] = []
for state in dict.fromkeys(r["state"] for r in span_rows):
    group = [r for r in span_rows if r["state"] == state]
    done = [r["duration_ms"] for r in group if r["duration_ms"] is not None]
    per_state.append(
        {
            "state": state,
            "count": len(group),
            "p50_ms": stats.percentile(done, 50) if done else None,
            "p95_ms": stats.percentile(done, 95) if done else None,
            "failures": sum(1 for r in group if r["status"] == "FAILED"),
            "retries": sum(r["retries"] for r in group),
        }
    )
per_execution: list[dict[str, Any]] = []
for t in traces:
    cost = workflow.execution_cost(t, memory_by_function)
    per_execution.append(
        {
            "execution": t.arn.rsplit(":", 1)[-1],
            "order_id": t.order_id,
            "status": t.status,
            "duration_s": (t.stopped - t.started).total_seconds() if t.stopped else None,
            "transitions": t.transitions,
            "retries": sum(s.retries for s in t.spans),
            "cost_usd": cost.total,
            "step_functions_usd": cost.by_service().get(workflow.Service.STEP_FUNCTIONS, 0),
            "lambda_usd": cost.by_service().get(workflow.Service.LAMBDA, 0),
        }
    )
timed = [r for r in per_state if r["p50_ms"] is not None]
if timed:
    out.figure("state_durations.png", plots.state_durations(timed))
report.table(per_state, title="Per state", empty="No state ran in the window.")
report.table(per_execution, title="Per execution", empty="No executions in the window.")

# %% [markdown]
# ## Thresholds and results
#
# `result.json`, `executions.csv`, `states.csv` and `spans.csv` are written to `output_dir`.

# %% tags=["verdict"]
import pandas as pd

durations = [e["duration_s"] for e in per_execution if e["duration_s"] is not None]
bad = sum(1 for t in traces if t.status in ("FAILED", "TIMED_OUT", "ABORTED"))
failed_share = bad / len(traces) if traces else 0.0
p95_s = stats.percentile(durations, 95) if durations else 0.0
failures: list[str] = []
passed: list[str] = []
share = f"failed share {failed_share:.0%} ({bad} of {len(traces)})"
if failed_share > P["max_failed_share"]:
    failures.append(f"{share} > max_failed_share {P['max_failed_share']:.0%}")
else:
    passed.append(f"{share} <= max_failed_share {P['max_failed_share']:.0%}")
if p95_s > P["max_execution_p95_s"]:
    failures.append(f"execution p95 {p95_s:.1f} s > max_execution_p95_s {P['max_execution_p95_s']} s")
else:
    passed.append(f"execution p95 {p95_s:.1f} s <= max_execution_p95_s {P['max_execution_p95_s']} s")
result = {
    "runbook": "workflow_inspection",
    "state_machine": arn,
    "window": {"since": since, "minutes": P["window_minutes"]},
    "executions": len(traces),
    "by_status": by_status,
    "chosen": None
    if chosen is None
    else {
        "execution_arn": chosen.arn,
        "status": chosen.status,
        "order_id": chosen.order_id,
        "order": order,
        "error": chosen.error,
        "cause": chosen.cause,
        "transitions": chosen.transitions,
        "spans": [s.row() for s in chosen.spans],
        "retries": retries,
    },
    "per_state": per_state,
    "per_execution": per_execution,
    "thresholds": {"failed_share": failed_share, "execution_p95_s": p95_s, "failures": failures},
    "ok": not failures,
}
out.json("result.json", result)
out.csv("executions.csv", pd.DataFrame(per_execution))
out.csv("states.csv", pd.DataFrame(per_state))
out.csv("spans.csv", pd.DataFrame(span_rows))
report.verdict(failures, passed)
enforce(failures, "workflow thresholds broken")
