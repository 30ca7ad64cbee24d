"""Warm overhead: requests per second through the real app against a bare Chalice app, in one process.

The app object is called directly with API Gateway proxy events and a fake Lambda context, as the
Lambda runtime would call it. For an authorized route the authorizer runs before every request
(no policy caching), as API Gateway would run it on a cache miss. Adapters are in memory, so the
figure is the cost of our wiring (routing, middleware, error translation, token checks, services)
over Chalice's own. Scenarios run interleaved in rounds; each must answer 200, or the benchmark
fails rather than timing error paths.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from chalice import Chalice

from bench.events import ApiRequest, FakeLambdaContext, authorizer_context
from bench.figures import Figure, per_second, times
from bench.registry import Options
from bench.stats import median, ratio, spread
from chalicelib.bootstrap import Container, use_container
from chalicelib.config import ADAPTERS, ADAPTERS_MEMORY, STAGE, Settings
from chalicelib.domain.orders import parse_order_request
from chalicelib.domain.users import parse_registration
from chalicelib.services.tokens import Principal

BAR = 0.75
BARE = "bare"
BATCH = 25  # requests between two looks at the clock
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


class UnexpectedStatusError(RuntimeError):
    """A scenario answered something other than 200: its rate would measure an error path."""


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str
    call: Call


def bare_app() -> Chalice:
    """The baseline: one route returning a constant, no middleware, no authorizer."""
    bare = Chalice(app_name="bench-bare")

    @bare.route("/ping", methods=["GET"])
    def ping() -> dict[str, str]:
        return {"status": "ok"}

    return bare


def direct_call(app: Chalice, event: dict[str, Any], context: FakeLambdaContext) -> Call:
    return lambda: int(app(event, context)["statusCode"])


def authorized_call(app: Chalice, authorizer: Any, request: ApiRequest, context: FakeLambdaContext) -> Call:
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

    product_event = ApiRequest("GET", "/products/{product_id}", {"product_id": product.product_id}).proxy_event()
    order_request = ApiRequest(
        "GET", "/orders/{order_id}", {"order_id": order.order_id}, headers={"Authorization": f"Bearer {token}"}
    )
    return [
        Scenario("product", "GET /products/{id} (public)", direct_call(app_module.app, product_event, context)),
        Scenario(
            "order",
            "GET /orders/{id} (authorizer + handler)",
            authorized_call(app_module.app, app_module.jwt_auth, order_request, context),
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
    rates: dict[str, list[float]] = field(default_factory=dict)

    def figures(self) -> list[Figure]:
        bare = median(self.rates[BARE])
        rows = []
        for name in (n for n in self.rates if n != BARE):
            rate = median(self.rates[name])
            per_round = [r / b for r, b in zip(self.rates[name], self.rates[BARE], strict=True)]
            low, high = spread(per_round)
            rows.append(
                Figure(
                    name=f"warm rate, {self.labels[name]}",
                    value=per_second(rate),
                    baseline=per_second(bare),
                    ratio=times(ratio(rate, bare)),
                    bar=f">= {BAR}x bare",
                    holds=ratio(rate, bare) >= BAR,
                    note=(
                        f"median of {self.rounds} interleaved rounds of {self.round_seconds:g} s, in-process, "
                        f"in-memory adapters; per-round ratios {low:.2f} to {high:.2f}; "
                        f"bare = {self.labels[BARE]}"
                    ),
                )
            )
        return rows

    def details(self) -> str:
        return ""


def measure_warm(options: Options) -> WarmResult:
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
        result = WarmResult(options.rounds, options.round_seconds, {s.name: s.label for s in scenarios})
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
