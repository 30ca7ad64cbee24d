"""The embedded AWS's call log (``localstage/call_log.py``), read in windows and attributed to orders.

The log holds every call the stage's AWS served: the app's, the stage's own machinery's and the
benchmark's. Per order means the calls of the load window, less what the stage does when idle
(its pollers, at the rate measured before the load), less the benchmark's own status polls (their
calls measured after the load), divided by the orders completed. Calls the stage makes only to
emulate AWS (Step Functions status events, which AWS emits itself and does not bill) are kept
apart, so the per-order figure is what a deployment would make.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

CallCounts = Counter[tuple[str, str]]  # (service, operation) -> calls

# (service, operation) the stage makes to emulate what AWS does by itself (localstage/sfn_events.py).
EMULATION: frozenset[tuple[str, str]] = frozenset(
    {
        ("states", "ListStateMachines"),
        ("states", "ListExecutions"),
        ("states", "DescribeExecution"),
        ("events", "PutEvents(aws.states)"),
        # Lambda's log delivery and CloudWatch Logs' EMF extraction (localstage/telemetry.py): on AWS these
        # are not API calls but log bytes, priced as ingestion. The app itself never calls either. The
        # stage now writes the events and the metrics into moto's backends (localstage/telemetry_direct.py),
        # and the X-Ray daemon its batches (xray_moto.BackendXRay), so only the creations reach the log.
        ("logs", "CreateLogGroup"),
        ("logs", "CreateLogStream"),
        ("logs", "PutLogEvents"),
        ("monitoring", "PutMetricData"),
        # The X-Ray daemon's batches (localstage/xray.py): on AWS Lambda's daemon sends them, priced per
        # trace recorded (the cost model's X-Ray line), not per call.
        ("xray", "POST /TraceSegments"),
        # A function's role credentials: on Lambda the service assumes the role and hands the function
        # its credentials (unbilled); the stage's emulator does it through STS (localstage/iam).
        ("sts", "AssumeRole"),
    }
)


def parse_lines(lines: Iterable[str]) -> CallCounts:
    """``service operation`` lines as counts; blank lines are skipped, an operation may hold spaces."""
    counts: CallCounts = Counter()
    for line in lines:
        service, _, operation = line.strip().partition(" ")
        if service:
            counts[(service, operation or "?")] += 1
    return counts


@dataclass
class CallLogReader:
    """Reads the calls appended to the log since the last ``mark``."""

    path: Path
    _offset: int = 0

    def mark(self) -> None:
        self._offset = self.path.stat().st_size if self.path.exists() else 0

    def since_mark(self) -> CallCounts:
        if not self.path.exists():
            return Counter()
        with self.path.open("rb") as log:
            log.seek(self._offset)
            data = log.read()
        end = data.rfind(b"\n") + 1  # a line still being written belongs to the next window
        self._offset += end
        return parse_lines(data[:end].decode("utf-8", "replace").splitlines())


def scaled(counts: Mapping[tuple[str, str], float], factor: float) -> dict[tuple[str, str], float]:
    return {key: value * factor for key, value in counts.items()}


def per_order(
    window: Mapping[tuple[str, str], float],
    orders: int,
    idle: Mapping[tuple[str, str], float] | None = None,
    polls: Mapping[tuple[str, str], float] | None = None,
) -> dict[tuple[str, str], float]:
    """Calls per order: ``(window - idle - polls) / orders`` per operation, never below zero.

    ``idle`` is the background expected over the window (rate x duration), ``polls`` the calls of
    the benchmark's own status checks; both as counts for the whole window.

    >>> per_order({("sqs", "SendMessage"): 10, ("sqs", "ReceiveMessage"): 14}, 10, idle={("sqs", "ReceiveMessage"): 4})
    {('sqs', 'SendMessage'): 1.0, ('sqs', 'ReceiveMessage'): 1.0}
    """
    if orders <= 0:
        raise ValueError("no completed orders to attribute calls to")
    idle, polls = idle or {}, polls or {}
    result = {}
    for key, count in window.items():
        net = count - idle.get(key, 0.0) - polls.get(key, 0.0)
        if net > 0:
            result[key] = net / orders
    return result


def split_emulation(
    counts: Mapping[tuple[str, str], float],
) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    """(what a deployment would call, what only the stage's emulation of AWS calls)."""
    app = {k: v for k, v in counts.items() if k not in EMULATION}
    emulation = {k: v for k, v in counts.items() if k in EMULATION}
    return app, emulation


def by_service(counts: Mapping[tuple[str, str], float]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for (service, _), count in counts.items():
        totals[service] = totals.get(service, 0.0) + count
    return dict(sorted(totals.items()))
