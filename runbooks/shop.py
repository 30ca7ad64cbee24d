"""The load test's HTTP side: a buyer account, a product to order, and the two scenarios.

``browse`` lists products; ``order`` places an order with a sandbox card token drawn from the
configured weights, each with its own ``Idempotency-Key``. Every call goes through the one stage
client (``runbooks.stage_client``). Afterwards ``follow_orders`` checks the
pipeline: every accepted order must reach ``COMPLETED`` or ``FAILED`` within a bound.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from runbooks.loadgen import Answer
from runbooks.stage_client import TERMINAL, StageClient, StageRequestError, new_idempotency_key, order_body

SANDBOX_TOKENS = ("tok_success", "tok_declined", "tok_pending", "tok_gateway_timeout")
ADDRESS = {"name": "Load Test", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


class ShopSetupError(RuntimeError):
    """The load test could not prepare its buyer or product (the stage is not usable)."""


@dataclass
class Shop:
    """The load test's side of a stage: a logged-in buyer and the products the order scenario buys."""

    client: StageClient
    buyer: dict[str, str]
    product_ids: list[str]
    token_weights: Mapping[str, float]
    seed: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311  (reproducible test data)
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        api_url: str,
        *,
        timeout_s: float,
        max_connections: int,
        token_weights: Mapping[str, float],
        admin_email: str = "",
        admin_password: str = "",
        stock: int = 1_000_000,
    ) -> Shop:
        """Register a fresh buyer; with admin credentials create a product with ample stock, else use the catalog's."""
        client = StageClient.open(api_url, timeout_s=timeout_s, max_connections=max_connections)
        try:
            buyer = client.register("loadtest", "Load-test-" + uuid.uuid4().hex[:12], "Load Test")
            products = cls._products(client, admin_email, admin_password, stock)
        except StageRequestError as exc:
            client.close()
            raise ShopSetupError(f"could not prepare the load test: {exc}") from exc
        return cls(client, buyer.headers, products, token_weights)

    @staticmethod
    def _products(client: StageClient, admin_email: str, admin_password: str, stock: int) -> list[str]:
        if admin_email:
            admin = client.login(admin_email, admin_password)
            name = f"Load test {uuid.uuid4().hex[:6]}"
            return [client.create_product(admin, price=5, stock=stock, category="loadtest", name=name)]
        listed = client.http.get("/products", params={"limit": 20})
        items = listed.json().get("items", []) if listed.status_code == 200 else []
        if not items:
            raise ShopSetupError("the catalog is empty and no admin credentials were given to create a product")
        return [str(item["product_id"]) for item in items]

    def _draw(self) -> tuple[str, str]:
        with self._lock:  # random.Random is not safe to share between threads
            token = self._rng.choices(list(self.token_weights), list(self.token_weights.values()))[0]
            return token, self._rng.choice(self.product_ids)

    def perform(self, scenario: str) -> Answer:
        try:
            if scenario == "browse":
                return Answer(self.client.http.get("/products", params={"limit": 20}).status_code)
            if scenario == "order":
                return self._order()
        except httpx.TimeoutException as exc:
            return Answer(None, timed_out=True, error=type(exc).__name__)
        except httpx.TransportError as exc:
            return Answer(None, error=f"{type(exc).__name__}: {exc}")
        raise ValueError(f"unknown scenario {scenario!r}")

    def _order(self) -> Answer:
        token, product = self._draw()
        answer = self.client.post_order(
            self.buyer, order_body(product, token=token, address=ADDRESS), new_idempotency_key()
        )
        order_id = answer.json().get("order_id") if answer.status_code == 201 else None
        return Answer(answer.status_code, order_id=order_id)

    def order_status(self, order_id: str) -> tuple[int, dict[str, Any]]:
        return self.client.order(self.buyer, order_id)

    def close(self) -> None:
        self.client.close()


@dataclass(frozen=True)
class OrderFate:
    order_id: str
    status: str  # COMPLETED, FAILED, or the last non-terminal status, or LOST (not found)
    failure_reason: str | None
    settled_after_s: float | None  # seconds from the check's start until seen terminal (an upper bound)


def follow_orders(shop: Shop, order_ids: Sequence[str], bound_s: float, poll_s: float = 0.5) -> list[OrderFate]:
    """Poll every accepted order until it is terminal or ``bound_s`` has passed; a 404 is a lost order."""
    start = time.monotonic()
    pending = set(order_ids)
    fates: dict[str, OrderFate] = {}
    last: dict[str, str] = {}

    def check(order_id: str) -> None:
        code, order = shop.order_status(order_id)
        if code == 404:
            last[order_id] = "LOST"
        elif code == 200:
            status = str(order.get("status"))
            last[order_id] = status
            if status in TERMINAL:
                fates[order_id] = OrderFate(order_id, status, order.get("failure_reason"), time.monotonic() - start)

    with ThreadPoolExecutor(max_workers=8) as pool:
        while pending and time.monotonic() - start < bound_s:
            list(pool.map(check, sorted(pending)))
            pending -= set(fates)
            if pending:
                time.sleep(poll_s)
    for order_id in pending:
        fates[order_id] = OrderFate(order_id, last.get(order_id, "UNKNOWN"), None, None)
    return [fates[order_id] for order_id in order_ids]


def pipeline_verdict(fates: Sequence[OrderFate], bound_s: float) -> dict[str, Any]:
    lost = [f.order_id for f in fates if f.status == "LOST"]
    stuck = [f.order_id for f in fates if f.status not in TERMINAL and f.status != "LOST"]
    by_status: dict[str, int] = {}
    for fate in fates:
        by_status[fate.status] = by_status.get(fate.status, 0) + 1
    return {
        "accepted": len(fates),
        "terminal": sum(1 for f in fates if f.status in TERMINAL),
        "by_status": by_status,
        "lost": lost,
        "not_terminal_within_bound": stuck,
        "bound_s": bound_s,
        "ok": not lost and not stuck,
    }


def seed_orders(api_url: str, tokens: Sequence[str], bound_s: float = 60.0) -> list[OrderFate]:
    """Place one order per token through the API and wait until each is terminal: data for the runbooks."""
    shop = Shop.open(api_url, timeout_s=15, max_connections=4, token_weights={"tok_success": 1})
    try:
        ids = []
        for token in tokens:
            shop.token_weights = {token: 1}
            answer = shop.perform("order")
            if answer.order_id is None:
                raise ShopSetupError(f"could not place an order with {token}: {answer.status} {answer.error}")
            ids.append(answer.order_id)
        return follow_orders(shop, ids, bound_s)
    finally:
        shop.close()
