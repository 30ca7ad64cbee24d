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
# # Load test
#
# An open-model load test (requests at scheduled times; latency from the schedule) with exact
# percentiles, outcomes counted apart, achieved versus target rate, a check that the generator kept
# up, SLOs, and a pipeline check that every accepted order ends and none is lost.
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

SPEC = SPECS["load_test"]
_before = params.snapshot(globals())  # every name that appears after this is a parameter, or a typo

# %% tags=["parameters"]
api_url = "http://127.0.0.1:8000"
aws_endpoint_url = "http://127.0.0.1:4566"
region = "us-east-1"
stage = "local"
output_dir = "out/load_test"
rate_rps = 2.0
duration_s = 20.0
ramp_s = 2.0
mix = {"browse": 3, "order": 1}
order_tokens = {"tok_success": 1}
slo_p95_ms = 5000.0
slo_error_rate = 0.01
timeout_s = 10.0
max_in_flight = 32
generator_lag_tolerance_ms = 100.0
pipeline_bound_s = 60.0
admin_email = "admin@example.com"
admin_password = "Admin-Passw0rd"
allow_remote = False
seed = 0

# %%
# Papermill only logs an unknown parameter; this fails the run on one, or on a bad value.
P = params.validate(globals(), _before, SPEC)
report.parameters(P, SPEC)

# %%
from typing import Any

from runbooks import loadgen, plots
from runbooks.outputs import Outputs, enforce
from runbooks.params import ParameterError, is_loopback_url
from runbooks.shop import Shop, follow_orders, pipeline_verdict

if not P["allow_remote"] and is_loopback_url(P["api_url"]) is not None:
    raise ParameterError(
        f"api_url {P['api_url']!r} is not a loopback address: set allow_remote=True to load a deployed stage"
    )
out = Outputs(P["output_dir"])
planned = loadgen.plan(P["rate_rps"], P["duration_s"], P["ramp_s"], P["mix"], P["seed"])
shop = Shop.open(
    P["api_url"],
    timeout_s=P["timeout_s"],
    max_connections=P["max_in_flight"],
    token_weights=P["order_tokens"],
    admin_email=P["admin_email"],
    admin_password=P["admin_password"],
)
report.markdown(
    f"{len(planned)} requests scheduled over {P['duration_s']:g} s (ramp {P['ramp_s']:g} s) "
    f"on {len(shop.product_ids)} product(s)."
)

# %% [markdown]
# ## The run: an open model
#
# Each request leaves at its scheduled time, whatever the earlier answers did; latency is measured
# from that scheduled time, so a slow answer, or a request waiting for a free worker, is never hidden
# (coordinated omission).

# %%
with report.progress(len(planned), "requests") as bar:
    samples = loadgen.run_open_model(
        planned, shop.perform, timeout_s=P["timeout_s"], max_in_flight=P["max_in_flight"], progress=bar.update
    )
rows = [s.row() for s in samples]
check = loadgen.generator_check(samples, P["generator_lag_tolerance_ms"])
report.markdown(f"**Generator:** {check.message}")

# %% [markdown]
# ## Latency, outcomes and achieved rate

# %%
latency = loadgen.latency_summary(samples)
counts = loadgen.outcome_counts(samples)
rate = loadgen.per_second(samples, P["duration_s"])
error_rate = loadgen.error_rate(samples)
lat = latency["latency_ms"]


def _ms_row(name: str, summary: dict[str, Any]) -> dict[str, Any]:
    return {"measured": name, **{f"{k}_ms" if k != "count" else k: v for k, v in summary.items()}}


out.figure("latency_over_time.png", plots.latency_over_time(rows, P["slo_p95_ms"]))
marks = {k: lat[k] for k in ("p50", "p95", "p99")}
out.figure("latency_histogram.png", plots.latency_histogram([r["latency_ms"] for r in rows], marks))
out.figure("achieved_rate.png", plots.achieved_rate(rate))
report.table(
    [_ms_row("from schedule", latency["latency_ms"]), _ms_row("from send", latency["service_ms"])],
    title="Latency",
)
report.table([_ms_row(k, v) for k, v in latency["by_scenario"].items()], title="Latency from schedule, by scenario")
report.table([{"outcome": k, "requests": v} for k, v in counts.items()], title="Outcomes")

# %% [markdown]
# ## The pipeline afterwards: every accepted order reaches a terminal status, none is lost

# %%
accepted = [s.order_id for s in samples if s.order_id]
fates = follow_orders(shop, accepted, P["pipeline_bound_s"])
pipeline = pipeline_verdict(fates, P["pipeline_bound_s"])
shop.close()
report.table(
    [{"status": k, "orders": v} for k, v in pipeline["by_status"].items()],
    title=f"{pipeline['accepted']} accepted orders, by status after at most {P['pipeline_bound_s']:g} s",
    empty="No order was placed in this run.",
)

# %% [markdown]
# ## Verdict
#
# The generator is checked first: if it fell behind, the SLOs were not tested at the target rate.

# %% tags=["verdict"]
import pandas as pd

failures: list[str] = []
passed: list[str] = []
(passed if check.kept_up else failures).append(check.message)
if lat["p95"] > P["slo_p95_ms"]:
    failures.append(f"p95 latency {lat['p95']:.0f} ms > SLO {P['slo_p95_ms']:g} ms")
else:
    passed.append(f"p95 latency {lat['p95']:.0f} ms <= SLO {P['slo_p95_ms']:g} ms")
if error_rate > P["slo_error_rate"]:
    failures.append(f"error rate {error_rate:.2%} > SLO {P['slo_error_rate']:.2%} ({counts})")
else:
    passed.append(f"error rate {error_rate:.2%} <= SLO {P['slo_error_rate']:.2%}")
if pipeline["ok"]:
    passed.append(f"pipeline: {pipeline['terminal']} of {pipeline['accepted']} orders terminal, none lost")
else:
    failures.append(
        f"pipeline: {len(pipeline['lost'])} lost, {len(pipeline['not_terminal_within_bound'])} "
        f"not terminal within {P['pipeline_bound_s']} s"
    )
sent = len(samples)
plan_keys = ("rate_rps", "duration_s", "ramp_s", "mix", "order_tokens", "timeout_s", "max_in_flight")
result = {
    "runbook": "load_test",
    "plan": {k: P[k] for k in plan_keys},
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
report.verdict(failures, passed)
enforce(failures, "load test thresholds broken")
