"""A fault switch for the Lambda emulator: handlers fail, or time out, at a chosen rate.

It exists to show that the pipeline keeps its promises when Lambda misbehaves (every
accepted order ends ``COMPLETED``, ``FAILED`` with a reason, or in a dead-letter queue
with a reason; nothing is charged twice). Off unless ``LOCAL_FAULT_RATE`` is set:

- ``LOCAL_FAULT_RATE``: the probability (0..1) that an invocation of a chosen function fails;
- ``LOCAL_FAULT_FUNCTIONS``: comma-separated handler names (``process_payment``) or deployed
  names (``ecommerce-backend-local-process_payment``), or ``*`` for every function (default);
- ``LOCAL_FAULT_MODE``: ``error`` (the invocation fails with ``InjectedFault`` before the
  handler runs: a crash, nothing done) or ``timeout`` (the handler runs to the end, then the
  invocation is reported as ``Sandbox.Timedout``: its side effects happened but the caller
  sees a failure and retries, the harder case);
- ``LOCAL_FAULT_SEED``: seeds the draws. The draws are then reproducible, though which
  invocation gets which draw still depends on thread timing.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

RATE = "LOCAL_FAULT_RATE"
FUNCTIONS = "LOCAL_FAULT_FUNCTIONS"
MODE = "LOCAL_FAULT_MODE"
SEED = "LOCAL_FAULT_SEED"


class FaultMode(StrEnum):
    ERROR = "error"
    TIMEOUT = "timeout"


class FaultConfigError(ValueError):
    """A ``LOCAL_FAULT_*`` variable is malformed; the stage refuses to start rather than guess."""


class InjectedFault(Exception):
    """What an ``error`` fault raises in place of the handler; its name is the reported ``errorType``."""


@dataclass(frozen=True)
class FaultPlan:
    rate: float = 0.0
    functions: frozenset[str] = frozenset({"*"})
    mode: FaultMode = FaultMode.ERROR
    seed: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FaultPlan:
        try:
            rate = float(env.get(RATE) or 0)
            mode = FaultMode(env.get(MODE) or FaultMode.ERROR)
            seed = int(env[SEED]) if env.get(SEED) else None
        except ValueError as exc:
            raise FaultConfigError(f"bad fault switch: {exc}") from exc
        if not 0 <= rate <= 1:
            raise FaultConfigError(f"{RATE} must be between 0 and 1, got {rate}")
        names = frozenset(n.strip() for n in (env.get(FUNCTIONS) or "*").split(",") if n.strip())
        return cls(rate, names or frozenset({"*"}), mode, seed)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def covers(self, function_name: str, handler_name: str) -> bool:
        return "*" in self.functions or function_name in self.functions or handler_name in self.functions


class FaultInjector:
    """Draws, per invocation, whether it fails; thread-safe, as invocations run on many threads."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._random = random.Random(plan.seed)  # noqa: S311 - fault injection, not cryptography  # nosec B311
        self._lock = threading.Lock()
        self.injected: dict[str, int] = {}

    def draw(self, function_name: str, handler_name: str) -> FaultMode | None:
        """The fault to inject into this invocation, or ``None``."""
        if not self.plan.enabled or not self.plan.covers(function_name, handler_name):
            return None
        with self._lock:
            if self._random.random() >= self.plan.rate:
                return None
            self.injected[function_name] = self.injected.get(function_name, 0) + 1
        return self.plan.mode
