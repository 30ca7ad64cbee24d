"""Cost of one order through the whole pipeline, ours and the seed design's, itemised for ``chalicelib.cost``.

Ours: the AWS calls per order counted on the local stage (``bench/e2e.py``) when that benchmark ran in
the same ``make bench``, else ``MEASURED_CALLS`` (a recorded run, named as such in the report); the
workflow as ``infra.pipeline.WORKFLOW_TYPE`` deploys it (Express: one execution of
``EXPRESS_DURATION_MS``; Standard: the happy path's transitions), and its execution log lines, both
walked from ``statemachine.json``; one invocation per Lambda function the order passes through, at
the memory ``.chalice/config.json`` gives the dev stage and the durations in ``DURATIONS_MS``
(assumed: AWS is not reachable from here); and the log bytes those invocations write (EMF metrics
are log lines, priced as ingestion).

The seed (``docs/seed/architecture-serverless.md``) as written: ``seed_calls`` lists it, and
docs/seed-design.md explains each term. Both designs pay the edge the same way
(``chalicelib.cost.workflow.edge_calls``): one API Gateway REST request and one X-Ray trace per
order at the default sampling rule, at the volume the per-million figure prices.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from chalicelib.cost import Op, Service, ServiceCalls
from chalicelib.cost.workflow import (
    ASSUMED_EXPRESS_DURATION_MS,
    EXPRESS,
    LOG_LINE_BYTES,
    STANDARD,
    WorkflowUsage,
    edge_calls,
    traced_share,
)
from infra.pipeline import WORKFLOW_TYPE

# The watchdog's DeadlineIndex (keys only) replicates two writes of a happy-path order: the deadline's
# arrival at intake and its removal at completion. Other updates change no key, so they stay off it.
# Call counts cannot see index writes, so they are added here; the sweeper's own invocations and
# queries (every 5 minutes: 8,640 a month) are a fixed cents-a-month, not a per-order term.
DEADLINE_INDEX_WRITES = 2
ITEM_BYTES = 1024  # every item and message of an order is under 1 KB (the recorded ones: 184 to 536 bytes)
LOG_BYTES_PER_INVOCATION = 1024  # START/END/REPORT ~300 B, one EMF document ~350 B, a few JSON log lines
SEED_METRIC_CALL_MS = 25  # one synchronous put_metric_data round trip inside the seed's functions
SERVERLESS_DEFAULT_MB = 1024  # the Serverless Framework's default memorySize, for seed functions without one

# What a happy-path order calls (per order), counted on the local stage by `make bench` on 2026-11-27
# at 1.5 orders/s; used only when the end-to-end benchmark did not run in the same invocation.
MEASURED_CALLS: dict[tuple[str, str], float] = {
    ("dynamodb", "BatchGetItem[1]"): 1.0,
    ("dynamodb", "GetItem(ConsistentRead)"): 10.0,
    ("dynamodb", "PutItem"): 1.0,
    ("dynamodb", "TransactWriteItems[2]"): 1.0,
    ("dynamodb", "UpdateItem"): 10.0,  # 9 counted, + the watchdog's deadline at intake (added since)
    ("events", "PutEvents(ecommerce.orders)"): 2.0,
    ("events", "PutEvents(ecommerce.inventory)"): 1.0,
    ("events", "PutEvents(ecommerce.payments)"): 1.0,
    ("lambda", "Invoke"): 7.0,
    ("sns", "Publish"): 4.0,
    ("sqs", "SendMessage"): 1.0,
    ("sqs", "ReceiveMessage"): 7.1,
    ("sqs", "DeleteMessageBatch"): 4.4,
    ("states", "StartExecution"): 1.0,
}


@dataclass(frozen=True)
class Invocation:
    function: str
    count: float
    duration_ms: int
    memory_mb: int


# Assumed warm durations (ms): the API handler waits on six AWS calls, a task on two to four, a consumer on one or two.
DURATIONS_MS = {"api": 100, "authorizer": 15, "task": 50, "consumer": 30}

_BRACKETED = re.compile(r"^(?P<name>[A-Za-z]+)(?:\((?P<qualifier>[^)]*)\))?(?:\[(?P<items>\d+)\])?$")


def parse_operation(operation: str) -> tuple[str, str, int]:
    """``TransactWriteItems[2]`` -> (name, qualifier, items); see ``localstage/call_log.py``.

    >>> parse_operation("PutEvents(ecommerce.orders)")
    ('PutEvents', 'ecommerce.orders', 1)
    """
    found = _BRACKETED.match(operation)
    if not found:
        raise ValueError(f"unreadable operation {operation!r}")
    return found["name"], found["qualifier"] or "", int(found["items"] or 1)


_DYNAMODB = {
    ("GetItem", ""): Op.GET_ITEM,
    ("GetItem", "ConsistentRead"): Op.GET_ITEM_CONSISTENT,
    ("Query", ""): Op.QUERY,
    ("Query", "ConsistentRead"): Op.QUERY_CONSISTENT,
    ("BatchGetItem", ""): Op.BATCH_GET_ITEM,
    ("PutItem", ""): Op.PUT_ITEM,
    ("UpdateItem", ""): Op.UPDATE_ITEM,
    ("DeleteItem", ""): Op.DELETE_ITEM,
    ("BatchWriteItem", ""): Op.BATCH_WRITE_ITEM,
    ("TransactWriteItems", ""): Op.TRANSACT_WRITE_ITEM,
}
_SQS = {
    "SendMessage": Op.SEND_MESSAGE,
    "SendMessageBatch": Op.SEND_MESSAGE_BATCH,
    "ReceiveMessage": Op.RECEIVE_MESSAGE,
    "DeleteMessage": Op.DELETE_MESSAGE,
    "DeleteMessageBatch": Op.DELETE_MESSAGE_BATCH,
    "ChangeMessageVisibility": Op.CHANGE_MESSAGE_VISIBILITY,
}
# Calls with no charge of their own: StartExecution is billed as transitions, Invoke as the invocation.
_UNBILLED = {("states", "StartExecution"), ("lambda", "Invoke")}


def billable_from_counts(counts: Mapping[tuple[str, str], float]) -> ServiceCalls:
    """Counted calls per order as priced operations (items of ``ITEM_BYTES``); ``ValueError`` if unknown."""
    billed = ServiceCalls()
    for (service, operation), count in sorted(counts.items()):
        name, qualifier, items = parse_operation(operation)
        amount = Decimal(str(round(count, 4)))
        if (service, name) in _UNBILLED:
            continue
        if service == "dynamodb" and (name, qualifier) in _DYNAMODB:
            per_item = name in ("BatchGetItem", "BatchWriteItem", "TransactWriteItems")
            billed.add(
                Service.DYNAMODB,
                _DYNAMODB[(name, qualifier)],
                amount * (items if per_item else 1),
                size_bytes=ITEM_BYTES,
            )
        elif service == "sqs" and name in _SQS:
            billed.add(Service.SQS, _SQS[name], amount, size_bytes=ITEM_BYTES)
        elif service == "sns" and name == "Publish":
            billed.add(Service.SNS, Op.PUBLISH, amount, size_bytes=ITEM_BYTES)
        elif service == "secretsmanager" and name == "GetSecretValue":
            billed.add(Service.SECRETS_MANAGER, Op.GET_SECRET_VALUE, amount)
        elif service == "events" and name == "PutEvents":
            billed.add(Service.EVENTBRIDGE, Op.PUT_EVENTS_ENTRY, amount * items, size_bytes=ITEM_BYTES)
        else:
            raise ValueError(f"no billable mapping for {service} {operation}")
    return billed


def happy_path_states(definition: Mapping[str, Any], choose: Mapping[str, str]) -> list[str]:
    """The states a successful execution enters, in order (each is one standard-workflow transition).

    ``choose`` names the branch each Choice state takes; a Parallel state enters itself and every
    state of each branch.
    """
    states = definition["States"]
    path: list[str] = []
    name: str | None = definition["StartAt"]
    while name is not None:
        state = states[name]
        path.append(name)
        if state["Type"] == "Parallel":
            for branch in state["Branches"]:
                path += happy_path_states(branch, choose)
        if state["Type"] == "Choice":
            name = choose[name]
        elif state.get("End") or state["Type"] in ("Succeed", "Fail"):
            name = None
        else:
            name = state["Next"]
    return path


def execution_log_lines(definition: Mapping[str, Any], choose: Mapping[str, str]) -> int:
    """The lines a level-``ALL`` execution log holds for the happy path: what the log group ingests.

    Started and succeeded for the execution; entered and exited for each state; scheduled, started
    and succeeded for each Lambda task; started and succeeded for a Parallel.
    """
    states = dict(definition["States"])
    for state in definition["States"].values():
        for branch in state.get("Branches", []):
            states.update(branch["States"])
    lines = 2
    for name in happy_path_states(definition, choose):
        kind = states[name]["Type"]
        lines += 2 + (3 if kind == "Task" else 0) + (2 if kind == "Parallel" else 0)
    return lines


def stage_memory(project_root: Path, stage: str = "dev") -> tuple[int, dict[str, int]]:
    """(the stage's default memory, per-function overrides) from ``.chalice/config.json``."""
    config = json.loads((project_root / ".chalice" / "config.json").read_text())
    staged = config["stages"][stage]
    default = int(staged.get("lambda_memory_size", config.get("lambda_memory_size", 128)))
    overrides = {
        name: int(values["lambda_memory_size"])
        for name, values in staged.get("lambda_functions", {}).items()
        if "lambda_memory_size" in values
    }
    return default, overrides


def our_invocations(project_root: Path, task_invokes: float, publishes: float, events: float) -> list[Invocation]:
    """Each Lambda invocation of one happy-path order (batches of one: the low-rate, worst case).

    Express workflows emit no status change events, so ``handle_workflow_event`` runs only for Standard.
    """
    default, memory = stage_memory(project_root)
    d = DURATIONS_MS
    monitor = (
        []
        if WORKFLOW_TYPE == EXPRESS
        else [Invocation("handle_workflow_event", 1, d["consumer"], memory.get("handle_workflow_event", default))]
    )
    return [
        *monitor,
        Invocation("api_handler (POST /orders)", 1, d["api"], memory.get("api_handler", default)),
        Invocation("jwt_auth (uncached)", 1, d["authorizer"], memory.get("jwt_auth", default)),
        Invocation("process_order (SQS consumer)", 1, d["consumer"], memory.get("process_order", default)),
        Invocation("workflow tasks", task_invokes, d["task"], default),
        Invocation("send_notification (SNS)", publishes, d["consumer"], memory.get("send_notification", default)),
        Invocation("route_notification_events (bus -> SQS)", events, d["consumer"], default),
    ]


def add_invocations(calls: ServiceCalls, invocations: list[Invocation], extra_ms: int = 0) -> ServiceCalls:
    for invocation in invocations:
        calls.add(
            Service.LAMBDA,
            Op.INVOKE,
            Decimal(str(invocation.count)),
            duration_ms=invocation.duration_ms + extra_ms,
            memory_mb=invocation.memory_mb,
        )
    total = sum(Decimal(str(i.count)) for i in invocations)
    calls.add(Service.CLOUDWATCH, Op.INGEST_LOGS, total, size_bytes=LOG_BYTES_PER_INVOCATION)
    return calls


HAPPY_PATH = {"StartOrResume": "ValidateOrder", "PaymentChoice": "FulfillOrder"}
EXPRESS_DURATION_MS = ASSUMED_EXPRESS_DURATION_MS  # assumed (chalicelib/cost/workflow.py says why)
PRICED_VOLUME = 1_000_000  # orders a month: the per-million figure's volume, which sets the X-Ray share


def our_workflow(definition: Mapping[str, Any], workflow_type: str = WORKFLOW_TYPE) -> WorkflowUsage:
    """Our happy path's workflow, as deployed: its type, duration or transitions, and execution log lines."""
    lines = Decimal(execution_log_lines(definition, HAPPY_PATH))
    if workflow_type == EXPRESS:
        return WorkflowUsage(EXPRESS, duration_ms=Decimal(EXPRESS_DURATION_MS), log_lines=lines)
    return WorkflowUsage(STANDARD, transitions=Decimal(len(happy_path_states(definition, HAPPY_PATH))), log_lines=lines)


def edge() -> ServiceCalls:
    return edge_calls(traced_share(PRICED_VOLUME))


def our_calls(project_root: Path, counted: Mapping[tuple[str, str], float]) -> tuple[ServiceCalls, list[Invocation]]:
    definition = json.loads((project_root / "statemachine.json").read_text())
    calls = billable_from_counts(counted) + our_workflow(definition).calls() + edge()
    calls.add(Service.DYNAMODB, Op.PUT_ITEM, DEADLINE_INDEX_WRITES, size_bytes=ITEM_BYTES)
    task_invokes = counted.get(("lambda", "Invoke"), 0.0)
    publishes = sum(c for (s, o), c in counted.items() if s == "sns" and o.startswith("Publish"))
    events = sum(
        c * parse_operation(o)[2] for (s, o), c in counted.items() if s == "events" and o.startswith("PutEvents")
    )
    invocations = our_invocations(project_root, task_invokes, publishes, events)
    return add_invocations(calls, invocations), invocations


# -- the seed's design, as written -------------------------------------------------------------------

SEED_TRANSITIONS = (
    9  # ValidateOrder, CheckInventory, ProcessPayment, PaymentChoice, FulfillOrder + 3 branches, OrderCompleted
)
SEED_SQS_HOPS = 6  # the processing queue, then EventBridge -> SQS for inventory, payment and 3 notifications


def seed_invocations() -> list[Invocation]:
    """The seed's functions one order runs, each under ``monitor_performance``."""
    d = DURATIONS_MS
    return [
        Invocation("processOrder (POST /orders, 512 MB)", 1, d["api"], 512),
        Invocation("verify_token (authorizer, uncached)", 1, d["authorizer"], SERVERLESS_DEFAULT_MB),
        Invocation("enhanced_order_processor (SQS)", 1, d["consumer"], SERVERLESS_DEFAULT_MB),
        Invocation("workflow tasks (6 Task states)", 6, d["task"], SERVERLESS_DEFAULT_MB),
        Invocation("handle_workflow_event", 1, d["consumer"], SERVERLESS_DEFAULT_MB),
        Invocation("order_service_events", 1, d["consumer"], SERVERLESS_DEFAULT_MB),
        Invocation("inventory_service_events", 1, d["consumer"], SERVERLESS_DEFAULT_MB),
        Invocation("payment_service_events", 1, d["consumer"], SERVERLESS_DEFAULT_MB),
        Invocation("notification_service_handler (3 event types)", 3, d["consumer"], SERVERLESS_DEFAULT_MB),
    ]


def seed_calls() -> tuple[ServiceCalls, list[Invocation]]:
    """The seed's order, itemised: both the workflow and the EventBridge choreography, as it shows both."""
    invocations = seed_invocations()
    runs = sum(Decimal(str(i.count)) for i in invocations)
    # The seed's Standard workflow sets no LoggingConfiguration: its execution logs cost nothing.
    calls = WorkflowUsage(STANDARD, transitions=Decimal(SEED_TRANSITIONS), log_lines=Decimal(0)).calls() + edge()
    # monitor_performance: FunctionExecutionTime + FunctionSuccess on every invocation; the enhanced
    # processor adds OrdersProcessed and OrderValue. Each put_metric_data is a synchronous call.
    calls.add(Service.CLOUDWATCH, Op.PUT_METRIC_DATA, 2 * runs + 2)
    calls.add(Service.DYNAMODB, Op.PUT_ITEM, 1, size_bytes=ITEM_BYTES)  # the order; no idempotency record
    calls.add(Service.SQS, Op.SEND_MESSAGE, SEED_SQS_HOPS, size_bytes=ITEM_BYTES)
    calls.add(Service.SQS, Op.RECEIVE_MESSAGE, SEED_SQS_HOPS, size_bytes=ITEM_BYTES)
    calls.add(Service.SQS, Op.DELETE_MESSAGE, SEED_SQS_HOPS, size_bytes=ITEM_BYTES)
    calls.add(Service.SNS, Op.PUBLISH, 1, size_bytes=ITEM_BYTES)  # the order confirmation
    calls.add(Service.EVENTBRIDGE, Op.PUT_EVENTS_ENTRY, 3, size_bytes=ITEM_BYTES)  # Order Created, Reserved, Paid
    return add_invocations(calls, invocations, extra_ms=2 * SEED_METRIC_CALL_MS), invocations


def as_workflow(calls: ServiceCalls, usage: WorkflowUsage) -> ServiceCalls:
    """The same order with another workflow: its Step Functions terms and execution log lines replaced.

    Used to show what the workflow type is worth (the Express order priced as a Standard one).
    """
    swapped = ServiceCalls()
    for key, count in calls:
        if key.service is Service.STEP_FUNCTIONS or (
            key.operation == Op.INGEST_LOGS and key.size_bytes == LOG_LINE_BYTES
        ):
            continue
        swapped.add_key(key, count)
    return swapped + usage.calls()
