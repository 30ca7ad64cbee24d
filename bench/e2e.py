"""End to end on the local stage: its sustained capacity, from ``POST /orders`` to ``COMPLETED``.

A fresh stage (``python -m localstage.call_log``, on free ports, state in a temporary directory)
serves one product with a large stock and a few customers. The benchmark steps the offered rate up
(``RATE_STEP`` times the last, from ``Options.e2e_rate``): at each step orders arrive open-loop for
``Options.e2e_seconds`` (``bench/e2e_load.py``: each at its scheduled time, one watcher polling at a
fixed rate whatever the backlog). A step is sustained when at least 95 % of its orders complete and
the p99 from ``POST /orders`` to ``COMPLETED`` is under 5 s; the capacity is the highest sustained
step, and the first step past it shows whether throughput holds under overload or collapses.

The stage's call log gives the AWS calls per order at the capacity step (``bench/calls.py``), and
its process's CPU time the CPU per order. Finally a few threads call the embedded AWS directly with a
cheap mix (DynamoDB ``GetItem``, SQS ``SendMessage`` to a queue of the benchmark's own) as fast as it
answers: that rate bounds what the stage can do, and the figure is the share of it the orders used.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

from bench.calls import CallCounts, CallLogReader, by_service, per_order, scaled, split_emulation
from bench.e2e_load import POLLS_PER_S, LoadPlan, OrderTiming, run_load
from bench.e2e_stage import (
    CAPACITY_THREADS,
    POLL_SAMPLES,
    TRAILING_S,
    BenchShop,
    StageError,
    StageHandle,
    a_poll_signature,
    embedded_aws_capacity,
    running_stage,
    set_up_shop,
)
from bench.figures import Figure, per_second
from bench.registry import Options
from bench.stats import median
from runbooks.stage_client import StageClient

WARM_UP_S, WARM_UP_RATE = 10.0, 2.0  # orders before the first step, not counted
IDLE_WINDOW_S = 3.0
SUSTAINED = 0.95  # the share of offered orders that must complete for a rate to count as sustained
P99_BAR_S = 5.0  # and their p99, POST /orders to COMPLETED
RATE_STEP = 1.5  # each step offers this many times the last
MAX_RATE = 12.0  # no step above this (the aim is 7.5 orders/s)
CAPACITY_BAR = 5.0  # orders/s the local stage must sustain on 2 cores (issue 15)
CPU_AIM_MS = 200.0
HOLD_BAR = 0.9  # past capacity, completions per second must stay at least this share of capacity's


def rate_steps(first: float, step: float = RATE_STEP, ceiling: float = MAX_RATE) -> list[float]:
    """The offered rates, ``first`` then ``step`` times the last, up to ``ceiling``.

    >>> rate_steps(1.0, 1.5, 4.0)
    [1.0, 1.5, 2.25, 3.38]
    """
    rates, rate = [], first
    while rate <= ceiling + 1e-9:
        rates.append(round(rate, 2))
        rate *= step
    return rates


@dataclass
class Step:
    """One offered rate's orders, and what the stage did while it served them."""

    plan: LoadPlan
    timings: list[OrderTiming]
    window_s: float  # from the first order sent to the last one settled
    polls: int
    stage_cpu_s: float
    calls: CallCounts  # every call the embedded AWS served in the window, trailing second included

    @property
    def completed(self) -> list[OrderTiming]:
        return [t for t in self.timings if t.status == "COMPLETED"]

    @property
    def latencies(self) -> list[float]:
        return sorted(t.latency_s for t in self.completed if t.latency_s is not None)

    @property
    def orders_per_s(self) -> float:
        return completion_rate([t.completed_at for t in self.completed if t.completed_at is not None])

    @property
    def sustained(self) -> bool:
        latencies = self.latencies
        return (
            len(self.completed) >= SUSTAINED * len(self.timings)
            and bool(latencies)
            and percentile(latencies, 99) < P99_BAR_S
        )

    @property
    def cpu_ms_per_order(self) -> float:
        return 1000 * self.stage_cpu_s / max(1, len(self.completed))

    def describe(self) -> str:
        latencies = self.latencies
        return (
            f"| {self.plan.rate:g}/s | {len(self.completed)} of {len(self.timings)} | {self.orders_per_s:.2f}/s | "
            f"{percentile(latencies, 50):.2f} s | {percentile(latencies, 99):.2f} s | "
            f"{self.cpu_ms_per_order:.0f} ms | {self.polls} | {'yes' if self.sustained else 'no'} |"
        )


@dataclass
class E2eResult:
    steps: list[Step]  # in the order run; the last is the first unsustained one, unless the ceiling was hit
    calls_per_order: dict[tuple[str, str], float]  # at capacity (the last sustained step, else the first)
    emulation_per_order: dict[tuple[str, str], float]
    served_per_s: float  # every call the embedded AWS served during that step, per second
    bound_per_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def capacity(self) -> Step | None:
        """The highest sustained step."""
        sustained = [step for step in self.steps if step.sustained]
        return sustained[-1] if sustained else None

    @property
    def measured(self) -> Step:
        """The step the per-order figures come from: capacity, or the first step when none was sustained."""
        return self.capacity or self.steps[0]

    @property
    def overload(self) -> Step | None:
        """The first step past capacity, if one ran."""
        capacity = self.capacity
        after = self.steps[self.steps.index(capacity) + 1 :] if capacity is not None else self.steps
        return after[0] if after else None

    def carry(self, options: Options) -> Options:
        """The calls per order this run counted, for the cost figure after it."""
        return dataclasses.replace(options, e2e_calls_per_order=dict(self.calls_per_order))

    @property
    def app_calls_per_order(self) -> float:
        return sum(self.calls_per_order.values())

    @property
    def share_of_bound(self) -> float:
        return self.measured.orders_per_s * self.app_calls_per_order / self.bound_per_s

    def figures(self) -> list[Figure]:
        capacity, measured, overload = self.capacity, self.measured, self.overload
        rate = capacity.plan.rate if capacity is not None else 0.0
        rates = ", ".join(f"{step.plan.rate:g}" for step in self.steps)
        figures = [
            Figure(
                name="end to end, sustained capacity (local stage)",
                value=f"{rate:.2f} orders/s",
                bar=f">= {CAPACITY_BAR:g} orders/s",
                holds=rate >= CAPACITY_BAR,
                note=f"the highest offered rate (steps {rates}/s, {measured.plan.seconds:g} s each) with >= "
                f"{SUSTAINED:.0%} of orders COMPLETED and p99 under {P99_BAR_S:g} s; tracing and IAM on",
            ),
            Figure(
                name="end to end at capacity, POST /orders to COMPLETED, p50 / p99",
                value=f"{percentile(measured.latencies, 50):.2f} s / {percentile(measured.latencies, 99):.2f} s",
                note=f"{len(measured.latencies)} orders at {measured.plan.rate:g}/s, completing at "
                f"{measured.orders_per_s:.2f}/s; latency from the order's own updated_at, not the poll that saw it; "
                "PAYMENT_WAIT_SECONDS is 1 on the local stage",
            ),
        ]
        if overload is not None and capacity is not None:
            held = overload.orders_per_s / max(capacity.orders_per_s, 1e-9)
            figures.append(
                Figure(
                    name="end to end past capacity, completions per second",
                    value=f"{overload.orders_per_s:.2f}/s",
                    ratio=f"{held:.2f}",
                    bar=f">= {HOLD_BAR:g}x capacity's",
                    holds=held >= HOLD_BAR,
                    note=f"{overload.plan.rate:g}/s offered: {len(overload.completed)} of {len(overload.timings)} "
                    f"completed, p50 {percentile(overload.latencies, 50):.2f} s; ratio to the "
                    f"{capacity.orders_per_s:.2f}/s completed at capacity (throughput held, latency grew, or not)",
                )
            )
        figures += [
            Figure(
                name="end to end, AWS calls per order (app, as deployed)",
                value=f"{self.app_calls_per_order:.1f}",
                note="; ".join(f"{s} {c:.1f}" for s, c in by_service(self.calls_per_order).items())
                + f"; plus {sum(self.emulation_per_order.values()):.1f} the stage makes to emulate what AWS does "
                "unbilled (status events, log delivery, EMF extraction; see below)",
            ),
            Figure(
                name="end to end, stage CPU per order",
                value=f"{measured.cpu_ms_per_order:.0f} ms",
                bar=f"<= {CPU_AIM_MS:g} ms (aim)",
                holds=measured.cpu_ms_per_order <= CPU_AIM_MS,
                note="CPU time (user + system) of the stage's process and its functions' environment processes "
                f"over the {measured.plan.rate:g}/s step "
                f"({measured.stage_cpu_s:.1f} s in {measured.window_s + TRAILING_S:.0f} s), divided by the "
                f"{len(measured.completed)} orders completed; includes the benchmark's status polls "
                f"({POLLS_PER_S:g}/s) and the stage's idle background",
            ),
            Figure(
                name="end to end, embedded AWS bound (GetItem + SendMessage)",
                value=per_second(self.bound_per_s),
                ratio=f"{self.share_of_bound:.2f}",
                note=f"{CAPACITY_THREADS} threads calling it directly after the load; ratio = orders/s at "
                f"capacity x app calls per order / bound; during that step it served {self.served_per_s:,.0f} "
                f"calls/s of every kind ({self.served_per_s / self.bound_per_s:.2f} of the bound), polls and "
                "emulation included",
            ),
        ]
        return figures

    def details(self) -> str:
        lines = [
            "### End to end: the rate steps",
            "",
            "| offered | completed | completions | p50 | p99 | stage CPU per order | status polls | sustained |",
            "|---:|---:|---:|---:|---:|---:|---:|---|",
            *(step.describe() for step in self.steps),
            "",
            "### End to end: the AWS calls one order makes",
            "",
            "Counted on the embedded AWS (`LOCAL_AWS_CALL_LOG`, `localstage/call_log.py`) over the capacity step, "
            "less the stage's idle background and the benchmark's own status polls, per completed order:",
            "",
            "| service | operation | calls per order |",
            "|---|---|---:|",
            *(
                f"| {service} | {operation} | {count:.2f} |"
                for (service, operation), count in sorted(self.calls_per_order.items())
            ),
            "",
            "Made only by the local stage to emulate AWS (not billed by AWS, excluded above): "
            + (", ".join(f"{s} {o} {c:.2f}" for (s, o), c in sorted(self.emulation_per_order.items())) or "none")
            + ".",
        ]
        if self.notes:
            lines += ["", *(f"- {note}" for note in self.notes)]
        return "\n".join(lines)


def completion_rate(completed_at: list[float]) -> float:
    """Orders completed per second in steady state: completions after the first, over the time they span.

    Not ``completed / window``: the window also holds the first order's latency and the drain of
    the last ones, which would understate a sustained rate by latency / duration.

    >>> completion_rate([10.0, 10.5, 11.0, 12.0])
    1.5
    """
    if len(completed_at) < 2:
        return 0.0
    span = max(completed_at) - min(completed_at)
    return (len(completed_at) - 1) / span if span > 0 else 0.0


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (p99 of 180 orders is the 179th).

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.0
    """
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


# -- the benchmark ----------------------------------------------------------------------------------


def run_step(client: StageClient, handle: StageHandle, reader: CallLogReader, plan: LoadPlan, shop: BenchShop) -> Step:
    reader.mark()
    cpu_before = handle.cpu_seconds()
    timings, polls, window_s = run_load(client, plan, *shop)
    time.sleep(TRAILING_S)
    return Step(plan, timings, window_s, polls, handle.cpu_seconds() - cpu_before, reader.since_mark())


def measure_e2e(options: Options) -> E2eResult:
    rates = rate_steps(options.e2e_rate)
    orders = sum(len(LoadPlan(options.e2e_seconds, rate).offsets()) for rate in rates)
    with running_stage(options.project_root) as handle, StageClient.open(handle.api_url, timeout_s=30) as client:
        shop = set_up_shop(client, orders)
        # Unmeasured: each function's first environments start here, as a stage taking traffic is warm
        # (cold starts are the cold-start figure's; with LOCAL_LAMBDA_PROCESSES each is a process).
        run_load(client, LoadPlan(WARM_UP_S, WARM_UP_RATE), *shop)
        reader = CallLogReader(handle.call_log)
        reader.mark()
        time.sleep(IDLE_WINDOW_S)
        idle_rate = scaled(reader.since_mark(), 1 / IDLE_WINDOW_S)

        steps: list[Step] = []
        for rate in rates:
            steps.append(run_step(client, handle, reader, LoadPlan(options.e2e_seconds, rate), shop))
            if not steps[-1].sustained:
                break  # one step past capacity shows whether throughput holds; more would only queue
        result_steps = E2eResult(steps, {}, {}, 0.0, 1.0)
        measured = result_steps.measured
        if not measured.completed:
            raise StageError(f"no order completed: {sorted({t.status for t in measured.timings})}")

        load_s = measured.window_s + TRAILING_S
        poll_calls = scaled(a_poll_signature(client, reader, shop[1][0], shop[0]), measured.polls / POLL_SAMPLES)
        counted = per_order(measured.calls, len(measured.completed), idle=scaled(idle_rate, load_s), polls=poll_calls)
        app, emulation = split_emulation(counted)
        bound = embedded_aws_capacity(handle, options.e2e_capacity_seconds)
        return E2eResult(
            steps=steps,
            calls_per_order=app,
            emulation_per_order=emulation,
            served_per_s=sum(measured.calls.values()) / load_s,
            bound_per_s=bound,
            notes=[
                f"median placement-to-COMPLETED at {measured.plan.rate:g}/s "
                f"{median(measured.latencies):.2f} s; "
                f"{measured.polls} status polls subtracted at their measured cost; idle background "
                f"{sum(idle_rate.values()):.1f} calls/s subtracted",
            ],
        )
