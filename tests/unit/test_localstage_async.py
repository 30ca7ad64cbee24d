"""Lambda's asynchronous invocation on the local stage (localstage/async_invoke.py): the event as sent."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from localstage.async_invoke import AsyncInvocations
from localstage.functions import FunctionSpec
from localstage.lambdas import LambdaEmulator
from tests.unit.localstage_fakes import quiet_emulator

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("payload", [b'"abc"', '"abc"', b"[1, 2]", b'{"a": "1"}', b"3"])
def test_given_any_json_payload_when_invoked_asynchronously_then_the_handler_gets_it_as_sent(payload: Any) -> None:
    received: list[Any] = []
    done = threading.Event()

    def handler(event: Any, context: Any) -> None:
        received.append(event)
        done.set()

    emulator = quiet_emulator()
    emulator.register(FunctionSpec("app-local-echo", "echo", handler, "app.echo"))
    AsyncInvocations(emulator, delays=(0.01,)).submit("app-local-echo", payload)
    assert done.wait(5), "the event was never delivered"
    assert received == [LambdaEmulator.decode_payload(payload)]


def test_given_deliveries_one_after_another_then_they_run_on_a_kept_thread() -> None:
    from localstage import async_invoke

    delivered = threading.Semaphore(0)
    emulator = quiet_emulator()
    emulator.register(FunctionSpec("app-local-echo", "echo", lambda event, context: delivered.release(), "app.echo"))
    invocations = AsyncInvocations(emulator, delays=(0.01,))

    def idle_again() -> None:  # the delivery's thread is idle once the invocation has been recorded
        deadline = time.monotonic() + 5
        while not async_invoke._DELIVERIES._idle:
            assert time.monotonic() < deadline, "no delivery thread came back"
            time.sleep(0.005)

    invocations.submit("app-local-echo", b"1")
    assert delivered.acquire(timeout=5)
    idle_again()
    started = async_invoke._DELIVERIES.started
    for n in range(3):
        invocations.submit("app-local-echo", str(n).encode())
        assert delivered.acquire(timeout=5)
        idle_again()
    assert async_invoke._DELIVERIES.started == started  # no thread started per event
