"""The end-to-end driver: a poll budget that does not grow with the backlog, latency from the order itself."""

from __future__ import annotations

import threading
import time

import httpx

from bench.e2e import E2eResult, Step, rate_steps
from bench.e2e_load import LoadPlan, OrderTiming, StatusWatcher, epoch

COMPLETED_AT = "2026-12-01T21:00:01.500000Z"


def _stage(completes_after_polls: int) -> tuple[httpx.Client, dict[str, int]]:
    """An API whose orders are PENDING for ``completes_after_polls`` looks each, then COMPLETED."""
    looks: dict[str, int] = {}
    lock = threading.Lock()

    def answer(request: httpx.Request) -> httpx.Response:
        order_id = request.url.path.rsplit("/", 1)[-1]
        with lock:
            looks[order_id] = looks.get(order_id, 0) + 1
            done = looks[order_id] > completes_after_polls
        body = {"status": "COMPLETED", "updated_at": COMPLETED_AT} if done else {"status": "PENDING"}
        return httpx.Response(200, json=body)

    return httpx.Client(transport=httpx.MockTransport(answer), base_url="http://stage"), looks


def _polls_in_one_second(pending: int) -> int:
    http, _ = _stage(completes_after_polls=10_000)  # never completes within the test
    watcher = StatusWatcher(http, polls_per_s=20.0)
    for index in range(pending):
        watcher.watch(f"ord_{index}", {}, OrderTiming(sent_at=0.0, sent_epoch=time.time()))
    thread = threading.Thread(target=watcher.run_until_settled, daemon=True)
    thread.start()
    time.sleep(1.0)
    polls = watcher.polls
    watcher.settle_timeout_s = 0.0  # every order now times out at its next look, and the watcher ends
    watcher.close()
    thread.join(10)
    assert not thread.is_alive()
    return polls


def test_given_a_backlog_when_watched_then_the_polls_per_second_stay_within_the_budget_whatever_its_size() -> None:
    # GIVEN a budget of 20 polls a second, WHEN 2 or 60 orders are pending for a second
    few, many = _polls_in_one_second(2), _polls_in_one_second(60)
    # THEN both make about 20 polls, not 3 or 30 times more for the larger backlog
    assert 10 <= few <= 22
    assert 10 <= many <= 22


def test_given_pending_orders_when_watched_then_each_is_looked_at_in_turn_and_latency_is_the_orders_own() -> None:
    http, looks = _stage(completes_after_polls=2)
    watcher = StatusWatcher(http, polls_per_s=200.0, settle_timeout_s=1e9)  # sent "long ago" on purpose
    sent = epoch(COMPLETED_AT) - 1.25
    timings = [OrderTiming(sent_at=0.0, sent_epoch=sent) for _ in range(3)]
    for index, timing in enumerate(timings):
        watcher.watch(f"ord_{index}", {}, timing)
    watcher.close()
    watcher.run_until_settled()
    assert looks == {"ord_0": 3, "ord_1": 3, "ord_2": 3}  # round-robin: nobody starved, nobody over-polled
    assert [t.status for t in timings] == ["COMPLETED"] * 3
    assert all(abs((t.latency_s or 0) - 1.25) < 1e-6 for t in timings)


def _step(rate: float, latencies: list[float], offered: int) -> Step:
    timings = [
        OrderTiming(sent_at=0.0, status="COMPLETED", latency_s=latency, completed_at=100.0 + index / rate)
        for index, latency in enumerate(latencies)
    ]
    timings += [OrderTiming(sent_at=0.0, status="TIMEOUT") for _ in range(offered - len(latencies))]
    return Step(LoadPlan(10, rate), timings, window_s=10.0, polls=0, stage_cpu_s=1.0, calls={})


def test_given_steps_when_judged_then_capacity_is_the_last_with_95_percent_complete_and_p99_under_5_s() -> None:
    steps = [
        _step(1.0, [0.8] * 10, 10),
        _step(1.5, [1.0] * 15, 15),
        _step(2.25, [6.0] * 22, 22),  # all complete, but too slowly: not sustained
    ]
    result = E2eResult(steps, {}, {}, served_per_s=1.0, bound_per_s=10.0)
    assert result.capacity is steps[1]
    assert result.overload is steps[2]
    assert not _step(1.0, [0.8] * 9, 10).sustained  # 90 % complete
    figures = {f.name: f for f in result.figures()}
    assert figures["end to end, sustained capacity (local stage)"].value == "1.50 orders/s"
    assert figures["end to end, sustained capacity (local stage)"].holds is False
    assert figures["end to end past capacity, completions per second"].holds is True  # 2.25/s held over 1.5/s


def test_given_a_first_rate_then_each_step_offers_half_as_much_again_up_to_the_ceiling() -> None:
    assert rate_steps(1.0, 1.5, 5.1) == [1.0, 1.5, 2.25, 3.38, 5.06]
