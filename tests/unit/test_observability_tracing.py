"""Tracing as the app wires it: off, without the SDK packaged, with a recorder, without a parent
segment, and with the real SDK but no daemon; none of these may crash an invocation.

Logs, metrics and the correlation id's journey are in test_observability_wiring.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from chalicelib.bootstrap import Container
from chalicelib.domain.orders import parse_order_request
from chalicelib.observability import tracing
from tests.pipeline_helpers import BUYER, order_body

pytestmark = pytest.mark.unit


# -- tracing ------------------------------------------------------------------------------------------


class FakeSubsegment:
    def __init__(self) -> None:
        self.annotations: dict[str, Any] = {}
        self.metadata: dict[str, Any] = {}

    def put_annotation(self, key: str, value: Any) -> None:
        self.annotations[key] = value

    def put_metadata(self, key: str, value: Any, namespace: str) -> None:
        self.metadata[key] = value


class FakeRecorder:
    def __init__(self, segment: FakeSubsegment | None) -> None:
        self.segment = segment
        self.names: list[str] = []

    @contextmanager
    def in_subsegment(self, name: str) -> Iterator[FakeSubsegment | None]:
        self.names.append(name)
        yield self.segment


@pytest.fixture
def fresh_tracing() -> Iterator[None]:
    tracing.reset()
    yield
    tracing.reset()


def test_given_tracing_off_when_tracing_a_block_then_it_just_runs(
    fresh_tracing: None, caplog: pytest.LogCaptureFixture
) -> None:
    assert tracing.configure(enabled=False, recorder=FakeRecorder(FakeSubsegment())) is False
    with tracing.subsegment("order_validation", {"order_id": "ord_1"}):
        ran = True
    assert ran and not caplog.records


def test_given_no_sdk_packaged_when_enabled_then_a_silent_no_op(
    fresh_tracing: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "aws_xray_sdk", None)  # import fails as if not packaged
    monkeypatch.setitem(sys.modules, "aws_xray_sdk.core", None)
    caplog.set_level(logging.INFO)
    assert tracing.configure(enabled=True) is False
    with tracing.subsegment("x"):
        pass
    assert not caplog.records


def test_given_a_recorder_when_tracing_the_order_path_then_the_seeds_annotations_and_metadata(
    fresh_tracing: None, memory_container: Container
) -> None:
    segment = FakeSubsegment()
    recorder = FakeRecorder(segment)
    assert tracing.configure(enabled=True, recorder=recorder) is True
    order = memory_container.orders.place(BUYER, parse_order_request(order_body(memory_container))).order
    memory_container.order_intake.start(order.order_id)
    memory_container.workflow_steps.validate(order.order_id)
    assert recorder.names == ["order_processing", "order_validation"]
    assert segment.annotations == {"order_id": order.order_id, "order_total": float(order.total_amount)}
    assert segment.metadata["customer_id"] == BUYER.user_id


def test_given_no_parent_segment_when_tracing_then_no_crash(fresh_tracing: None) -> None:
    tracing.configure(enabled=True, recorder=FakeRecorder(None))  # the SDK yields None when context is missing
    with tracing.subsegment("x", {"order_id": "ord_1"}, {"customer_id": "u"}):
        pass


def test_given_the_real_sdk_without_a_daemon_when_tracing_then_no_crash_and_no_error_logged(
    fresh_tracing: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("aws_xray_sdk")
    monkeypatch.setenv("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR")  # as Lambda sets it
    caplog.set_level(logging.DEBUG)
    assert tracing.configure(enabled=True) is True
    with tracing.subsegment("order_validation", {"order_id": "ord_1"}):
        pass
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
