# ruff: noqa: E501  (the strings below are notebook cells: notebooks are outside ruff, like notebooks/)
"""Writes the four runbooks in ``notebooks/`` with nbformat: ``python -m runbooks.build_notebooks``.

The notebooks are generated so that they are reviewable here, as plain Python strings, and
reproducible; the committed ``.ipynb`` files carry no outputs. Each ``parameters`` cell is written
from ``runbooks.specs``, the same spec the notebook validates its parameters against.
"""

from __future__ import annotations

import pprint
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from runbooks.specs import SPECS

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

SETUP = """\
import pathlib
import sys

# Importable from JupyterLab (cwd notebooks/) and from papermill runs inside the checkout.
_root = next((p for p in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents] if (p / "runbooks" / "__init__.py").is_file()), None)
if _root is not None and str(_root) not in sys.path:
    sys.path.insert(0, str(_root))

from runbooks import params
from runbooks.specs import SPECS

SPEC = SPECS[{name!r}]
_before = params.snapshot(globals())  # every name that appears after this is a parameter, or a typo"""

VALIDATE = """\
# Papermill only logs an unknown parameter; this cell fails the run on one, or on a bad value.
P = params.validate(globals(), _before, SPEC)
P"""


def _parameters(name: str) -> str:
    return "\n".join(f"{key} = {pprint.pformat(param.default, width=100)}" for key, param in SPECS[name].items())


def _notebook(name: str, title: str, intro: str, body: list[tuple[str, str]]) -> nbformat.NotebookNode:
    table = "\n".join(f"| `{k}` | `{p.default!r}` | {p.help} |" for k, p in SPECS[name].items())
    cells = [
        new_markdown_cell(f"# {title}\n\n{intro}\n\n| parameter | default | meaning |\n|---|---|---|\n{table}"),
        new_code_cell(SETUP.format(name=name)),
        new_code_cell(_parameters(name), metadata={"tags": ["parameters"]}),
        new_code_cell(VALIDATE),
    ]
    for kind, source in body:
        cells.append(new_markdown_cell(source) if kind == "md" else new_code_cell(source.strip("\n")))
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


WORKFLOW = [
    (
        "code",
        """
import json
from datetime import UTC, datetime, timedelta

import pandas as pd
from IPython.display import Markdown, display
from tqdm.auto import tqdm

from runbooks import aws, plots, stats, workflow
from runbooks.outputs import Outputs, enforce

out = Outputs(P["output_dir"])
sfn, lam, ddb = aws.clients(P["aws_endpoint_url"], P["region"], "stepfunctions", "lambda", "dynamodb")
machine = P["state_machine"] or f"ecommerce-backend-order-workflow-{P['stage']}"
if machine.startswith("arn:"):
    arn = machine
else:
    arns = [m["stateMachineArn"] for m in workflow.paged(sfn.list_state_machines, "stateMachines") if m["name"] == machine]
    if not arns:
        raise LookupError(f"no state machine named {machine!r} in {P['region']}")
    arn = arns[0]
definition = json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"])
lane_of = workflow.lanes(definition)
memory_by_function = {
    f["FunctionName"]: f["MemorySize"] for page in lam.get_paginator("list_functions").paginate() for f in page["Functions"]
}
arn
""",
    ),
    ("md", "## Executions by status\n\nListed newest first, following `nextToken` (AWS pages; moto does not)."),
    (
        "code",
        """
since = datetime.now(UTC) - timedelta(minutes=P["window_minutes"])
executions = workflow.list_executions(sfn, arn, since=since, limit=P["max_executions"])
if P["execution_arn"] and all(e["executionArn"] != P["execution_arn"] for e in executions):
    executions.insert(0, sfn.describe_execution(executionArn=P["execution_arn"]))
traces = [
    workflow.parse_history(workflow.get_history(sfn, e["executionArn"]), e, lane_of)
    for e in tqdm(executions, desc="histories")
]
by_status = pd.Series([t.status for t in traces], dtype="object").value_counts().to_dict()
if by_status:
    out.figure("statuses.png", plots.status_counts(by_status, "Executions by status"))
by_status
""",
    ),
    ("md", "## One execution: its timeline, retries, failure and order"),
    (
        "code",
        """
chosen = None
if traces:
    failed = [t for t in traces if t.status in ("FAILED", "TIMED_OUT", "ABORTED")]
    wanted = [t for t in traces if t.arn == P["execution_arn"]]
    chosen = (wanted or failed or traces)[0]
if chosen is None:
    display(Markdown("**No executions in the window**: nothing to inspect."))
else:
    spans = [s.row() for s in chosen.spans]
    out.figure("timeline.png", plots.timeline(spans, f"{chosen.arn.rsplit(':', 1)[-1]} ({chosen.status})"))
    display(pd.DataFrame(spans)[["state", "lane", "duration_ms", "status", "attempts", "backoff_gaps_ms", "errors"]])
    order_id = chosen.order_id
    order = {}
    if order_id:
        try:
            item = ddb.get_item(TableName=f"ecommerce-backend-orders-{P['stage']}", Key={"order_id": {"S": order_id}})
            order = {k: next(iter(v.values())) for k, v in item.get("Item", {}).items() if k in ("status", "failure_reason", "total_amount", "correlation_id", "created_at")}
        except Exception as exc:  # the orders table may not be readable with these credentials: say so
            order = {"unavailable": f"{type(exc).__name__}: {exc}"}
    retries = [
        {"state": s.name, "attempt": i + 1, "outcome": a.outcome, "error": a.error, "gap_before_next_ms": (s.backoff_gaps_ms + [None])[i]}
        for s in chosen.spans if s.retries for i, a in enumerate(s.attempts)
    ]
    display(Markdown(
        f"**Execution** `{chosen.arn}`: **{chosen.status}**, {chosen.transitions} transitions. "
        f"**Order** `{order_id}`: {order}. "
        + (f"**Error** `{chosen.error}`, cause: {chosen.cause}" if chosen.error else "")
    ))
    display(pd.DataFrame(retries))
""",
    ),
    ("md", "## Across executions: per-state durations and failures, transitions and cost per execution"),
    (
        "code",
        """
span_rows = workflow.span_rows(traces)
per_state = []
for state, group in pd.DataFrame(span_rows).groupby("state", sort=False) if span_rows else []:
    done = [d for d in group["duration_ms"] if d == d and d is not None]
    per_state.append({
        "state": state,
        "count": len(group),
        "p50_ms": stats.percentile(done, 50) if done else None,
        "p95_ms": stats.percentile(done, 95) if done else None,
        "failures": int((group["status"] == "FAILED").sum()),
        "retries": int(group["retries"].sum()),
    })
per_execution = []
for t in traces:
    cost = workflow.execution_cost(t, memory_by_function)
    per_execution.append({
        "execution": t.arn.rsplit(":", 1)[-1],
        "order_id": t.order_id,
        "status": t.status,
        "duration_s": (t.stopped - t.started).total_seconds() if t.stopped else None,
        "transitions": t.transitions,
        "retries": sum(s.retries for s in t.spans),
        "cost_usd": cost.total,
        "step_functions_usd": cost.by_service().get(workflow.Service.STEP_FUNCTIONS, 0),
        "lambda_usd": cost.by_service().get(workflow.Service.LAMBDA, 0),
    })
if per_state:
    out.figure("state_durations.png", plots.state_durations([r for r in per_state if r["p50_ms"] is not None]))
display(pd.DataFrame(per_state))
display(pd.DataFrame(per_execution))
""",
    ),
    (
        "md",
        "## Thresholds and results\n\n`result.json`, `executions.csv`, `states.csv` and `spans.csv` are written next to this notebook.",
    ),
    (
        "code",
        """
durations = [e["duration_s"] for e in per_execution if e["duration_s"] is not None]
failed_share = sum(1 for t in traces if t.status in ("FAILED", "TIMED_OUT", "ABORTED")) / len(traces) if traces else 0.0
p95_s = stats.percentile(durations, 95) if durations else 0.0
failures = []
if failed_share > P["max_failed_share"]:
    failures.append(f"failed share {failed_share:.0%} > max_failed_share {P['max_failed_share']:.0%}")
if p95_s > P["max_execution_p95_s"]:
    failures.append(f"execution p95 {p95_s:.1f} s > max_execution_p95_s {P['max_execution_p95_s']} s")
result = {
    "runbook": "workflow_inspection",
    "state_machine": arn,
    "window": {"since": since, "minutes": P["window_minutes"]},
    "executions": len(traces),
    "by_status": by_status,
    "chosen": None if chosen is None else {
        "execution_arn": chosen.arn, "status": chosen.status, "order_id": chosen.order_id, "order": order,
        "error": chosen.error, "cause": chosen.cause, "transitions": chosen.transitions,
        "spans": [s.row() for s in chosen.spans], "retries": retries,
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
enforce(failures, "workflow thresholds broken")
print("thresholds met:", result["thresholds"])
""",
    ),
]

LOAD = [
    (
        "code",
        """
import pandas as pd
from IPython.display import Markdown, display
from tqdm.auto import tqdm

from runbooks import loadgen, plots
from runbooks.outputs import Outputs, enforce
from runbooks.params import ParameterError, is_loopback_url
from runbooks.shop import Shop, follow_orders, pipeline_verdict

if not P["allow_remote"] and is_loopback_url(P["api_url"]) is not None:
    raise ParameterError(f"api_url {P['api_url']!r} is not a loopback address: set allow_remote=True to load a deployed stage")
out = Outputs(P["output_dir"])
planned = loadgen.plan(P["rate_rps"], P["duration_s"], P["ramp_s"], P["mix"], P["seed"])
shop = Shop.open(
    P["api_url"], timeout_s=P["timeout_s"], max_connections=P["max_in_flight"], token_weights=P["order_tokens"],
    admin_email=P["admin_email"], admin_password=P["admin_password"],
)
display(Markdown(f"{len(planned)} requests scheduled over {P['duration_s']} s (ramp {P['ramp_s']} s) on {len(shop.product_ids)} product(s)."))
""",
    ),
    (
        "md",
        "## The run: an open model\n\nEach request leaves at its scheduled time, whatever the earlier answers did; "
        "latency is measured from that scheduled time, so a slow answer, or a request waiting for a free "
        "worker, is never hidden (coordinated omission).",
    ),
    (
        "code",
        """
with tqdm(total=len(planned), desc="requests") as bar:
    samples = loadgen.run_open_model(
        planned, shop.perform, timeout_s=P["timeout_s"], max_in_flight=P["max_in_flight"], progress=bar.update
    )
rows = [s.row() for s in samples]
check = loadgen.generator_check(samples, P["generator_lag_tolerance_ms"])
display(Markdown(f"**Generator:** {check.message}"))
""",
    ),
    ("md", "## Latency, outcomes and achieved rate"),
    (
        "code",
        """
latency = loadgen.latency_summary(samples)
counts = loadgen.outcome_counts(samples)
rate = loadgen.per_second(samples, P["duration_s"])
error_rate = loadgen.error_rate(samples)
lat = latency["latency_ms"]
out.figure("latency_over_time.png", plots.latency_over_time(rows, P["slo_p95_ms"]))
out.figure("latency_histogram.png", plots.latency_histogram([r["latency_ms"] for r in rows], {k: lat[k] for k in ("p50", "p95", "p99")}))
out.figure("achieved_rate.png", plots.achieved_rate(rate))
display(pd.DataFrame({"from schedule": latency["latency_ms"], "from send": latency["service_ms"]}).T)
display(pd.DataFrame(latency["by_scenario"]).T)
counts
""",
    ),
    ("md", "## The pipeline afterwards: every accepted order reaches a terminal status, none is lost"),
    (
        "code",
        """
accepted = [s.order_id for s in samples if s.order_id]
fates = follow_orders(shop, accepted, P["pipeline_bound_s"])
pipeline = pipeline_verdict(fates, P["pipeline_bound_s"])
shop.close()
pipeline
""",
    ),
    (
        "md",
        "## Verdict\n\nThe generator is checked first: if it fell behind, the SLOs were not tested at the target rate.",
    ),
    (
        "code",
        """
failures = []
if not check.kept_up:
    failures.append(check.message)
if lat["p95"] > P["slo_p95_ms"]:
    failures.append(f"p95 latency {lat['p95']:.0f} ms > SLO {P['slo_p95_ms']:g} ms")
if error_rate > P["slo_error_rate"]:
    failures.append(f"error rate {error_rate:.2%} > SLO {P['slo_error_rate']:.2%} ({counts})")
if not pipeline["ok"]:
    failures.append(f"pipeline: {len(pipeline['lost'])} lost, {len(pipeline['not_terminal_within_bound'])} not terminal within {P['pipeline_bound_s']} s")
sent = len(samples)
result = {
    "runbook": "load_test",
    "plan": {k: P[k] for k in ("rate_rps", "duration_s", "ramp_s", "mix", "order_tokens", "timeout_s", "max_in_flight")},
    "requests": sent,
    "achieved_rps": sent / P["duration_s"],
    "ok_rps": counts["2xx"] / P["duration_s"],
    "outcomes": counts,
    "error_rate": error_rate,
    "latency": latency,
    "generator": vars(check),
    "per_second": rate,
    "pipeline": pipeline,
    "slo": {"p95_ms": P["slo_p95_ms"], "error_rate": P["slo_error_rate"], "failures": failures},
    "ok": not failures,
}
out.json("result.json", result)
out.csv("samples.csv", pd.DataFrame(rows))
out.csv("per_second.csv", pd.DataFrame(rate))
out.csv("orders.csv", pd.DataFrame([vars(f) for f in fates]))
enforce(failures, "load test thresholds broken")
print("SLOs met:", {"p95_ms": lat["p95"], "error_rate": error_rate, "orders": pipeline["by_status"]})
""",
    ),
]

COSTS = [
    (
        "code",
        """
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
from IPython.display import Markdown, display

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
report = costs.optimizer_report(optimizer, at, P["window_days"], P["functions"])
rows = costs.function_rows(report)
display(Markdown(f"The scheduled optimizer's model over {P['window_days']} day(s): status **{report['status']}**, {report['total_functions_analyzed']} functions."))
""",
    ),
    ("md", "## Per function: invocations, duration, cost (requests and GB-seconds), by architecture"),
    (
        "code",
        """
table = pd.DataFrame(rows)
out.figure("cost_by_function.png", plots.cost_by_function(rows))
display(table[["function", "architecture", "memory_mb", "invocations", "avg_duration_ms", "gb_seconds", "request_cost_usd", "duration_cost_usd", "cost_usd", "agrees"]])
pd.DataFrame(costs.by_architecture(rows))
""",
    ),
    ("md", "## Cost per order across services, and the month at a chosen volume"),
    (
        "code",
        """
since = at - timedelta(days=P["window_days"])
machines = [m["stateMachineArn"] for m in workflow.paged(sfn.list_state_machines, "stateMachines") if m["name"] == f"ecommerce-backend-order-workflow-{P['stage']}"]
executions = workflow.list_executions(sfn, machines[0], since=since, limit=100_000) if machines else []
sampled = [workflow.parse_history(workflow.get_history(sfn, e["executionArn"]), e) for e in executions[: P["sample_executions"]]]
transitions = Decimal(sum(t.transitions for t in sampled)) / len(sampled) if sampled else Decimal(0)
# The synchronous calls of POST /orders (DynamoDB, SQS, SNS, EventBridge), counted by `make bench`'s recorder.
request_path = measure_cost_per_order(Options(project_root=costs.PROJECT_DIR), stage=P["stage"]).billed
order_cost = costs.cost_per_order(rows, len(executions), transitions, request_path)
monthly = costs.monthly_at_volume(rows, len(executions), P["monthly_orders"], order_cost, request_path, free_tier=P["free_tier"]) if order_cost else None
if order_cost:
    parts = {"Lambda (all functions)": order_cost.lambda_per_order, "Step Functions": order_cost.step_functions_per_order, "POST /orders calls": order_cost.request_path_per_order}
    out.figure("cost_per_order.png", plots.bars({k: float(v) * 1e6 for k, v in parts.items()}, f"Cost per order: {float(order_cost.total) * 1e6:.2f} micro-USD", "micro-USD per order"))
    display(Markdown(f"{len(executions)} orders in the window, {transitions:.1f} transitions each; monthly at {P['monthly_orders']:,} orders: **${monthly['total_usd']:.2f}**"))
else:
    display(Markdown("No orders in the window: no cost per order."))
""",
    ),
    ("md", "## Top savings (memory, arm64, unused functions), and the latest scheduled report"),
    (
        "code",
        """
savings = costs.top_savings(report)
display(pd.DataFrame(savings)[["function", "type", "action", "confidence"]] if savings else Markdown("No savings found."))
latest = costs.latest_optimizer_report(s3, bucket) if P["load_latest_report"] else None
if latest:
    display(Markdown(f"Latest scheduled report `s3://{bucket}/{latest[0]}`: {latest[1].get('summary')}"))
else:
    display(Markdown("No scheduled optimizer report in the bucket yet (it runs daily; invoke `cost_optimizer` to make one)."))
""",
    ),
    (
        "code",
        """
failures = []
disagree = [r["function"] for r in rows if not r["agrees"]]
if disagree:
    failures.append(f"the split does not add up to the optimizer's cost for {disagree}")
if monthly and monthly["total_usd"] > Decimal(str(P["max_monthly_cost_usd"])):
    failures.append(f"monthly cost ${monthly['total_usd']:.2f} at {P['monthly_orders']} orders > max_monthly_cost_usd {P['max_monthly_cost_usd']}")
result = {
    "runbook": "cost_analysis",
    "window_days": P["window_days"],
    "optimizer_status": report["status"],
    "functions": rows,
    "by_architecture": costs.by_architecture(rows),
    "optimizer_summary": report["summary"],
    "orders_in_window": len(executions),
    "cost_per_order": None if order_cost is None else {**vars(order_cost), "total": order_cost.total},
    "monthly": monthly,
    "top_savings": savings,
    "latest_report": None if not latest else {"key": latest[0], "summary": latest[1].get("summary")},
    "thresholds": {"failures": failures},
    "ok": not failures,
}
out.json("result.json", result)
out.csv("functions.csv", table)
out.json("optimizer_report.json", report)
enforce(failures, "cost thresholds broken")
print("ok:", report["summary"])
""",
    ),
]

TUNING = [
    (
        "code",
        """
import json
from datetime import UTC, datetime
from decimal import Decimal

import pandas as pd
from IPython.display import Markdown, display
from tqdm.auto import tqdm

from chalicelib.cost import Architecture, lambda_cost, memory_cost_curve
from chalicelib.domain.usage import tuning_key
from runbooks import aws, plots, tuning
from runbooks.outputs import Outputs, enforce, to_jsonable
from runbooks.params import is_loopback_url

out = Outputs(P["output_dir"])
lam, s3 = aws.clients(P["aws_endpoint_url"], P["region"], "lambda", "s3")
function = P["function"] or f"ecommerce-backend-{P['stage']}-jwt_auth"
local = bool(P["aws_endpoint_url"]) and is_loopback_url(P["aws_endpoint_url"]) is None
if local:
    display(Markdown(
        "**Local stage:** durations come from the stage's documented CPU-share model "
        "(`modelled = wall + cpu x (max(1, 1769 / memory) - 1)`, docs/local-stage.md), not from Lambda: "
        "read them as relative, not absolute."
    ))
""",
    ),
    (
        "md",
        "## Measure every size\n\nSet the memory, invoke, read the REPORT line of each invocation. "
        "The original configuration is restored in a `finally`, even if an invocation or a change fails.",
    ),
    (
        "code",
        """
payloads = [tuning.WeightedPayload(p["payload"], p.get("weight", 1)) for p in P["payloads"]]
tuner = tuning.LambdaTuner(lam, function)
sizes = sorted(set(P["memory_sizes"]))
with tqdm(total=len(sizes) * P["invocations"], desc="invocations") as bar:
    results, original = tuner.measure(sizes, payloads, P["invocations"], progress=bar.update)
restored = tuner.configuration()["MemorySize"] == original["MemorySize"]
architecture = (original.get("Architectures") or ["x86_64"])[0]
tuning.price_sizes(results, Architecture(architecture))
rows = [r.summary() for r in results]
display(pd.DataFrame(rows).drop(columns=[c for c in rows[0] if c.endswith("_ci95")]))
""",
    ),
    ("md", "## Choice by strategy (Power Tuning's tie-breaking), cost curve and monthly projection"),
    (
        "code",
        """
options = tuning.candidates(results)
choices = {s: tuning.choose(options, s, P["balanced_weight"]).memory_mb for s in tuning.STRATEGIES} if options else {}
chosen = choices.get(P["strategy"])
out.figure("cost_curve.png", plots.cost_curve(rows, choices, f"{function}: cost against duration"))
out.figure("durations.png", plots.duration_by_memory(rows))
projection = []
for arch in P["architectures"]:
    measured = {r.memory_mb: Decimal(str(r.billed_trimmed_mean())) for r in results}
    for point in memory_cost_curve(measured, architecture=Architecture(arch)):
        month = lambda_cost(P["monthly_invocations"], billed_ms_per_invocation=point.billed_ms, memory_mb=point.memory_mb, architecture=Architecture(arch))
        projection.append({
            "architecture": arch, "measured": arch == architecture, "memory_mb": point.memory_mb,
            "cost_per_invocation": point.cost_per_invocation, "monthly_cost_usd": month.total,
        })
display(Markdown(
    f"Choices: {choices}. Strategy **{P['strategy']}** picks **{chosen} MB** (now {original['MemorySize']} MB). "
    + ("Other architectures are priced with the durations measured on " + architecture + " (not measured)." if len(P["architectures"]) > 1 else "")
))
pd.DataFrame(projection)
""",
    ),
    ("md", "## Save, apply, check"),
    (
        "code",
        """
measured_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
samples = [
    {"memory_mb": r.memory_mb, **vars(rep), "cold": rep.cold} for r in results for rep in r.reports
]
document = tuning.optimizer_document(
    function, architecture, results, P["invocations"], measured_at,
    {"strategy": P["strategy"], "balanced_weight": P["balanced_weight"], "choices": choices,
     "recommended": next((r for r in rows if r["memory_mb"] == chosen), None), "local_cpu_model": local},
)
saved = None
if P["save_to_reports_bucket"]:
    bucket = f"ecommerce-backend-reports-{P['stage']}"
    body = json.dumps(to_jsonable(document)).encode()
    s3.put_object(Bucket=bucket, Key=tuning_key(function), Body=body, ContentType="application/json")
    samples_key = tuning_key(function).replace("latest.json", f"samples-{measured_at}.json")
    s3.put_object(Bucket=bucket, Key=samples_key, Body=json.dumps(to_jsonable(samples)).encode())
    saved = f"s3://{bucket}/{tuning_key(function)}"
applied = False
if P["apply"] and chosen is not None and chosen != original["MemorySize"]:
    tuner.set_memory(chosen)
    applied = True
errors = {r.memory_mb: len(r.errors) / len(r.reports) for r in results if r.reports}
failures = [f"{share:.0%} of invocations failed at {mb} MB (max_error_rate {P['max_error_rate']:.0%}): {next(iter(r.errors))[:200]}"
            for (mb, share), r in zip(errors.items(), results) if share > P["max_error_rate"]]
if not restored:
    failures.append(f"the original memory {original['MemorySize']} MB was not restored")
result = {
    "runbook": "memory_tuning",
    "function": function,
    "architecture": architecture,
    "original_memory_mb": original["MemorySize"],
    "restored": restored,
    "applied": applied,
    "strategy": P["strategy"],
    "choices": choices,
    "recommended_memory_mb": chosen,
    "sizes": rows,
    "projection": projection,
    "optimizer_document": document,
    "saved_to": saved,
    "local_cpu_model": local,
    "thresholds": {"failures": failures},
    "ok": not failures,
}
out.json("result.json", result)
out.csv("sizes.csv", pd.DataFrame(rows))
out.csv("samples.csv", pd.DataFrame(samples))
enforce(failures, "memory tuning thresholds broken")
print(f"recommended {chosen} MB ({P['strategy']}); saved to {saved}; restored {restored}")
""",
    ),
]

RUNBOOKS = {
    "workflow_inspection": (
        "Workflow inspection",
        "Step Functions executions of the order workflow: statuses, one execution's timeline (Parallel "
        "branches side by side, retries and their backoff gaps, error and cause, its order), per-state "
        "p50/p95 and failures, transitions and cost per execution (`chalicelib.cost`).",
        WORKFLOW,
    ),
    "load_test": (
        "Load test",
        "An open-model load test (requests at scheduled times; latency from the schedule) with exact "
        "percentiles, outcomes counted apart, achieved versus target rate, a check that the generator "
        "kept up, SLOs, and a pipeline check that every accepted order ends and none is lost.",
        LOAD,
    ),
    "cost_analysis": (
        "Cost analysis",
        "Per-function cost with the scheduled optimizer's own model (so the figures agree with its "
        "report), split into requests and GB-seconds by architecture, cost per order across services, a "
        "monthly projection, top savings, and the latest scheduled report.",
        COSTS,
    ),
    "memory_tuning": (
        "Memory tuning",
        "AWS Lambda Power Tuning, measured from REPORT lines, with the request charge in the cost, cold "
        "and warm starts apart, bootstrap intervals, Max Memory Used, strategy choices with Power Tuning's "
        "tie-breaking, and the original configuration always restored.",
        TUNING,
    ),
}


def build(directory: Path = NOTEBOOKS) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (title, intro, body) in RUNBOOKS.items():
        target = directory / f"{name}.ipynb"
        nbformat.write(_notebook(name, title, intro, body), str(target))
        written.append(target)
    return written


if __name__ == "__main__":
    for path in build():
        print(path)
