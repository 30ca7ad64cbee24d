"""What one order pays for its workflow and at the edge, in both workflow types: one model for every figure.

The cost benchmark (``bench/pipeline_cost.py``), the cost-analysis runbook (``runbooks/costs.py``) and
the workflow-inspection runbook (``runbooks/workflow.py``) price a workflow through ``WorkflowUsage``:

- **Standard**: every state transition ($25 per million), retries included;
- **Express**: one request per execution ($1 per million) and its duration, billed in 100 ms steps
  at the memory the execution uses, in 64 MB steps (64 MB at least; an order's state is a few KB);
- **execution logs** either way: the lines the log level writes, as CloudWatch Logs ingestion.

``edge_calls`` adds what every order pays before any of that: its API Gateway REST request and its
X-Ray trace, sampled by the deployed rule. No stage deploys a rule of its own, so the account's
default applies: the first request each second, then 5 % of the rest (``traced_share``).

>>> express = WorkflowUsage(EXPRESS, duration_ms=Decimal(450))
>>> express.calls().count(Service.STEP_FUNCTIONS)
Decimal('1')
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from chalicelib.cost.calls import Op, Service, ServiceCalls

STANDARD = "STANDARD"
EXPRESS = "EXPRESS"
EXPRESS_MIN_MEMORY_MB = 64
# One execution log line (ALL, without execution data): ids, timestamp, type, the execution ARN
# (~140 bytes), a state or function name; measured on the local stage at 190 to 330 bytes.
LOG_LINE_BYTES = 300
# Assumed Express duration of an order's execution when none is measured: validate, hold, charge, the
# longest fulfilment branch and complete, ~50 ms each in sequence, plus the hand-offs (billed per 100 ms).
ASSUMED_EXPRESS_DURATION_MS = 500
SECONDS_PER_MONTH = 30 * 24 * 3600
DEFAULT_RESERVOIR_PER_SECOND = 1
DEFAULT_FIXED_RATE = Decimal("0.05")


@dataclass(frozen=True)
class WorkflowUsage:
    """One order's workflow: its type, executions, transitions (Standard), duration (Express), log lines."""

    type: str
    executions: Decimal = Decimal(1)
    transitions: Decimal = Decimal(0)
    duration_ms: Decimal = Decimal(0)  # per execution
    memory_mb: int = EXPRESS_MIN_MEMORY_MB
    log_lines: Decimal = Decimal(0)
    log_line_bytes: int = LOG_LINE_BYTES

    def calls(self) -> ServiceCalls:
        calls = ServiceCalls()
        if self.type == EXPRESS:
            memory = max(self.memory_mb, EXPRESS_MIN_MEMORY_MB)
            calls.add(
                Service.STEP_FUNCTIONS,
                Op.EXPRESS_EXECUTION,
                self.executions,
                duration_ms=self.duration_ms,
                memory_mb=memory,
            )
        elif self.type == STANDARD:
            calls.add(Service.STEP_FUNCTIONS, Op.STATE_TRANSITION, self.transitions)
        else:
            raise ValueError(f"unknown workflow type {self.type!r}")
        if self.log_lines:
            calls.add(Service.CLOUDWATCH, Op.INGEST_LOGS, self.log_lines, size_bytes=self.log_line_bytes)
        return calls


def traced_share(
    orders_per_month: int,
    reservoir_per_second: int = DEFAULT_RESERVOIR_PER_SECOND,
    fixed_rate: Decimal = DEFAULT_FIXED_RATE,
) -> Decimal:
    """The share of orders X-Ray records under a sampling rule, at a steady monthly volume.

    The reservoir takes up to ``reservoir_per_second`` each second; the fixed rate samples the rest.

    >>> traced_share(1_000_000)  # 0.39 orders per second: the reservoir takes every one
    Decimal('1')
    >>> round(traced_share(100_000_000), 3)  # 38.6 per second: 1 of them, then 5 % of the other 37.6
    Decimal('0.075')
    """
    if orders_per_month <= 0:
        return Decimal(0)
    reservoir = min(Decimal(orders_per_month), Decimal(reservoir_per_second * SECONDS_PER_MONTH))
    rest = Decimal(orders_per_month) - reservoir
    return (reservoir + rest * fixed_rate) / Decimal(orders_per_month)


def edge_calls(traced: Decimal, api_requests: Decimal = Decimal(1)) -> ServiceCalls:
    """The REST API request that brings an order in, and its X-Ray trace (``traced`` of one)."""
    calls = ServiceCalls().add(Service.API_GATEWAY, Op.REST_API_REQUEST, api_requests)
    return calls.add(Service.XRAY, Op.TRACE_RECORDED, traced)
