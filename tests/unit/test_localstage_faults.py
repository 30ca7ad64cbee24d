"""The local stage's fault switch: parsed strictly, drawn reproducibly, applied as Lambda would fail."""

from __future__ import annotations

from typing import Any

import pytest

from localstage.faults import FaultConfigError, FaultInjector, FaultMode, FaultPlan
from localstage.functions import FunctionSpec
from localstage.lambdas import LambdaEmulator
from tests.unit.localstage_fakes import quiet_emulator

pytestmark = pytest.mark.unit

CALLS: list[Any] = []


def record(event: Any, context: Any) -> dict[str, Any]:
    CALLS.append(event)
    return {"ok": True}


def _emulator(plan: FaultPlan) -> LambdaEmulator:
    emulator = quiet_emulator(faults=plan)
    emulator.register(FunctionSpec("app-local-charge", "charge", record, "app.charge", timeout_s=5))
    return emulator


def test_given_no_switch_then_nothing_is_injected() -> None:
    plan = FaultPlan.from_env({})
    assert not plan.enabled and FaultInjector(plan).draw("f", "h") is None


@pytest.mark.parametrize(
    "env", [{"LOCAL_FAULT_RATE": "1.5"}, {"LOCAL_FAULT_RATE": "x"}, {"LOCAL_FAULT_MODE": "explode"}]
)
def test_given_a_malformed_switch_then_the_stage_refuses_it(env: dict[str, str]) -> None:
    with pytest.raises(FaultConfigError):
        FaultPlan.from_env(env)


def test_given_a_seed_and_a_rate_then_draws_are_reproducible_and_near_the_rate() -> None:
    env = {"LOCAL_FAULT_RATE": "0.3", "LOCAL_FAULT_SEED": "7", "LOCAL_FAULT_FUNCTIONS": "charge, other"}
    first, second = FaultInjector(FaultPlan.from_env(env)), FaultInjector(FaultPlan.from_env(env))
    draws = [first.draw("app-local-charge", "charge") for _ in range(1000)]
    assert draws == [second.draw("app-local-charge", "charge") for _ in range(1000)]
    assert 250 <= sum(d is not None for d in draws) <= 350
    assert first.draw("app-local-refund", "refund") is None  # not a chosen function


def test_given_error_mode_when_invoked_then_the_handler_never_runs_and_the_error_is_reported() -> None:
    CALLS.clear()
    result = _emulator(FaultPlan(rate=1.0, mode=FaultMode.ERROR)).invoke("app-local-charge", {"n": 1})
    assert result.function_error == "Unhandled" and result.json()["errorType"] == "InjectedFault"
    assert CALLS == []


def test_given_timeout_mode_when_invoked_then_the_handler_ran_but_the_caller_sees_a_timeout() -> None:
    CALLS.clear()
    emulator = _emulator(FaultPlan(rate=1.0, mode=FaultMode.TIMEOUT, functions=frozenset({"app-local-charge"})))
    result = emulator.invoke("app-local-charge", {"n": 1})
    assert result.function_error == "Unhandled" and result.json()["errorType"] == "Sandbox.Timedout"
    assert CALLS == [{"n": 1}]  # its side effects stand
    assert emulator.faults.injected == {"app-local-charge": 1}


def test_given_a_response_over_lambdas_quota_then_the_invocation_fails_as_lambda_reports_it() -> None:
    emulator = quiet_emulator()
    emulator.register(FunctionSpec("app-local-big", "big", lambda event, context: "x" * 6_300_000, "app.big"))
    # WHEN a handler answers more than 6,291,556 bytes
    result = emulator.invoke("app-local-big", {})
    # THEN Lambda drops the answer and reports Function.ResponseSizeTooLarge instead
    assert result.function_error == "Unhandled"
    assert result.json()["errorType"] == "Function.ResponseSizeTooLarge"
