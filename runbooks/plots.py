"""The runbooks' figures. Each function returns a matplotlib Figure; ``Outputs.figure`` saves and shows it.

Figures are built with matplotlib's object API (``Figure``), not pyplot: nothing here selects a
backend (``matplotlib.use("Agg")`` would turn JupyterLab's inline output off for the whole kernel), and
no figure lingers in pyplot's registry to be shown a second time at the end of a cell.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

LANE_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
OUTCOME_COLOURS = {"2xx": "tab:green", "4xx": "tab:orange", "429": "tab:purple", "5xx": "tab:red"}


def _axes(width: float, height: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def latency_over_time(rows: Sequence[Mapping[str, Any]], slo_p95_ms: float) -> Figure:
    """Each request's latency (from its scheduled time) at its scheduled time, coloured by outcome."""
    fig, ax = _axes(9, 3.6)
    for outcome in sorted({r["outcome"] for r in rows}):
        points = [r for r in rows if r["outcome"] == outcome]
        ax.scatter(
            [r["scheduled_s"] for r in points],
            [r["latency_ms"] for r in points],
            s=10,
            label=f"{outcome} ({len(points)})",
            color=OUTCOME_COLOURS.get(outcome, "black"),
        )
    ax.axhline(slo_p95_ms, color="tab:red", linestyle="--", linewidth=1, label=f"p95 SLO {slo_p95_ms:g} ms")
    ax.set(xlabel="scheduled time (s)", ylabel="latency from schedule (ms)", title="Latency over time")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def latency_histogram(latencies: Sequence[float], marks: Mapping[str, float]) -> Figure:
    fig, ax = _axes(9, 3.2)
    ax.hist(latencies, bins=40, color="tab:blue", alpha=0.8)
    for index, (label, value) in enumerate(marks.items()):
        ax.axvline(value, color=f"C{index + 1}", linestyle="--", linewidth=1, label=f"{label} {value:.0f} ms")
    ax.set(xlabel="latency from schedule (ms)", ylabel="requests", title="Latency histogram")
    ax.legend(fontsize=8)
    return fig


def achieved_rate(rows: Sequence[Mapping[str, Any]]) -> Figure:
    fig, ax = _axes(9, 3.2)
    seconds = [r["second"] for r in rows]
    ax.plot(seconds, [r["target"] for r in rows], label="target (scheduled)", color="black", linestyle="--")
    ax.plot(seconds, [r["sent"] for r in rows], label="sent", color="tab:blue")
    ax.plot(seconds, [r["ok"] for r in rows], label="answered 2xx", color="tab:green")
    ax.set(xlabel="second", ylabel="requests / s", title="Achieved versus target rate")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def status_counts(counts: Mapping[str, int], title: str) -> Figure:
    fig, ax = _axes(6, 3)
    ax.bar(list(counts), list(counts.values()), color=[f"C{i}" for i in range(len(counts))])
    ax.set(title=title, ylabel="count")
    for index, value in enumerate(counts.values()):
        ax.annotate(str(value), (index, value), ha="center", va="bottom")
    return fig


def timeline(spans: Sequence[Mapping[str, Any]], title: str) -> Figure:
    """A Gantt chart of one execution: one row per state instance, grouped by lane (Parallel branches apart)."""
    start = min(s["entered"] for s in spans)
    lanes = sorted({s["lane"] for s in spans}, key=lambda lane: (lane != "main", lane))
    fig, ax = _axes(10, 0.35 * len(spans) + 1.5)
    labels = []
    for row, span in enumerate(spans):
        end = span["exited"] or max(s["exited"] or s["entered"] for s in spans)
        left = (span["entered"] - start).total_seconds()
        width = max((end - span["entered"]).total_seconds(), 0.005)
        lane_colour = LANE_COLOURS[lanes.index(span["lane"]) % len(LANE_COLOURS)]  # red is kept for failures
        colour = "tab:red" if span["status"] == "FAILED" else lane_colour
        ax.barh(row, width, left=left, color=colour, alpha=0.85)
        note = f" x{span['attempts']} (gaps {span['backoff_gaps_ms']} ms)" if span["retries"] else ""
        ax.text(left + width, row, f" {width * 1000:.0f} ms{note}", va="center", fontsize=7)
        labels.append(f"{span['state']}  [{span['lane']}]" if span["lane"] != "main" else span["state"])
    ax.set_yticks(range(len(spans)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel="seconds since the execution started", title=title)
    ax.grid(axis="x", alpha=0.3)
    return fig


def state_durations(rows: Sequence[Mapping[str, Any]]) -> Figure:
    fig, ax = _axes(9, 0.3 * len(rows) + 1.5)
    names = [r["state"] for r in rows]
    ax.barh(names, [r["p95_ms"] for r in rows], color="tab:orange", label="p95")
    ax.barh(names, [r["p50_ms"] for r in rows], color="tab:blue", label="p50")
    ax.invert_yaxis()
    ax.set(xlabel="duration (ms)", title="Per-state duration across executions")
    ax.legend(fontsize=8)
    return fig


def cost_curve(rows: Sequence[Mapping[str, Any]], choices: Mapping[str, int], title: str) -> Figure:
    """Cost per invocation against duration, one point per memory size, each strategy's choice marked."""
    fig, ax = _axes(8, 4.2)
    durations = [r["duration_ms_trimmed_mean"] for r in rows]
    costs = [float(r["cost_per_invocation"]) * 1e6 for r in rows]
    ax.plot(durations, costs, marker="o", color="tab:blue")
    for row, x, y in zip(rows, durations, costs, strict=True):
        ax.annotate(f"{row['memory_mb']} MB", (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    markers = {"cost": ("s", "tab:green"), "speed": ("^", "tab:red"), "balanced": ("D", "tab:purple")}
    for strategy, memory in choices.items():
        row = next(r for r in rows if r["memory_mb"] == memory)
        marker, colour = markers.get(strategy, ("x", "black"))
        ax.scatter(
            [row["duration_ms_trimmed_mean"]],
            [float(row["cost_per_invocation"]) * 1e6],
            s=120,
            marker=marker,
            facecolors="none",
            edgecolors=colour,
            linewidths=2,
            label=f"{strategy}: {memory} MB",
        )
    ax.set(xlabel="duration, warm trimmed mean (ms)", ylabel="cost per million invocations (USD)", title=title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def duration_by_memory(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """p50/p90/p99 with their bootstrap 95 % intervals, and Max Memory Used against the size."""
    fig = Figure(figsize=(11, 3.8))
    left, right = fig.subplots(1, 2)
    sizes = [str(r["memory_mb"]) for r in rows]
    for index, p in enumerate((50, 90, 99)):
        values = [r[f"duration_ms_p{p}"] for r in rows]
        low = [v - r[f"duration_ms_p{p}_ci95"][0] for v, r in zip(values, rows, strict=True)]
        high = [r[f"duration_ms_p{p}_ci95"][1] - v for v, r in zip(values, rows, strict=True)]
        left.errorbar(sizes, values, yerr=[low, high], marker="o", capsize=3, label=f"p{p}", color=f"C{index}")
    left.set(xlabel="memory (MB)", ylabel="warm duration (ms)", title="Duration percentiles, 95 % bootstrap CI")
    left.legend(fontsize=8)
    right.bar(sizes, [r["memory_mb"] for r in rows], color="lightgrey", label="memory size")
    right.bar(sizes, [r["max_memory_used_mb"] for r in rows], color="tab:blue", label="Max Memory Used")
    right.set(xlabel="memory (MB)", ylabel="MB", title="Max Memory Used against the size")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def cost_by_function(rows: Sequence[Mapping[str, Any]]) -> Figure:
    shown = [r for r in rows if r["invocations"]]
    fig, ax = _axes(9, 0.32 * max(len(shown), 1) + 1.5)
    names = [r["function"].split("-")[-1] for r in shown]
    requests = [float(r["request_cost_usd"]) * 1e6 for r in shown]
    duration = [float(r["duration_cost_usd"]) * 1e6 for r in shown]
    ax.barh(names, requests, color="tab:blue", label="requests")
    ax.barh(names, duration, left=requests, color="tab:orange", label="GB-seconds")
    ax.invert_yaxis()
    ax.set(xlabel="cost in the window (micro-USD)", title="Cost by function")
    ax.legend(fontsize=8)
    return fig


def bars(values: Mapping[str, float], title: str, xlabel: str) -> Figure:
    fig, ax = _axes(8, 0.35 * max(len(values), 1) + 1.5)
    ax.barh(list(values), list(values.values()), color="tab:green")
    ax.invert_yaxis()
    ax.set(xlabel=xlabel, title=title)
    return fig
