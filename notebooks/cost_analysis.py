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
# # Cost analysis
#
# Per-function cost with the scheduled optimizer's own model (so the figures agree with its report),
# split into requests and GB-seconds by architecture, cost per order across services, a monthly
# projection, top savings, and the latest scheduled report.
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

SPEC = SPECS["cost_analysis"]
_before = params.snapshot(globals())  # every name that appears after this is a parameter, or a typo

# %% tags=["parameters"]
api_url = "http://127.0.0.1:8000"
aws_endpoint_url = "http://127.0.0.1:4566"
region = "us-east-1"
stage = "local"
output_dir = "out/cost_analysis"
window_days = 1
functions: list[str] = []
monthly_orders = 100000
free_tier = False
sample_executions = 20
load_latest_report = True
max_monthly_cost_usd = 1000.0

# %%
# Papermill only logs an unknown parameter; this fails the run on one, or on a bad value.
P = params.validate(globals(), _before, SPEC)
report.parameters(P, SPEC)

# %%
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from bench.cost_per_order import measure_cost_per_order
from bench.registry import Options
from runbooks import aws, costs, plots, workflow
from runbooks.outputs import Outputs, enforce

out = Outputs(P["output_dir"])
lam, cw, s3, sfn = aws.clients(P["aws_endpoint_url"], P["region"], "lambda", "cloudwatch", "s3", "stepfunctions")
prefix = f"ecommerce-backend-{P['stage']}"
bucket = f"ecommerce-backend-reports-{P['stage']}"
at = datetime.now(UTC) + timedelta(minutes=1)  # the optimizer truncates to the minute: include the current one
optimizer = costs.stage_optimizer(lam, cw, s3, bucket, prefix)
optimizer_report = costs.optimizer_report(optimizer, at, P["window_days"], P["functions"])
rows = costs.function_rows(optimizer_report)
report.markdown(
    f"The scheduled optimizer's model over {P['window_days']} day(s): status **{optimizer_report['status']}**, "
    f"{optimizer_report['total_functions_analyzed']} functions."
)

# %% [markdown]
# ## Per function: invocations, duration, cost (requests and GB-seconds), by architecture

# %%
columns = ["function", "architecture", "memory_mb", "invocations", "avg_duration_ms", "gb_seconds"]
columns += ["request_cost_usd", "duration_cost_usd", "cost_usd", "agrees"]
if any(r["invocations"] for r in rows):
    out.figure("cost_by_function.png", plots.cost_by_function(rows))
report.table(rows, columns, title="Per function", empty="No function of the stage was found.")
report.table(costs.by_architecture(rows), title="By architecture", empty="No function of the stage was found.")

# %% [markdown]
# ## Cost per order across services, and the month at a chosen volume

# %%
since = at - timedelta(days=P["window_days"])
name = f"ecommerce-backend-order-workflow-{P['stage']}"
machines = [m["stateMachineArn"] for m in workflow.paged(sfn.list_state_machines, "stateMachines") if m["name"] == name]
executions = workflow.list_executions(sfn, machines[0], since=since, limit=100_000) if machines else []
sampled = [
    workflow.parse_history(workflow.get_history(sfn, e["executionArn"]), e)
    for e in executions[: P["sample_executions"]]
]
transitions = Decimal(sum(t.transitions for t in sampled)) / len(sampled) if sampled else Decimal(0)
# The synchronous calls of POST /orders (DynamoDB, SQS, SNS, EventBridge), counted by `make bench`'s recorder.
request_path = measure_cost_per_order(Options(project_root=costs.PROJECT_DIR), stage=P["stage"]).billed
order_cost = costs.cost_per_order(rows, len(executions), transitions, request_path)
monthly: dict[str, Any] | None = None
if order_cost:
    monthly = costs.monthly_at_volume(
        rows, len(executions), P["monthly_orders"], order_cost, request_path, free_tier=P["free_tier"]
    )
    parts = {
        "Lambda (all functions)": order_cost.lambda_per_order,
        "Step Functions": order_cost.step_functions_per_order,
        "POST /orders calls": order_cost.request_path_per_order,
    }
    title = f"Cost per order: {report.usd(order_cost.total)}"
    out.figure("cost_per_order.png", plots.bars({k: float(v) * 1e6 for k, v in parts.items()}, title, "micro-USD"))
    report.table(
        [{"part": k, "per_order_usd": v} for k, v in parts.items()],
        title=f"{len(executions)} orders in the window, {transitions:.1f} transitions each",
    )
    by_service = [{"service": "Lambda", "monthly_usd": monthly["lambda_usd"]}]
    by_service += [{"service": k, "monthly_usd": v} for k, v in monthly["by_service_usd"].items()]
    by_service.append({"service": "total", "monthly_usd": monthly["total_usd"]})
    report.table(by_service, title=f"The month at {P['monthly_orders']:,} orders")
else:
    report.markdown("No orders in the window: no cost per order.")

# %% [markdown]
# ## Top savings (memory, arm64, unused functions), and the latest scheduled report

# %%
savings = costs.top_savings(optimizer_report)
report.table(savings, ["function", "type", "action", "confidence"], title="Top savings", empty="No savings found.")
latest = costs.latest_optimizer_report(s3, bucket) if P["load_latest_report"] else None
if latest:
    report.table(latest[1].get("summary") or {}, title=f"Latest scheduled report s3://{bucket}/{latest[0]}")
else:
    report.markdown(
        "No scheduled optimizer report in the bucket yet (it runs daily; invoke `cost_optimizer` to make one)."
    )

# %% [markdown]
# ## Verdict

# %% tags=["verdict"]
failures: list[str] = []
passed: list[str] = []
disagree = [r["function"] for r in rows if not r["agrees"]]
if disagree:
    failures.append(f"the split does not add up to the optimizer's cost for {disagree}")
else:
    passed.append(f"requests + GB-seconds add up to the optimizer's cost for all {len(rows)} functions")
if monthly:
    month = f"monthly cost {report.usd(monthly['total_usd'])} at {P['monthly_orders']:,} orders"
    limit = f"max_monthly_cost_usd {report.usd(P['max_monthly_cost_usd'])}"
    if monthly["total_usd"] > Decimal(str(P["max_monthly_cost_usd"])):
        failures.append(f"{month} > {limit}")
    else:
        passed.append(f"{month} <= {limit}")
result = {
    "runbook": "cost_analysis",
    "window_days": P["window_days"],
    "optimizer_status": optimizer_report["status"],
    "functions": rows,
    "by_architecture": costs.by_architecture(rows),
    "optimizer_summary": optimizer_report["summary"],
    "orders_in_window": len(executions),
    "cost_per_order": None if order_cost is None else {**vars(order_cost), "total": order_cost.total},
    "monthly": monthly,
    "top_savings": savings,
    "latest_report": None if not latest else {"key": latest[0], "summary": latest[1].get("summary")},
    "thresholds": {"failures": failures},
    "ok": not failures,
}
out.json("result.json", result)
out.csv("functions.csv", pd.DataFrame(rows))
out.json("optimizer_report.json", optimizer_report)
report.verdict(failures, passed)
enforce(failures, "cost thresholds broken")
