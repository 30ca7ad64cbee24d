"""An open-model load generator: requests leave at scheduled times, whatever the answers do.

A closed loop (send, wait, send) slows down with the system it measures and hides the slow answers
("coordinated omission"). Here a dispatcher thread releases each request at its scheduled time to a
bounded pool of workers, and latency is measured **from the scheduled time**: a request that waited
for a free worker, or for a slow server, carries that wait in its latency. When the generator
itself falls behind (its dispatcher late, its workers all busy), ``send_lag_ms`` shows it, and
``generator_check`` says the run cannot judge the system at the offered rate.

Bounded in count (``MAX_REQUESTS``) and time (duration + timeout + grace); the target must be a
loopback address unless the caller explicitly allows a remote one.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from runbooks import stats

MAX_REQUESTS = 200_000
MAX_RATE = 1000.0
OUTCOMES = ("2xx", "4xx", "429", "5xx", "timeout", "error")


@dataclass(frozen=True)
class Planned:
    index: int
    offset_s: float  # scheduled time, seconds after the start
    scenario: str


def arrival_offsets(rate: float, duration_s: float, ramp_s: float = 0.0) -> list[float]:
    """Scheduled send times: the rate rises linearly from 0 to ``rate`` over ``ramp_s``, then holds.

    The i-th request leaves when the cumulative expected count reaches i, so the schedule is
    deterministic (constant spacing once ramped, as wrk2 does) and the same for every run.

    >>> arrival_offsets(2, 2)
    [0.0, 0.5, 1.0, 1.5]
    """
    if rate <= 0 or duration_s <= 0 or ramp_s < 0 or ramp_s > duration_s:
        raise ValueError("need rate > 0, duration > 0 and 0 <= ramp <= duration")
    if rate > MAX_RATE or rate * duration_s > MAX_REQUESTS:
        raise ValueError(f"at most {MAX_RATE:.0f} requests/s and {MAX_REQUESTS} requests per run")
    ramp_count = rate * ramp_s / 2
    offsets: list[float] = []
    i = 0
    while True:
        t = math.sqrt(2 * ramp_s * i / rate) if i < ramp_count else ramp_s + (i - ramp_count) / rate
        if t >= duration_s - 1e-9:
            return offsets
        offsets.append(round(t, 9))
        i += 1


def plan(rate: float, duration_s: float, ramp_s: float, mix: Mapping[str, float], seed: int = 0) -> list[Planned]:
    """The schedule with a scenario drawn for each request by ``mix``'s weights (seeded: reproducible)."""
    names = [name for name, weight in mix.items() if weight > 0]
    if not names:
        raise ValueError("the scenario mix needs a positive weight")
    weights = [mix[name] for name in names]
    rng = random.Random(seed)  # noqa: S311  (a reproducible scenario draw, not a secret)
    return [
        Planned(i, offset, rng.choices(names, weights)[0])
        for i, offset in enumerate(arrival_offsets(rate, duration_s, ramp_s))
    ]


@dataclass(frozen=True)
class Answer:
    """What a scenario got back: the HTTP status (None: no answer) and, for an order, its id."""

    status: int | None
    order_id: str | None = None
    timed_out: bool = False
    error: str = ""


@dataclass
class Sample:
    index: int
    scenario: str
    scheduled_s: float
    sent_s: float
    done_s: float
    outcome: str
    status: int | None = None
    order_id: str | None = None
    error: str = ""

    @property
    def latency_ms(self) -> float:
        """From the scheduled time: what a user arriving on schedule waited (coordinated omission accounted)."""
        return (self.done_s - self.scheduled_s) * 1000

    @property
    def service_ms(self) -> float:
        """From the actual send: what a closed-loop tool would report."""
        return (self.done_s - self.sent_s) * 1000

    @property
    def send_lag_ms(self) -> float:
        """How late the generator sent it: its own delay, not the system's."""
        return (self.sent_s - self.scheduled_s) * 1000

    def row(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "scenario": self.scenario,
            "scheduled_s": self.scheduled_s,
            "sent_s": self.sent_s,
            "done_s": self.done_s,
            "latency_ms": self.latency_ms,
            "service_ms": self.service_ms,
            "send_lag_ms": self.send_lag_ms,
            "outcome": self.outcome,
            "status": self.status,
            "order_id": self.order_id,
            "error": self.error,
        }


def classify(answer: Answer) -> str:
    if answer.timed_out:
        return "timeout"
    if answer.status is None:
        return "error"
    if answer.status == 429:
        return "429"
    return f"{answer.status // 100}xx" if answer.status // 100 in (2, 4, 5) else "error"


Perform = Callable[[str], Answer]  # scenario name -> answer; must honour its own timeout


def run_open_model(
    planned: Sequence[Planned],
    perform: Perform,
    *,
    timeout_s: float,
    max_in_flight: int = 64,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[int], None] | None = None,
) -> list[Sample]:
    """Send each planned request at its time; a request that could not start within ``timeout_s`` of
    its schedule is recorded as a timeout without being sent (the run stays bounded in time)."""
    samples: list[Sample] = []
    lock = threading.Lock()
    start = clock()

    def work(item: Planned) -> None:
        sent = clock() - start
        if sent - item.offset_s > timeout_s:
            answer = Answer(None, timed_out=True, error="not sent: waited for a free worker past the timeout")
            done = sent
        else:
            try:
                answer = perform(item.scenario)
            except Exception as exc:  # a scenario's bug must not stop the schedule; it is counted
                answer = Answer(None, error=f"{type(exc).__name__}: {exc}")
            done = clock() - start
        sample = Sample(
            item.index, item.scenario, item.offset_s, sent, done, classify(answer), answer.status, answer.order_id
        )
        sample.error = answer.error
        with lock:
            samples.append(sample)
        if progress is not None:
            progress(1)

    with ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="loadgen") as pool:
        for item in planned:
            wait = item.offset_s - (clock() - start)
            if wait > 0:
                sleep(wait)
            pool.submit(work, item)
    return sorted(samples, key=lambda s: s.index)


@dataclass
class GeneratorCheck:
    kept_up: bool
    send_lag_p99_ms: float
    send_lag_max_ms: float
    late_fraction: float  # sent later than the tolerance
    tolerance_ms: float
    message: str = field(default="")


def generator_check(
    samples: Sequence[Sample], tolerance_ms: float = 100.0, late_allowed: float = 0.05
) -> GeneratorCheck:
    """Did the generator keep to its schedule? If not, the offered load was lower than planned."""
    lags = [s.send_lag_ms for s in samples]
    if not lags:
        return GeneratorCheck(False, math.nan, math.nan, 1.0, tolerance_ms, "no requests were sent")
    late = sum(1 for lag in lags if lag > tolerance_ms) / len(lags)
    p99, worst = float(stats.percentile(lags, 99)), max(lags)
    kept_up = late <= late_allowed
    message = (
        f"the load generator kept up: p99 send lag {p99:.1f} ms, "
        f"{late:.1%} of requests later than {tolerance_ms:.0f} ms"
        if kept_up
        else f"the load generator did NOT keep up with the schedule: {late:.1%} of requests left more than "
        f"{tolerance_ms:.0f} ms late (p99 {p99:.0f} ms, max {worst:.0f} ms); the system was offered less load "
        "than planned, so its results are not a verdict on the target rate (lower the rate, raise "
        "max_in_flight, or run the generator on a less loaded machine)"
    )
    return GeneratorCheck(kept_up, p99, worst, late, tolerance_ms, message)


def outcome_counts(samples: Sequence[Sample]) -> dict[str, int]:
    counts = dict.fromkeys(OUTCOMES, 0)
    for sample in samples:
        counts[sample.outcome] += 1
    return counts


def per_second(samples: Sequence[Sample], duration_s: float) -> list[dict[str, Any]]:
    """Target (scheduled), sent and answered-2xx requests in each second of the run."""
    seconds = max(1, math.ceil(duration_s))
    rows = [{"second": s, "target": 0, "sent": 0, "ok": 0, "failed": 0} for s in range(seconds)]

    def bucket(t: float) -> dict[str, Any]:
        return rows[min(seconds - 1, max(0, int(t)))]

    for sample in samples:
        bucket(sample.scheduled_s)["target"] += 1
        bucket(sample.sent_s)["sent"] += 1
        bucket(sample.done_s)["ok" if sample.outcome == "2xx" else "failed"] += 1
    return rows


def latency_summary(samples: Sequence[Sample]) -> dict[str, Any]:
    """Exact percentiles of latency (from schedule) and of service time (from send), overall and by scenario."""
    by_scenario: dict[str, list[Sample]] = {}
    for sample in samples:
        by_scenario.setdefault(sample.scenario, []).append(sample)
    return {
        "latency_ms": stats.summary([s.latency_ms for s in samples]),
        "service_ms": stats.summary([s.service_ms for s in samples]),
        "by_scenario": {
            name: stats.summary([s.latency_ms for s in group]) for name, group in sorted(by_scenario.items())
        },
    }


def error_rate(samples: Sequence[Sample]) -> float:
    """Share of requests not answered 2xx (4xx, 429, 5xx, timeouts and transport errors alike)."""
    return sum(1 for s in samples if s.outcome != "2xx") / len(samples) if samples else math.nan
