"""End to end on the local stage: orders per second from ``POST /orders`` to ``COMPLETED``.

A fresh stage (``python -m localstage.call_log``, on free ports, state in a temporary directory)
serves one product with a large stock and a few customers. For the load window orders arrive
open-loop at a steady rate (each at its scheduled time, whether or not earlier ones are done),
and each is polled over HTTP until it is ``COMPLETED``; latency is from sending ``POST /orders``
to the poll that sees ``COMPLETED``, so it includes up to one poll interval. The stage's call log
gives the AWS calls per order (``bench/calls.py``). Finally a few threads call the embedded AWS
directly with a cheap mix (DynamoDB ``GetItem``, SQS ``SendMessage`` to a queue of the
benchmark's own) as fast as it answers: that rate bounds what the stage can do, and the figure
is the share of it the orders used.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import psutil

from bench.calls import CallCounts, CallLogReader, by_service, per_order, scaled, split_emulation
from bench.figures import Figure, per_second
from bench.registry import Options
from bench.stats import median
from localstage.call_log import CALL_LOG
from localstage.process import StageStartError, stage_process
from localstage.seed import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD

STARTUP_TIMEOUT_S = 90.0
POLL_INTERVAL_S = 0.25
SETTLE_TIMEOUT_S = 60.0
IDLE_WINDOW_S = 3.0
TRAILING_S = 1.0  # after the last order settles, so its trailing work (notifications) lands in the window
POLL_SAMPLES = 20
CAPACITY_THREADS = 4
CUSTOMERS = 4
ADDRESS = {"name": "Ada", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
SUSTAINED = 0.95  # the share of offered orders that must complete for the rate to count as sustained


class StageError(RuntimeError):
    """The local stage did not start, or answered the set-up requests wrongly."""


@dataclass(frozen=True)
class LoadPlan:
    seconds: float
    rate: float  # orders offered per second
    capacity_seconds: float

    @classmethod
    def of(cls, options: Options) -> LoadPlan:
        return cls(options.e2e_seconds, options.e2e_rate, options.e2e_capacity_seconds)

    def offsets(self) -> list[float]:
        """When each order is sent, in seconds from the start: ``rate`` per second, evenly."""
        count = max(1, int(self.seconds * self.rate))
        return [index / self.rate for index in range(count)]


@dataclass
class OrderTiming:
    sent_at: float
    status: str = "unsent"
    latency_s: float | None = None
    completed_at: float | None = None  # monotonic clock
    error: str = ""


@dataclass
class E2eResult:
    plan: LoadPlan
    timings: list[OrderTiming]
    window_s: float  # from the first order sent to the last one settled
    calls_per_order: dict[tuple[str, str], float]
    emulation_per_order: dict[tuple[str, str], float]
    served_per_s: float  # every call the embedded AWS served during the load window, per second
    bound_per_s: float
    stage_cpu_s: float = float("nan")  # the stage process's CPU time over the load window (idle included)
    notes: list[str] = field(default_factory=list)

    @property
    def completed(self) -> list[OrderTiming]:
        return [t for t in self.timings if t.status == "COMPLETED"]

    @property
    def orders_per_s(self) -> float:
        return completion_rate([t.completed_at for t in self.completed if t.completed_at is not None])

    def carry(self, options: Options) -> Options:
        """The calls per order this run counted, for the cost figure after it."""
        return dataclasses.replace(options, e2e_calls_per_order=dict(self.calls_per_order))

    @property
    def cpu_ms_per_order(self) -> float:
        return 1000 * self.stage_cpu_s / max(1, len(self.completed))

    @property
    def app_calls_per_order(self) -> float:
        return sum(self.calls_per_order.values())

    @property
    def share_of_bound(self) -> float:
        return self.orders_per_s * self.app_calls_per_order / self.bound_per_s

    def figures(self) -> list[Figure]:
        latencies = sorted(t.latency_s for t in self.completed if t.latency_s is not None)
        offered = len(self.timings)
        sustained = len(self.completed) >= SUSTAINED * offered
        failures = sorted({t.status if not t.error else t.error for t in self.timings if t.status != "COMPLETED"})
        base = (
            f"{len(self.completed)} of {offered} orders offered at {self.plan.rate:g}/s for {self.plan.seconds:g} s "
            f"completed within {self.window_s:.1f} s"
        )
        if failures:
            base += f"; others: {', '.join(failures)[:200]}"
        return [
            Figure(
                name="end to end, orders completed per second (local stage)",
                value=f"{self.orders_per_s:.2f}/s",
                bar=f"sustained (>= {SUSTAINED:.0%} of offered complete)",
                holds=sustained,
                note=base + "; open-loop arrivals, each order polled every 0.25 s until COMPLETED",
            ),
            Figure(
                name="end to end, POST /orders to COMPLETED, p50 / p99",
                value=f"{percentile(latencies, 50):.2f} s / {percentile(latencies, 99):.2f} s",
                note=f"{len(latencies)} orders; includes up to {POLL_INTERVAL_S} s of polling; "
                "PAYMENT_WAIT_SECONDS is 1 on the local stage",
            ),
            Figure(
                name="end to end, AWS calls per order (app, as deployed)",
                value=f"{self.app_calls_per_order:.1f}",
                note="; ".join(f"{s} {c:.1f}" for s, c in by_service(self.calls_per_order).items())
                + f"; plus {sum(self.emulation_per_order.values()):.1f} the stage makes to emulate what AWS does "
                "unbilled (status events, log delivery, EMF extraction; see below)",
            ),
            Figure(
                name="end to end, stage CPU per order",
                value=f"{self.cpu_ms_per_order:.0f} ms",
                note=f"CPU time of the stage's process (user + system) over the load window "
                f"({self.stage_cpu_s:.1f} s in {self.window_s + TRAILING_S:.0f} s), divided by the "
                f"{len(self.completed)} orders completed; includes the benchmark's status polls and the stage's "
                "idle background",
            ),
            Figure(
                name="end to end, embedded AWS bound (GetItem + SendMessage)",
                value=per_second(self.bound_per_s),
                ratio=f"{self.share_of_bound:.2f}",
                note=f"{CAPACITY_THREADS} threads calling it directly for {self.plan.capacity_seconds:g} s after the "
                f"load; ratio = orders/s x app calls per order / bound; during the load it served "
                f"{self.served_per_s:,.0f} calls/s of every kind ({self.served_per_s / self.bound_per_s:.2f} of the "
                "bound), polls and emulation included",
            ),
        ]

    def details(self) -> str:
        lines = [
            "### End to end: the AWS calls one order makes",
            "",
            "Counted on the embedded AWS (`LOCAL_AWS_CALL_LOG`, `localstage/call_log.py`) over the load window, "
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


# -- the stage --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageHandle:
    api_url: str
    aws_endpoint: str
    state_dir: Path
    call_log: Path
    pid: int | None = None

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the stage's process and its children have used so far."""
        if self.pid is None:
            return float("nan")
        process = psutil.Process(self.pid)
        return float(sum(p.cpu_times().user + p.cpu_times().system for p in [process, *process.children(True)]))

    def outputs(self) -> dict[str, str]:
        return dict(json.loads((self.state_dir / "outputs.json").read_text()))


@contextmanager
def running_stage(project_root: Path) -> Iterator[StageHandle]:
    """A fresh ``python -m localstage.call_log`` on free ports; SIGTERM afterwards."""
    del project_root  # the stage always runs from the project that holds localstage/
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        state = Path(tmp)
        call_log = state / "aws-calls.log"
        # tracemalloc is a measuring aid, not what Lambda does: off while measuring throughput.
        extra = {"LOCAL_LAMBDA_MEASURE_MEMORY": "0", CALL_LOG: str(call_log)}
        try:
            with stage_process(
                state, extra, module="localstage.call_log", startup_timeout_s=STARTUP_TIMEOUT_S
            ) as stage:
                yield StageHandle(stage.api_url, stage.aws_endpoint, state, call_log, stage.pid)
        except StageStartError as exc:
            raise StageError(str(exc)) from exc


# -- the shop ---------------------------------------------------------------------------------------


def _expect(answer: httpx.Response, status: int) -> dict[str, Any]:
    if answer.status_code != status:
        raise StageError(f"{answer.request.method} {answer.request.url.path} answered {answer.status_code}")
    return dict(answer.json())


def _login(http: httpx.Client, email: str, password: str) -> dict[str, str]:
    token = _expect(http.post("/auth/login", json={"email": email, "password": password}), 200)["access_token"]
    return {"Authorization": f"Bearer {token}"}


def set_up_shop(http: httpx.Client, orders: int) -> tuple[str, list[dict[str, str]]]:
    """A product with stock for every order, and a few logged-in customers."""
    admin = _login(http, DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD)
    body = {"name": "Bench teapot", "category": "bench", "price": 12.5, "stock": 10 * orders + 1000}
    product_id = str(_expect(http.post("/products", json=body, headers=admin), 201)["product_id"])
    customers = []
    for _ in range(CUSTOMERS):
        email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
        _expect(http.post("/users", json={"email": email, "password": "Sup3r-secret", "name": "Bench"}), 201)
        customers.append(_login(http, email, "Sup3r-secret"))
    return product_id, customers


def place_and_settle(http: httpx.Client, product_id: str, customer: dict[str, str], timing: OrderTiming) -> int:
    """Place one order and poll it to a terminal status; returns how many polls it took."""
    body = {
        "items": [{"product_id": product_id, "quantity": 1}],
        "shipping_address": ADDRESS,
        "payment_method": {"type": "card", "token": "tok_success"},
    }
    started = time.monotonic()
    polls = 0
    try:
        answer = http.post("/orders", json=body, headers=customer)
        if answer.status_code != 201:
            timing.status = f"POST {answer.status_code}"
            return polls
        order_id = answer.json()["order_id"]
        timing.status = "PENDING"
        deadline = started + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL_S)
            polls += 1
            status = http.get(f"/orders/{order_id}", headers=customer).json().get("status", "?")
            if status in ("COMPLETED", "FAILED"):
                timing.status = status
                timing.completed_at = time.monotonic()
                timing.latency_s = timing.completed_at - started
                return polls
        timing.status = "TIMEOUT"
    except httpx.HTTPError as exc:
        timing.error = type(exc).__name__
        timing.status = "ERROR"
    return polls


def run_load(
    http: httpx.Client, plan: LoadPlan, product_id: str, customers: list[dict[str, str]]
) -> tuple[list[OrderTiming], int, float]:
    """Open-loop arrivals at ``plan.rate``; returns the timings, the status polls made, the window in s."""
    offsets = plan.offsets()
    timings = [OrderTiming(sent_at=offset) for offset in offsets]
    polls = [0] * len(offsets)
    # Enough workers that no arrival waits for one: rate x (latency bound) orders in flight.
    workers = min(256, max(8, int(plan.rate * 20)))
    started = time.monotonic()

    def one(index: int) -> None:
        polls[index] = place_and_settle(http, product_id, customers[index % len(customers)], timings[index])

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="order") as pool:
        for index, offset in enumerate(offsets):
            delay = started + offset - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, index)
    return timings, sum(polls), time.monotonic() - started


def poll_signature(http: httpx.Client, reader: CallLogReader, order_path: str, headers: dict[str, str]) -> CallCounts:
    """The calls one status poll (``GET /orders/{id}``, authorizer included) makes, from a quiet stage."""
    time.sleep(0.5)
    reader.since_mark()
    for _ in range(POLL_SAMPLES):
        _expect(http.get(order_path, headers=headers), 200)
    time.sleep(0.2)
    return reader.since_mark()


# -- the bound --------------------------------------------------------------------------------------


def embedded_aws_capacity(handle: StageHandle, seconds: float) -> float:
    """Calls per second the embedded AWS answers for a cheap mix, from ``CAPACITY_THREADS`` threads."""
    outputs = handle.outputs()
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    sqs = session.client("sqs", endpoint_url=handle.aws_endpoint)
    queue_url = sqs.create_queue(QueueName=f"bench-capacity-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    table = outputs["PRODUCTS_TABLE"]
    counts = [0] * CAPACITY_THREADS
    stop = threading.Event()

    def hammer(index: int) -> None:
        dynamodb = session.client("dynamodb", endpoint_url=handle.aws_endpoint)
        queue = session.client("sqs", endpoint_url=handle.aws_endpoint)
        while not stop.is_set():
            dynamodb.get_item(TableName=table, Key={"product_id": {"S": "prod_bench_missing"}})
            queue.send_message(QueueUrl=queue_url, MessageBody="x")
            counts[index] += 2

    threads = [threading.Thread(target=hammer, args=(i,), daemon=True) for i in range(CAPACITY_THREADS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(10)
    elapsed = time.monotonic() - started
    sqs.delete_queue(QueueUrl=queue_url)
    return sum(counts) / elapsed


# -- the benchmark ----------------------------------------------------------------------------------


def measure_e2e(options: Options) -> E2eResult:
    plan = LoadPlan.of(options)
    with running_stage(options.project_root) as handle, httpx.Client(base_url=handle.api_url, timeout=30) as http:
        product_id, customers = set_up_shop(http, len(plan.offsets()))
        reader = CallLogReader(handle.call_log)
        reader.mark()
        time.sleep(IDLE_WINDOW_S)
        idle_rate = scaled(reader.since_mark(), 1 / IDLE_WINDOW_S)

        cpu_before = handle.cpu_seconds()
        timings, polls, window_s = run_load(http, plan, product_id, customers)
        time.sleep(TRAILING_S)
        stage_cpu_s = handle.cpu_seconds() - cpu_before
        window = reader.since_mark()
        load_s = window_s + TRAILING_S
        settled = [t for t in timings if t.status == "COMPLETED"]
        if not settled:
            raise StageError(f"no order completed: {sorted({t.status for t in timings})}")

        poll_calls = scaled(_a_poll(http, reader, customers[0], product_id), polls / POLL_SAMPLES)
        counted = per_order(window, len(settled), idle=scaled(idle_rate, load_s), polls=poll_calls)
        app, emulation = split_emulation(counted)
        bound = embedded_aws_capacity(handle, plan.capacity_seconds)
        return E2eResult(
            plan=plan,
            timings=timings,
            window_s=window_s,
            calls_per_order=app,
            emulation_per_order=emulation,
            served_per_s=sum(window.values()) / load_s,
            bound_per_s=bound,
            stage_cpu_s=stage_cpu_s,
            notes=[
                f"median placement-to-COMPLETED {median([t.latency_s for t in settled if t.latency_s]):.2f} s; "
                f"{polls} status polls subtracted at their measured cost; idle background "
                f"{sum(idle_rate.values()):.1f} calls/s subtracted",
            ],
        )


def _a_poll(http: httpx.Client, reader: CallLogReader, customer: dict[str, str], product_id: str) -> CallCounts:
    """Place one more order, let it settle, and measure what polling it costs (``poll_signature``)."""
    timing = OrderTiming(sent_at=0.0)
    body = {
        "items": [{"product_id": product_id, "quantity": 1}],
        "shipping_address": ADDRESS,
        "payment_method": {"type": "card", "token": "tok_success"},
    }
    order_id = _expect(http.post("/orders", json=body, headers=customer), 201)["order_id"]
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline and timing.status != "COMPLETED":
        time.sleep(POLL_INTERVAL_S)
        timing.status = http.get(f"/orders/{order_id}", headers=customer).json().get("status", "?")
    time.sleep(TRAILING_S)
    reader.mark()
    return poll_signature(http, reader, f"/orders/{order_id}", customer)
