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
# # Memory tuning
#
# AWS Lambda Power Tuning, measured from REPORT lines, with the request charge in the cost, cold and
# warm starts apart, bootstrap intervals, Max Memory Used, strategy choices with Power Tuning's tie-
# breaking, and the original configuration always restored.
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

SPEC = SPECS["memory_tuning"]
_before = params.snapshot(globals())  # every name that appears after this is a parameter, or a typo

# %% tags=["parameters"]
api_url = "http://127.0.0.1:8000"
aws_endpoint_url = "http://127.0.0.1:4566"
region = "us-east-1"
stage = "local"
output_dir = "out/memory_tuning"
function = ""
memory_sizes = [128, 256, 512, 1024]
invocations = 10
payloads: list[dict[str, object]] = []
strategy = "balanced"
balanced_weight = 0.5
architectures = ["x86_64"]
apply = False
save_to_reports_bucket = True
monthly_invocations = 1000000
max_error_rate = 0.0

# %%
# Papermill only logs an unknown parameter; this fails the run on one, or on a bad value.
P = params.validate(globals(), _before, SPEC)
report.parameters(P, SPEC)

# %%
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from chalicelib.cost import Architecture, lambda_cost, memory_cost_curve
from chalicelib.domain.usage import tuning_key
from runbooks import aws, plots, tuning
from runbooks.outputs import Outputs, enforce, to_jsonable
from runbooks.params import is_loopback_url
from runbooks.payloads import default_payloads, handler_of

out = Outputs(P["output_dir"])
lam, s3, ddb = aws.clients(P["aws_endpoint_url"], P["region"], "lambda", "s3", "dynamodb")
function = P["function"] or f"ecommerce-backend-{P['stage']}-jwt_auth"
account = lam.get_function_configuration(FunctionName=function)["FunctionArn"].split(":")[4]
chosen_payloads = P["payloads"] or default_payloads(function, P["stage"], P["region"], account, ddb)
local = bool(P["aws_endpoint_url"]) and is_loopback_url(P["aws_endpoint_url"]) is None
if local:
    report.markdown(
        "**Local stage:** durations come from the stage's documented CPU-share model "
        "(`modelled = wall + cpu x (max(1, 1769 / memory) - 1)`, docs/local-stage.md), not from Lambda: "
        "read them as relative, not absolute."
    )
report.markdown(
    f"Tuning `{function}` with {len(chosen_payloads)} payload(s)"
    + (" given as a parameter." if P["payloads"] else f" built for `{handler_of(function, P['stage'])}`.")
)

# %% [markdown]
# ## Measure every size
#
# Set the memory, invoke, read the REPORT line of each invocation. The original configuration is
# restored in a `finally`, even if an invocation or a change fails.

# %%
weighted = [tuning.WeightedPayload(p["payload"], p.get("weight", 1)) for p in chosen_payloads]
tuner = tuning.LambdaTuner(lam, function)
sizes = sorted(set(P["memory_sizes"]))
with report.progress(len(sizes) * P["invocations"], "invocations") as bar:
    results, original = tuner.measure(sizes, weighted, P["invocations"], progress=bar.update)
restored = tuner.configuration()["MemorySize"] == original["MemorySize"]
architecture = (original.get("Architectures") or ["x86_64"])[0]
tuning.price_sizes(results, Architecture(architecture))
rows = [r.summary() for r in results]
report.table([{k: v for k, v in r.items() if not k.endswith("_ci95")} for r in rows], title="Per memory size")

# %% [markdown]
# ## Choice by strategy (Power Tuning's tie-breaking), cost curve and monthly projection

# %%
options = tuning.candidates(results)
choices = {s: tuning.choose(options, s, P["balanced_weight"]).memory_mb for s in tuning.STRATEGIES} if options else {}
chosen = choices.get(P["strategy"])
out.figure("cost_curve.png", plots.cost_curve(rows, choices, f"{function}: cost against duration"))
out.figure("durations.png", plots.duration_by_memory(rows))
projection: list[dict[str, Any]] = []
measured = {r.memory_mb: Decimal(str(r.billed_trimmed_mean())) for r in results}
for arch in P["architectures"]:
    for point in memory_cost_curve(measured, architecture=Architecture(arch)):
        month = lambda_cost(
            P["monthly_invocations"],
            billed_ms_per_invocation=point.billed_ms,
            memory_mb=point.memory_mb,
            architecture=Architecture(arch),
        )
        projection.append(
            {
                "architecture": arch,
                "measured": arch == architecture,
                "memory_mb": point.memory_mb,
                "cost_per_invocation": point.cost_per_invocation,
                "monthly_cost_usd": month.total,
            }
        )
report.table([{"strategy": s, "memory_mb": mb} for s, mb in choices.items()], title="Each strategy's choice")
report.markdown(
    f"Strategy **{P['strategy']}** picks **{chosen} MB** (now {original['MemorySize']} MB). "
    + (
        f"Other architectures are priced with the durations measured on {architecture} (not measured)."
        if len(P["architectures"]) > 1
        else ""
    )
)
report.table(projection, title=f"A month at {P['monthly_invocations']:,} invocations")

# %% [markdown]
# ## Verdict: save, apply, check
#
# A run with failed invocations writes no recommendation: the cost optimizer reads what is saved.

# %% tags=["verdict"]
errors = {r.memory_mb: len(r.errors) / len(r.reports) for r in results if r.reports}
failures: list[str] = []
passed: list[str] = []
for r in results:
    share = errors.get(r.memory_mb, 1.0)
    limit = f"max_error_rate {P['max_error_rate']:.0%}"
    if share > P["max_error_rate"]:
        first = next(iter(r.errors), "no REPORT line")[:200]
        failures.append(f"{share:.0%} of invocations failed at {r.memory_mb} MB ({limit}): {first}")
if not failures:
    passed.append(f"no size failed more than max_error_rate {P['max_error_rate']:.0%} of its invocations")
if restored:
    passed.append(f"the original memory {original['MemorySize']} MB is restored")
else:
    failures.append(f"the original memory {original['MemorySize']} MB was not restored")
measured_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
samples = [{"memory_mb": r.memory_mb, **vars(rep), "cold": rep.cold} for r in results for rep in r.reports]
document = tuning.optimizer_document(
    function,
    architecture,
    results,
    P["invocations"],
    measured_at,
    {
        "strategy": P["strategy"],
        "balanced_weight": P["balanced_weight"],
        "choices": choices,
        "recommended": next((r for r in rows if r["memory_mb"] == chosen), None),
        "local_cpu_model": local,
    },
)
saved = None
if P["save_to_reports_bucket"] and not failures:
    bucket = f"ecommerce-backend-reports-{P['stage']}"
    body = json.dumps(to_jsonable(document)).encode()
    s3.put_object(Bucket=bucket, Key=tuning_key(function), Body=body, ContentType="application/json")
    samples_key = tuning_key(function).replace("latest.json", f"samples-{measured_at}.json")
    s3.put_object(Bucket=bucket, Key=samples_key, Body=json.dumps(to_jsonable(samples)).encode())
    saved = f"s3://{bucket}/{tuning_key(function)}"
applied = False
if P["apply"] and chosen is not None and chosen != original["MemorySize"] and not failures:
    tuner.set_memory(chosen)
    applied = True
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
report.verdict(failures, passed + ([f"recommended {chosen} MB ({P['strategy']}), saved to {saved}"] if saved else []))
enforce(failures, "memory tuning thresholds broken")
