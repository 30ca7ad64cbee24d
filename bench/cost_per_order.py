"""Cost per order: the AWS calls ``POST /orders`` makes synchronously, priced with ``chalicelib.cost``.

The calls are counted, not read off the code: the container is wired to its AWS adapters with
recording stand-ins for the boto3 clients, and ``OrderService.place`` (what the route calls)
places a two-line order with an ``Idempotency-Key``, the checkout the README shows. Every call
an adapter makes is mapped to a billable operation with its payload size; a call the mapping does
not know fails the figure, so a new call on this path cannot go unpriced. Lambda time is not
measurable here and is an assumption (``LambdaAssumptions``), priced at the memory sizes the
stage gives the functions in ``.chalice/config.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.figures import Figure
from bench.pipeline_cost import MEASURED_CALLS, Invocation, as_workflow, our_calls, our_workflow, seed_calls
from bench.registry import Options
from chalicelib.adapters.dynamodb import product_item
from chalicelib.adapters.dynamodb_codec import to_raw
from chalicelib.bootstrap import Container
from chalicelib.config import ADAPTERS, ADAPTERS_AWS, NOTIFICATIONS_TOPIC_ARN, ORDER_QUEUE_URL, STAGE, Settings
from chalicelib.cost import CostBreakdown, Op, Service, ServiceCalls, cost_per_million_orders, cost_per_order
from chalicelib.cost.workflow import STANDARD
from chalicelib.domain.catalog import Product
from chalicelib.domain.orders import parse_order_request
from chalicelib.domain.users import Principal
from infra.pipeline import STATE_MACHINE_FILE

CHECKOUT_KEY = "checkout-42"
_SEEDED = "2026-11-27T12:00:00.000000Z"
PRODUCTS = (
    Product("prod_" + "0" * 31 + "1", "Teapot", "kitchen", Decimal("19.99"), 25, "1.2 l, stoneware", _SEEDED, _SEEDED),
    Product("prod_" + "0" * 31 + "2", "Mug", "kitchen", Decimal("7.50"), 100, "0.3 l, porcelain", _SEEDED, _SEEDED),
)


@dataclass(frozen=True)
class LambdaAssumptions:
    """Warm durations assumed for the two invocations of an order (not measured: no AWS here).

    The handler waits on six AWS calls (a batch read, an idempotency read, a transaction, a queue
    send, an event, a publish) at roughly 10 to 25 ms each; the authorizer verifies an HS256 token
    with a cached key. The authorizer is counted on every order, as if its policy cache missed.
    """

    api_handler_ms: Decimal = Decimal(100)
    authorizer_ms: Decimal = Decimal(5)


@dataclass(frozen=True)
class RecordedCall:
    service: str
    operation: str
    params: dict[str, Any]
    answer: dict[str, Any]


class RecordingClient:
    """Stands in for a boto3 client: records each call and answers it through ``respond``."""

    def __init__(self, service: str, log: list[RecordedCall], respond: Callable[[str, dict[str, Any]], Any]) -> None:
        self._service = service
        self._log = log
        self._respond = respond

    def __getattr__(self, operation: str) -> Callable[..., dict[str, Any]]:
        if operation.startswith("_"):
            raise AttributeError(operation)

        def call(**params: Any) -> dict[str, Any]:
            answer = self._respond(operation, params)
            self._log.append(RecordedCall(self._service, operation, params, answer))
            return dict(answer)

        return call


def _dynamodb_answers(products: dict[str, dict[str, Any]]) -> Callable[[str, dict[str, Any]], Any]:
    def respond(operation: str, params: dict[str, Any]) -> Any:
        if operation == "batch_get_item":
            table, request = next(iter(params["RequestItems"].items()))
            found = [products[k["product_id"]["S"]] for k in request["Keys"] if k["product_id"]["S"] in products]
            return {"Responses": {table: found}, "UnprocessedKeys": {}}
        if operation in ("get_item", "put_item", "transact_write_items"):
            return {}  # no idempotency record yet; writes succeed
        raise NotImplementedError(f"dynamodb.{operation}")

    return respond


_ANSWERS: dict[str, Callable[[str, dict[str, Any]], Any]] = {
    "sqs": lambda operation, params: {"MessageId": "m-1"},
    "sns": lambda operation, params: {"MessageId": "m-2"},
    "events": lambda operation, params: {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]},
}


class RecordingContainer(Container):
    """The real wiring, with every boto3 client replaced by a recording stand-in."""

    def __init__(self, settings: Settings, products: dict[str, dict[str, Any]]) -> None:
        super().__init__(settings)
        self.calls: list[RecordedCall] = []
        self._answers = {**_ANSWERS, "dynamodb": _dynamodb_answers(products)}

    def _client(self, service: str) -> Any:
        if service not in self._answers:
            raise NotImplementedError(f"no recording client for {service}")
        return RecordingClient(service, self.calls, self._answers[service])


# -- sizes as the services bill them --------------------------------------------------------------


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def attribute_size(value: dict[str, Any]) -> int:
    """Bytes of one typed DynamoDB value, by AWS's item-size rules (numbers approximately)."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return _number_size(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "B":
        return len(inner)
    if kind == "SS":
        return sum(len(s.encode()) for s in inner)
    if kind == "NS":
        return sum(_number_size(n) for n in inner)
    if kind == "L":
        return 3 + sum(1 + attribute_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_size(v) for k, v in inner.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def _attributes_size(attributes: dict[str, dict[str, str]]) -> int:
    return sum(len(k) + len(v["DataType"]) + len(v.get("StringValue", "")) for k, v in attributes.items())


def billable_calls(calls: list[RecordedCall]) -> ServiceCalls:
    """Recorded boto3 calls as priced operations; ``ValueError`` for a call with no mapping."""
    billed = ServiceCalls()
    for call in calls:
        p = call.params
        match (call.service, call.operation):
            case ("dynamodb", "batch_get_item"):
                for items in call.answer["Responses"].values():
                    for item in items:
                        billed.add(Service.DYNAMODB, Op.BATCH_GET_ITEM, size_bytes=item_size(item))
            case ("dynamodb", "get_item"):
                op = Op.GET_ITEM_CONSISTENT if p.get("ConsistentRead") else Op.GET_ITEM
                billed.add(Service.DYNAMODB, op, size_bytes=item_size(call.answer.get("Item", {})))
            case ("dynamodb", "put_item"):
                billed.add(Service.DYNAMODB, Op.PUT_ITEM, size_bytes=item_size(p["Item"]))
            case ("dynamodb", "transact_write_items"):
                for entry in p["TransactItems"]:
                    ((_, write),) = entry.items()
                    billed.add(Service.DYNAMODB, Op.TRANSACT_WRITE_ITEM, size_bytes=item_size(write.get("Item", {})))
            case ("sqs", "send_message"):
                size = len(p["MessageBody"].encode()) + _attributes_size(p.get("MessageAttributes", {}))
                billed.add(Service.SQS, Op.SEND_MESSAGE, size_bytes=size)
            case ("sns", "publish"):
                size = len(p["Message"].encode()) + _attributes_size(p.get("MessageAttributes", {}))
                billed.add(Service.SNS, Op.PUBLISH, size_bytes=size)
            case ("events", "put_events"):
                for entry in p["Entries"]:
                    size = sum(len(str(entry.get(k, "")).encode()) for k in ("Source", "DetailType", "Detail"))
                    billed.add(Service.EVENTBRIDGE, Op.PUT_EVENTS_ENTRY, size_bytes=size)
            case _:
                raise ValueError(f"no billable mapping for {call.service}.{call.operation}")
    return billed


def function_memory(project_root: Path, stage: str) -> dict[str, int]:
    """Memory (MB) per function for ``stage``, from ``.chalice/config.json``."""
    config = json.loads((project_root / ".chalice" / "config.json").read_text())
    staged = config["stages"][stage]
    default = int(staged.get("lambda_memory_size", config.get("lambda_memory_size", 128)))
    functions = staged.get("lambda_functions", {})
    return {
        name: int(functions.get(name, {}).get("lambda_memory_size", default)) for name in ("api_handler", "jwt_auth")
    }


@dataclass(frozen=True)
class PipelineCost:
    """One design's order, priced: per order and per million (tiers applied to the million's totals)."""

    label: str
    calls: ServiceCalls
    invocations: list[Invocation]
    per_order: CostBreakdown
    per_million: CostBreakdown
    source: str

    @classmethod
    def of(cls, label: str, calls: ServiceCalls, invocations: list[Invocation], source: str) -> PipelineCost:
        return cls(label, calls, invocations, cost_per_order(calls), cost_per_million_orders(calls), source)

    def services(self) -> str:
        return ", ".join(f"{s.value} ${c:.2f}" for s, c in sorted(self.per_million.by_service().items()))


@dataclass
class CostPerOrderResult:
    stage: str
    calls: list[RecordedCall]
    billed: ServiceCalls
    breakdown: CostBreakdown
    assumptions: LambdaAssumptions
    memory: dict[str, int] = field(default_factory=dict)
    ours: PipelineCost | None = None
    seed: PipelineCost | None = None

    def pipeline_figures(self) -> list[Figure]:
        if self.ours is None or self.seed is None:
            return []
        ours, seed = self.ours.per_million.total, self.seed.per_million.total
        share = ours / seed
        definition = json.loads(STATE_MACHINE_FILE.read_text())
        standard = cost_per_million_orders(as_workflow(self.ours.calls, our_workflow(definition, STANDARD))).total
        top = sorted(self.ours.per_million.lines, key=lambda line: line.cost, reverse=True)[:3]
        return [
            Figure(
                name="cost per order, whole pipeline (happy path)",
                value=f"${ours / 1_000_000:.8f} (${ours:.2f} per million)",
                baseline=f"seed ${seed:.2f}/M",
                ratio=f"{share:.2f}",
                bar="<= 0.10 of the seed's design",
                holds=share <= Decimal("0.10"),
                note=f"{self.ours.services()}; calls from {self.ours.source}; largest terms: "
                + ", ".join(f"{li.service.value} {li.item} ${li.cost:.2f}/M" for li in top)
                + "; both designs include API Gateway REST requests, X-Ray traces (default sampling rule) and "
                "workflow log ingestion (the seed logs none); the same order on a Standard workflow: "
                + f"${standard:.2f}/M ({standard / seed:.2f} of the seed)",
            ),
            Figure(
                name="cost per order, the seed's design as written",
                value=f"${seed / 1_000_000:.8f} (${seed:.2f} per million)",
                note=f"{self.seed.services()}; itemised below",
            ),
        ]

    def figures(self) -> list[Figure]:
        total = self.breakdown.total
        per_service = ", ".join(f"{s.value} ${c:.8f}" for s, c in sorted(self.breakdown.by_service().items()))
        return [
            *self.pipeline_figures(),
            Figure(
                name="cost per order, POST /orders synchronous calls",
                value=f"${total:.8f} (${total * 1_000_000:.2f} per million)",
                note=(
                    f"{per_service}; first-tier us-east-1 prices, no free tier, {self.stage} stage memory; "
                    "Lambda durations assumed "
                    f"(handler {self.assumptions.api_handler_ms} ms at {self.memory['api_handler']} MB, authorizer "
                    f"{self.assumptions.authorizer_ms} ms at {self.memory['jwt_auth']} MB); the API Gateway request, "
                    "X-Ray trace and log ingestion are in the whole-pipeline figures above"
                ),
            ),
        ]

    def details(self) -> str:
        lines = [
            "### Cost per order: what was counted",
            "",
            "The calls `OrderService.place` made for a two-line order with an `Idempotency-Key`, through the "
            "AWS adapters with recording clients, then priced by `chalicelib.cost.cost_per_order`:",
            "",
            "| service | operation | count | size per call |",
            "|---|---|---:|---:|",
        ]
        lines += [
            f"| {key.service.value} | {key.operation} | {count} | {key.size_bytes} bytes |"
            for key, count in self.billed
            if key.service is not Service.LAMBDA
        ]
        lines += [
            "",
            "| service | item | units | cost |",
            "|---|---|---:|---:|",
            *(f"| {li.service.value} | {li.item} | {li.units} | ${li.cost:.10f} |" for li in self.breakdown.lines),
            "",
            "Not counted here: the API Gateway request, the X-Ray trace and log ingestion (the whole-pipeline "
            "figures below have them), and the authorizer's Secrets Manager read (cached for five minutes "
            "per container).",
        ]
        for design in (self.ours, self.seed):
            if design is not None:
                lines += ["", *_pipeline_details(design)]
        return "\n".join(lines)


def _pipeline_details(design: PipelineCost) -> list[str]:
    return [
        f"### Cost per order, whole pipeline: {design.label}",
        "",
        f"Calls from {design.source}. Lambda invocations (duration assumed, memory as configured):",
        "",
        "| function | invocations | ms each | MB |",
        "|---|---:|---:|---:|",
        *(f"| {i.function} | {i.count:g} | {i.duration_ms} | {i.memory_mb} |" for i in design.invocations),
        "",
        "| service | item | units per order | per order | per million orders |",
        "|---|---|---:|---:|---:|",
        *(
            f"| {one.service.value} | {one.item} | {one.units} | ${one.cost:.8f} | ${million.cost:.2f} |"
            for one, million in zip(design.per_order.lines, design.per_million.lines, strict=True)
        ),
        f"| **total** | | | **${design.per_order.total:.8f}** | **${design.per_million.total:.2f}** |",
    ]


def measure_cost_per_order(
    options: Options, stage: str = "dev", assumptions: LambdaAssumptions | None = None
) -> CostPerOrderResult:
    assumptions = assumptions or LambdaAssumptions()
    settings = Settings.from_env(
        {
            ADAPTERS: ADAPTERS_AWS,
            STAGE: stage,
            ORDER_QUEUE_URL: f"https://sqs.us-east-1.amazonaws.com/123456789012/ecommerce-backend-orders-{stage}",
            NOTIFICATIONS_TOPIC_ARN: f"arn:aws:sns:us-east-1:123456789012:ecommerce-backend-notifications-{stage}",
        }
    )
    container = RecordingContainer(settings, {p.product_id: to_raw(product_item(p)) for p in PRODUCTS})
    request = parse_order_request(
        {
            "items": [
                {"product_id": PRODUCTS[0].product_id, "quantity": 2},
                {"product_id": PRODUCTS[1].product_id, "quantity": 1},
            ],
            "shipping_address": {
                "name": "Ada",
                "line1": "1 Main St",
                "city": "Springfield",
                "postal_code": "12345",
                "country": "US",
            },
            "payment_method": {"type": "card", "token": "tok_success"},
        }
    )
    customer = Principal("3f0c2a9e-8d7b-4c1a-9e2f-5b6d7c8e9f01", "ada@example.com", ("user",))
    container.orders.place(customer, request, CHECKOUT_KEY, "bench-request")
    memory = function_memory(options.project_root, stage)
    billed = billable_calls(container.calls)
    billed.add(Service.LAMBDA, Op.INVOKE, duration_ms=assumptions.api_handler_ms, memory_mb=memory["api_handler"])
    billed.add(Service.LAMBDA, Op.INVOKE, duration_ms=assumptions.authorizer_ms, memory_mb=memory["jwt_auth"])
    # Handed on by the harness when the end-to-end benchmark ran before this one, in the same run.
    measured = options.e2e_calls_per_order
    counted = dict(measured) if measured else MEASURED_CALLS
    source = (
        "the end-to-end run above (local stage call log)"
        if measured
        else "a recorded end-to-end run (`bench.pipeline_cost.MEASURED_CALLS`; run `--only e2e` with it to recount)"
    )
    ours_calls, ours_invocations = our_calls(options.project_root, counted)
    seed, seed_invocations = seed_calls()
    return CostPerOrderResult(
        stage,
        container.calls,
        billed,
        cost_per_order(billed),
        assumptions,
        memory,
        ours=PipelineCost.of("ours", ours_calls, ours_invocations, source),
        seed=PipelineCost.of(
            "the seed's design as written",
            seed,
            seed_invocations,
            "`docs/seed-design.md` read by hand (`bench.pipeline_cost.seed_calls`)",
        ),
    )
