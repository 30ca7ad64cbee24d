"""The end-to-end benchmark's stage: a fresh local stage, a shop on it, and the embedded AWS's bound.

Every call to the stage's API goes through the one stage client (``runbooks.stage_client``).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
import psutil

from bench.calls import CallCounts, CallLogReader
from bench.e2e_load import POLLS_PER_S, SETTLE_TIMEOUT_S
from localstage.call_log import CALL_LOG
from localstage.process import StageStartError, stage_process
from localstage.seed import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD
from runbooks.stage_client import OrderNotSettledError, StageClient, order_body

STARTUP_TIMEOUT_S = 90.0
TRAILING_S = 1.0  # after the last order settles, so its trailing work (notifications) lands in the window
POLL_SAMPLES = 20
CAPACITY_THREADS = 4
CUSTOMERS = 4
BenchShop = tuple[str, list[dict[str, str]]]  # the product's id, the customers' auth headers


class StageError(RuntimeError):
    """The local stage did not start, or answered the set-up requests wrongly."""


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


def set_up_shop(client: StageClient, orders: int) -> BenchShop:
    """A product with stock for every order, and a few logged-in customers."""
    admin = client.login(DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD)
    product_id = client.create_product(
        admin, name="Bench teapot", category="bench", price=12.5, stock=10 * orders + 1000
    )
    customers = [client.register("bench", "Sup3r-secret", "Bench").headers for _ in range(CUSTOMERS)]
    return product_id, customers


def poll_signature(client: StageClient, reader: CallLogReader, order_id: str, headers: dict[str, str]) -> CallCounts:
    """The calls one status poll (``GET /orders/{id}``, authorizer included) makes, from a quiet stage."""
    time.sleep(0.5)
    reader.since_mark()
    for _ in range(POLL_SAMPLES):
        code, _order = client.order(headers, order_id)
        if code != 200:
            raise StageError(f"GET /orders/{order_id} answered {code}")
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


def a_poll_signature(
    client: StageClient, reader: CallLogReader, customer: dict[str, str], product_id: str
) -> CallCounts:
    """Place one more order, let it settle, and measure what polling it costs (``poll_signature``)."""
    order_id = client.place_order(customer, order_body(product_id))
    # Measured whether or not it completed within the bound, as before: the polls cost the same.
    with contextlib.suppress(OrderNotSettledError):
        client.wait_for_order(
            customer,
            order_id,
            timeout_s=SETTLE_TIMEOUT_S,
            poll_s=1 / POLLS_PER_S,
            done=lambda order: order.get("status") == "COMPLETED",
        )
    time.sleep(TRAILING_S)
    reader.mark()
    return poll_signature(client, reader, order_id, customer)
