"""Warm overhead: requests per second through the real app against a bare Chalice app, in one process.

The app object is called directly with API Gateway proxy events and a fake Lambda context, as the
Lambda runtime would call it. The authorized route is measured twice: with the authorizer before
every request (every request a policy-cache miss), and behind a model of API Gateway's policy cache
(``PolicyCache``: one authorizer run per token per ``ttl_seconds``), which is how it is deployed
and the figure the bar is judged on. Adapters are in memory, so the
figure is the cost of our wiring (routing, middleware, error translation, token checks, services)
over Chalice's own. Scenarios run interleaved in rounds; each must answer 200, or the benchmark
fails rather than timing error paths.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from chalice import Chalice

from bench.events import ApiRequest, FakeLambdaContext, authorizer_context
from bench.figures import Figure, per_second, times
from bench.registry import Options
from bench.stats import median, ratio, spread
from chalicelib.bootstrap import Container, use_container
from chalicelib.config import ADAPTERS, ADAPTERS_MEMORY, STAGE, Settings
from chalicelib.domain.orders import parse_order_request
from chalicelib.domain.users import Principal, parse_registration

BAR = 0.75
BARE = "bare"
BATCH = 25  # requests between two looks at the clock
API_GATEWAY_DEFAULT_TTL = 300  # what API Gateway caches an authorizer's verdict for when no TTL is set
ORDER_BODY = {
    "items": [{"product_id": "", "quantity": 2}],
    "shipping_address": {
        "name": "Ada",
        "line1": "1 Main St",
        "city": "Springfield",
        "postal_code": "12345",
        "country": "US",
    },
    "payment_method": {"type": "card", "token": "tok_success"},
}

Call = Callable[[], int]  # one request; returns its HTTP status
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]  # a Lambda handler: the Chalice app, or the peer's
PEER_BAR = 1.0
# Our scenario -> the same request on the Powertools peer (bench/peer/powertools_app.py).
PEER_OF = {"product": "peer-product", "order-cached": "peer-order-cached"}


class UnexpectedStatusError(RuntimeError):
    """A scenario answered something other than 200: its rate would measure an error path."""


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str
    call: Call
    judged: bool = True  # False: shown for reference, without the bar


UNCACHED_NOTE = (
    "for reference, no bar: API Gateway runs the authorizer on a policy-cache miss only, so the bar is judged "
    "on the cached figure, the deployed configuration"
)


def bare_app() -> Chalice:
    """The baseline: one route returning a constant, no middleware, no authorizer."""
    bare = Chalice(app_name="bench-bare")

    @bare.route("/ping", methods=["GET"])
    def ping() -> dict[str, str]:
        return {"status": "ok"}

    return bare


def direct_call(app: Handler, event: dict[str, Any], context: FakeLambdaContext) -> Call:
    return lambda: int(app(event, context)["statusCode"])


def authorized_call(app: Handler, authorizer: Any, request: ApiRequest, context: FakeLambdaContext) -> Call:
    """Authorizer, then handler with the authorizer's context, as API Gateway chains them."""
    token_event = request.token_event()
    event = request.proxy_event(authorizer={})
    request_context = event["requestContext"]

    def call() -> int:
        granted = authorizer_context(authorizer(token_event, context))
        if granted is None:
            return 403
        request_context["authorizer"] = granted
        return int(app(event, context)["statusCode"])

    return call


class PolicyCache:
    """API Gateway's authorizer cache: one verdict per token, reused for ``ttl_seconds``.

    As deployed, API Gateway runs the TOKEN authorizer on a cache miss only, so a client sending
    many requests with one token pays for the authorizer once per TTL, not per request.
    """

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._verdicts: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self.misses = 0

    def verdict(self, token: str, authorize: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
        now = self._clock()
        cached = self._verdicts.get(token)
        if cached is not None and cached[0] > now:
            return cached[1]
        self.misses += 1
        granted = authorize()
        self._verdicts[token] = (now + self.ttl_seconds, granted)
        return granted


def cached_authorized_call(
    app: Handler, authorizer: Any, request: ApiRequest, context: FakeLambdaContext, cache: PolicyCache
) -> Call:
    """``authorized_call`` behind API Gateway's policy cache: the authorizer runs on a miss only."""
    token_event = request.token_event()
    token = token_event["authorizationToken"]
    event = request.proxy_event(authorizer={})
    request_context = event["requestContext"]

    def call() -> int:
        granted = cache.verdict(token, lambda: authorizer_context(authorizer(token_event, context)))
        if granted is None:
            return 403
        request_context["authorizer"] = granted
        return int(app(event, context)["statusCode"])

    return call


def authorizer_ttl_seconds(authorizer: Any) -> int:
    """The ``ttl_seconds`` given to ``@app.authorizer``: how long the deployed API caches a verdict."""
    ttl = authorizer.config.ttl_seconds
    return API_GATEWAY_DEFAULT_TTL if ttl is None else int(ttl)


def import_app(project_root: Path) -> Any:
    if str(project_root) not in sys.path:
        sys.path.insert(0, str(project_root))
    return importlib.import_module("app")


def memory_container() -> Container:
    return Container(Settings.from_env({ADAPTERS: ADAPTERS_MEMORY, STAGE: "bench"}))


def app_scenarios(app_module: Any, container: Container, context: FakeLambdaContext) -> list[Scenario]:
    """Seed a product, a customer and their order through the services, then build the two calls."""
    admin = Principal("bench-admin", "admin@bench.example", ("admin", "user"))
    product = container.catalog.create(
        admin, {"name": "Teapot", "category": "kitchen", "price": Decimal("19.99"), "stock": 1000}
    )
    profile = container.users.register(
        parse_registration({"email": "ada@bench.example", "password": "Sup3r-secret", "name": "Ada"})
    )
    customer = Principal(profile.user_id, profile.email, profile.roles)
    body = {**ORDER_BODY, "items": [{"product_id": product.product_id, "quantity": 2}]}
    order = container.orders.place(customer, parse_order_request(body)).order
    token = container.tokens.issue(profile)
    ttl = authorizer_ttl_seconds(app_module.jwt_auth)

    product_event = ApiRequest("GET", "/products/{product_id}", {"product_id": product.product_id}).proxy_event()
    order_request = ApiRequest(
        "GET", "/orders/{order_id}", {"order_id": order.order_id}, headers={"Authorization": f"Bearer {token}"}
    )
    peer = importlib.import_module("bench.peer.powertools_app").handler
    peer_cache = PolicyCache(ttl)
    return [
        Scenario("product", "GET /products/{id} (public)", direct_call(app_module.app, product_event, context)),
        Scenario(
            "peer-product",
            "Powertools peer, GET /products/{id} (public)",
            direct_call(peer, product_event, context),
            judged=False,
        ),
        Scenario(
            "peer-order-cached",
            f"Powertools peer, GET /orders/{{id}}, authorizer cached per token for {ttl} s",
            cached_authorized_call(peer, app_module.jwt_auth, order_request, context, peer_cache),
            judged=False,
        ),
        Scenario(
            "order",
            "GET /orders/{id}, authorizer on every request (uncached)",
            authorized_call(app_module.app, app_module.jwt_auth, order_request, context),
            judged=False,
        ),
        Scenario(
            "order-cached",
            f"GET /orders/{{id}}, authorizer cached per token for {ttl} s (as deployed)",
            cached_authorized_call(app_module.app, app_module.jwt_auth, order_request, context, PolicyCache(ttl)),
        ),
    ]


def requests_per_second(call: Call, seconds: float) -> float:
    """Call repeatedly for about ``seconds``; every answer must be a 200."""
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(BATCH):
            status = call()
            if status != 200:
                raise UnexpectedStatusError(f"answered {status}")
        count += BATCH
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started)


@dataclass
class WarmResult:
    rounds: int
    round_seconds: float
    labels: dict[str, str]
    judged: dict[str, bool] = field(default_factory=dict)
    rates: dict[str, list[float]] = field(default_factory=dict)

    def figures(self) -> list[Figure]:
        bare = median(self.rates[BARE])
        rows = []
        for name in (n for n in self.rates if n != BARE):
            rate = median(self.rates[name])
            per_round = [r / b for r, b in zip(self.rates[name], self.rates[BARE], strict=True)]
            low, high = spread(per_round)
            judged = self.judged.get(name, True)
            note = (
                f"median of {self.rounds} interleaved rounds of {self.round_seconds:g} s, in-process, "
                f"in-memory adapters; per-round ratios {low:.2f} to {high:.2f}; bare = {self.labels[BARE]}"
            )
            rows.append(
                Figure(
                    name=f"warm rate, {self.labels[name]}",
                    value=per_second(rate),
                    baseline=per_second(bare),
                    ratio=times(ratio(rate, bare)),
                    bar=f">= {BAR}x bare" if judged else "-",
                    holds=ratio(rate, bare) >= BAR if judged else None,
                    note=note if judged or name in PEER_OF.values() else f"{note}; {UNCACHED_NOTE}",
                )
            )
        for ours, peer in PEER_OF.items():
            if ours in self.rates and peer in self.rates:
                rows.append(self._against_peer(ours, peer))
        return rows

    def _against_peer(self, ours: str, peer: str) -> Figure:
        per_round = [o / p for o, p in zip(self.rates[ours], self.rates[peer], strict=True)]
        low, high = spread(per_round)
        held = ratio(median(self.rates[ours]), median(self.rates[peer]))
        return Figure(
            name=f"warm rate against the Powertools peer, {self.labels[ours]}",
            value=per_second(median(self.rates[ours])),
            baseline=per_second(median(self.rates[peer])),
            ratio=times(held),
            bar=f">= {PEER_BAR}x peer",
            holds=held >= PEER_BAR,
            note=f"same request, same services and in-memory adapters; peer = Logger, Metrics (one EMF document "
            f"per invocation), Tracer and APIGatewayRestResolver as Powertools documents them; per-round ratios "
            f"{low:.2f} to {high:.2f}",
        )

    def details(self) -> str:
        return ""


def log_sink() -> TextIO:
    """Where the app's log lines and EMF documents go while timed: the null device, never closed.

    In Lambda, stdout is a pipe to the runtime, so each invocation's EMF document costs a write
    and a flush; writing to ``/dev/null`` keeps that system call in the figure without flooding
    the report. Left open: the JSON log handler the app installs on first use keeps a reference.
    """
    return open(os.devnull, "w")


def measure_warm(options: Options) -> WarmResult:
    with contextlib.redirect_stdout(log_sink()):
        return _measure_warm(options)


def _measure_warm(options: Options) -> WarmResult:
    app_module = import_app(options.project_root)
    container = memory_container()
    use_container(container)
    try:
        context = FakeLambdaContext()
        bare_event = ApiRequest("GET", "/ping").proxy_event()
        scenarios = [
            Scenario(
                BARE, "Chalice app with one route returning a constant", direct_call(bare_app(), bare_event, context)
            ),
            *app_scenarios(app_module, container, context),
        ]
        result = WarmResult(
            options.rounds,
            options.round_seconds,
            {s.name: s.label for s in scenarios},
            {s.name: s.judged for s in scenarios},
        )
        for scenario in scenarios:  # warm-up, discarded; also proves each answers 200
            try:
                requests_per_second(scenario.call, min(0.2, options.round_seconds))
            except UnexpectedStatusError as exc:
                raise UnexpectedStatusError(f"{scenario.label} {exc}") from None
        for index in range(options.rounds):
            shift = index % len(scenarios)
            for scenario in scenarios[shift:] + scenarios[:shift]:
                rate = requests_per_second(scenario.call, options.round_seconds)
                result.rates.setdefault(scenario.name, []).append(rate)
        return result
    finally:
        use_container(None)
