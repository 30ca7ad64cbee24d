"""runbooks.loadgen: the open-model schedule and coordinated-omission accounting, on a fake clock."""

from __future__ import annotations

import itertools
import threading

import pytest

from runbooks import loadgen
from runbooks.loadgen import Answer, Planned, Sample

pytestmark = pytest.mark.unit


def test_given_a_constant_rate_then_requests_are_evenly_spaced() -> None:
    assert loadgen.arrival_offsets(4, 1) == [0.0, 0.25, 0.5, 0.75]


def test_given_a_ramp_then_the_rate_rises_linearly_and_the_count_matches_the_area() -> None:
    offsets = loadgen.arrival_offsets(10, 4, ramp_s=2)
    assert len(offsets) == 10 + 20  # 10 during the ramp (area 10 * 2 / 2), then 10/s for 2 s
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert gaps[0] > gaps[5] > gaps[-1] == pytest.approx(0.1)


def test_given_too_many_requests_then_the_plan_is_refused() -> None:
    with pytest.raises(ValueError):
        loadgen.arrival_offsets(1000, 1000)


def test_given_a_mix_then_scenarios_follow_the_weights_reproducibly() -> None:
    planned = loadgen.plan(100, 10, 0, {"browse": 3, "order": 1}, seed=1)
    assert planned == loadgen.plan(100, 10, 0, {"browse": 3, "order": 1}, seed=1)
    orders = sum(1 for p in planned if p.scenario == "order")
    assert 200 < orders < 300


class FakeClock:
    """Time advances only when someone sleeps; ``perform`` advances it by the service time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_given_one_worker_and_a_slow_answer_then_later_requests_carry_the_wait_in_their_latency() -> None:
    # GIVEN requests every 0.1 s and one worker, the first answer taking 1 s
    clock = FakeClock()
    planned = [Planned(i, i * 0.1, "browse") for i in range(3)]

    def perform(_: str) -> Answer:
        clock.sleep(1.0 if clock.now < 0.05 else 0.01)
        return Answer(200)

    # WHEN run as an open model
    samples = loadgen.run_open_model(planned, perform, timeout_s=30, max_in_flight=1, clock=clock, sleep=clock.sleep)
    # THEN the second request is measured from its schedule (0.1 s), not from when it could be sent
    second = samples[1]
    assert second.send_lag_ms > 800  # it waited for the worker: the generator's lag, shown apart
    assert second.latency_ms == pytest.approx(second.send_lag_ms + second.service_ms)
    assert second.latency_ms > 10 * second.service_ms  # a closed loop would have reported ~10 ms
    assert not loadgen.generator_check(samples, tolerance_ms=100).kept_up


def test_given_a_request_that_waited_past_the_timeout_then_it_is_a_timeout_not_sent() -> None:
    clock = FakeClock()
    planned = [Planned(0, 0.0, "order"), Planned(1, 0.1, "order")]

    def perform(_: str) -> Answer:
        clock.sleep(5.0)
        return Answer(201, order_id="ord_1")

    samples = loadgen.run_open_model(planned, perform, timeout_s=2, max_in_flight=1, clock=clock, sleep=clock.sleep)
    assert [s.outcome for s in samples] == ["2xx", "timeout"]
    assert samples[1].service_ms == 0


def _sample(outcome: str, scheduled: float = 0.0, done: float = 0.1) -> Sample:
    return Sample(0, "browse", scheduled, scheduled, done, outcome)


def test_outcomes_are_counted_apart_and_the_error_rate_is_everything_not_2xx() -> None:
    assert loadgen.classify(Answer(429)) == "429"
    assert loadgen.classify(Answer(404)) == "4xx"
    assert loadgen.classify(Answer(503)) == "5xx"
    assert loadgen.classify(Answer(None, timed_out=True)) == "timeout"
    assert loadgen.classify(Answer(None)) == "error"
    samples = [_sample("2xx"), _sample("429"), _sample("5xx"), _sample("2xx")]
    assert loadgen.outcome_counts(samples)["429"] == 1
    assert loadgen.error_rate(samples) == 0.5


def test_per_second_counts_target_sent_and_answered() -> None:
    samples = [_sample("2xx", 0.2, 0.4), _sample("5xx", 0.5, 1.5), _sample("2xx", 1.1, 1.2)]
    rows = loadgen.per_second(samples, 2)
    assert rows[0] == {"second": 0, "target": 2, "sent": 2, "ok": 1, "failed": 0}
    assert rows[1] == {"second": 1, "target": 1, "sent": 1, "ok": 1, "failed": 1}
