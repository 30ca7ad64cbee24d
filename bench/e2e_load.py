"""The end-to-end load: open-loop orders, and one watcher that learns their outcome at a fixed poll rate.

Orders arrive at their scheduled times whatever happened to earlier ones (open loop). Nobody waits on
an order: ``StatusWatcher`` is one thread that polls ``GET /orders/{id}`` at ``POLLS_PER_S`` in all,
always the pending order it looked at longest ago (or never), so the benchmark's own load on the stage
is the same whether 2 or 200 orders are pending. Before, every pending order was polled every 0.25 s
by its own thread: past capacity the polls grew with the backlog and took the stage's time from the
orders, and the stage seemed to collapse.

Latency does not depend on how soon the watcher looks: it is the order's own ``updated_at`` (the
moment the workflow wrote ``COMPLETED``, microseconds, UTC) less the wall-clock time ``POST /orders``
was sent, both on this machine's clock.
"""

from __future__ import annotations

import heapq
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from runbooks.stage_client import StageClient, order_body

POLLS_PER_S = 4.0  # the watcher's whole budget, whatever the backlog
SETTLE_TIMEOUT_S = 60.0  # an order not terminal this long after it was sent counts as TIMEOUT
TERMINAL = ("COMPLETED", "FAILED")


@dataclass(frozen=True)
class LoadPlan:
    seconds: float
    rate: float  # orders offered per second

    def offsets(self) -> list[float]:
        """When each order is sent, in seconds from the start: ``rate`` per second, evenly."""
        count = max(1, int(self.seconds * self.rate))
        return [index / self.rate for index in range(count)]


@dataclass
class OrderTiming:
    sent_at: float  # offset in the plan, seconds
    status: str = "unsent"
    sent_epoch: float | None = None  # time.time() just before POST /orders
    latency_s: float | None = None  # updated_at of the terminal status less sent_epoch
    completed_at: float | None = None  # epoch seconds of the terminal status (the order's updated_at)
    error: str = ""


def epoch(iso_timestamp: str) -> float:
    """``2026-12-01T21:40:00.123456Z`` -> seconds since the epoch."""
    return datetime.fromisoformat(iso_timestamp.replace("Z", "+00:00")).timestamp()


@dataclass
class StatusWatcher:
    """Polls pending orders oldest-looked-at first, ``polls_per_s`` in all; records each terminal status."""

    http: httpx.Client
    polls_per_s: float = POLLS_PER_S
    settle_timeout_s: float = SETTLE_TIMEOUT_S
    polls: int = 0
    # (last looked at, sequence, order id, headers, timing); never looked at counts as looked at when sent
    _pending: list[tuple[float, int, str, dict[str, str], OrderTiming]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _added: threading.Condition = field(init=False)
    _sequence: int = 0
    _closing: bool = False

    def __post_init__(self) -> None:
        self._added = threading.Condition(self._lock)

    def watch(self, order_id: str, headers: dict[str, str], timing: OrderTiming) -> None:
        with self._added:
            self._sequence += 1
            heapq.heappush(self._pending, (time.monotonic(), self._sequence, order_id, headers, timing))
            self._added.notify()

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def _next(self) -> tuple[str, dict[str, str], OrderTiming] | None:
        with self._added:
            while not self._pending:
                if self._closing:
                    return None
                self._added.wait(0.5)
            _, _, order_id, headers, timing = heapq.heappop(self._pending)
            return order_id, headers, timing

    def run_until_settled(self) -> None:
        """Poll until ``close`` was called and nothing is pending (each order ends terminal or timed out)."""
        interval = 1 / self.polls_per_s
        while (item := self._next()) is not None:
            started = time.monotonic()
            self._look(*item)
            rest = interval - (time.monotonic() - started)
            if rest > 0:
                time.sleep(rest)

    def _look(self, order_id: str, headers: dict[str, str], timing: OrderTiming) -> None:
        self.polls += 1
        try:
            order = self.http.get(f"/orders/{order_id}", headers=headers).json()
        except httpx.HTTPError as exc:
            order, timing.error = {}, type(exc).__name__
        status = str(order.get("status", "?"))
        if status in TERMINAL:
            timing.status = status
            timing.completed_at = epoch(str(order["updated_at"]))
            timing.latency_s = timing.completed_at - (timing.sent_epoch or timing.completed_at)
            return
        if timing.sent_epoch is not None and time.time() - timing.sent_epoch > self.settle_timeout_s:
            timing.status = "TIMEOUT"
            return
        with self._added:
            self._sequence += 1
            heapq.heappush(self._pending, (time.monotonic(), self._sequence, order_id, headers, timing))

    def close(self) -> None:
        with self._added:
            self._closing = True
            self._added.notify_all()


def place(client: StageClient, product_id: str, customer: dict[str, str], timing: OrderTiming) -> str | None:
    """Send one order (no ``Idempotency-Key``, as the figures were measured); its id, or None with the reason."""
    timing.sent_epoch = time.time()
    try:
        answer = client.post_order(customer, order_body(product_id))
    except httpx.HTTPError as exc:
        timing.status, timing.error = "ERROR", type(exc).__name__
        return None
    if answer.status_code != 201:
        timing.status = f"POST {answer.status_code}"
        return None
    timing.status = "PENDING"
    return str(answer.json()["order_id"])


def run_load(
    client: StageClient, plan: LoadPlan, product_id: str, customers: list[dict[str, str]]
) -> tuple[list[OrderTiming], int, float]:
    """Open-loop arrivals at ``plan.rate``; returns the timings, the status polls made, the window in s.

    The window runs from the first order sent to the last one settled (or timed out).
    """
    offsets = plan.offsets()
    timings = [OrderTiming(sent_at=offset) for offset in offsets]
    watcher = StatusWatcher(client.http)
    polling = threading.Thread(target=watcher.run_until_settled, name="status-watcher", daemon=True)
    polling.start()
    # A POST takes well under a second; a few senders keep every arrival on time.
    workers = min(64, max(4, int(plan.rate * 2)))
    started = time.monotonic()

    def one(index: int) -> None:
        customer = customers[index % len(customers)]
        order_id = place(client, product_id, customer, timings[index])
        if order_id is not None:
            watcher.watch(order_id, customer, timings[index])

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="order") as pool:
        for index, offset in enumerate(offsets):
            delay = started + offset - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, index)
    watcher.close()
    polling.join(SETTLE_TIMEOUT_S + len(offsets) / watcher.polls_per_s + 10)
    return timings, watcher.polls, time.monotonic() - started
