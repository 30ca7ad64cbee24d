"""The local stage's X-Ray pieces on their own: headers, the daemon's forwarding, the services' segments."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import pytest

from localstage.patches import Patches
from localstage.xray import (
    ServiceTracing,
    XRayDaemon,
    child_header,
    current_header,
    handing_on,
    install_sdk_context,
    invocation_header,
    parse_header,
    upstream_header,
)
from localstage.xray_moto import UnsupportedFilterError, parse_filter

pytestmark = pytest.mark.unit

ROOT = "1-6b09a244-ba00fe1e95e47d45798b2aa2"


class FakeXRay:
    """PutTraceSegments as the embedded AWS answers it; rejects documents whose id is "bad"."""

    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []

    def put_trace_segments(self, TraceSegmentDocuments: list[str]) -> dict[str, Any]:
        parsed = [json.loads(doc) for doc in TraceSegmentDocuments]
        self.documents += [doc for doc in parsed if doc["id"] != "bad"]
        return {"UnprocessedTraceSegments": [{"Id": "bad", "Message": "no"} for doc in parsed if doc["id"] == "bad"]}


def test_given_a_sampled_header_when_parsed_then_root_and_parent_are_kept() -> None:
    header = parse_header(child_header(ROOT, "53995c3f42cd8ad8"))
    assert header is not None
    assert (header.root, header.parent, header.sampled) == (ROOT, "53995c3f42cd8ad8", 1)


@pytest.mark.parametrize("value", [None, "", "garbage", f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=0"])
def test_given_no_usable_header_when_parsed_then_none_so_a_new_trace_starts(value: str | None) -> None:
    assert parse_header(value) is None


def test_given_a_header_set_on_one_thread_then_another_thread_does_not_see_it() -> None:
    seen: list[str | None] = []
    with invocation_header("Root=a;Parent=b;Sampled=1"), handing_on("Root=c;Parent=d;Sampled=1"):
        worker = threading.Thread(target=lambda: seen.extend([current_header(), upstream_header()]))
        worker.start()
        worker.join()
        assert (current_header(), upstream_header()) == ("Root=a;Parent=b;Sampled=1", "Root=c;Parent=d;Sampled=1")
    assert seen == [None, None]
    assert (current_header(), upstream_header()) == (None, None)


def test_given_an_upstream_header_when_a_lambda_span_begins_then_it_continues_that_trace() -> None:
    tracing = ServiceTracing(XRayDaemon(FakeXRay()), "us-east-1", "123456789012")
    span = tracing.begin_lambda(child_header(ROOT, "aaaaaaaaaaaaaaaa"))
    assert span.service.trace_id == ROOT and span.service.parent_id == "aaaaaaaaaaaaaaaa"
    assert span.function.parent_id == span.service.segment_id
    assert span.header == f"Root={ROOT};Parent={span.function.segment_id};Sampled=1"


def test_given_no_upstream_when_a_span_begins_then_a_new_trace_id_in_xray_format() -> None:
    span = ServiceTracing.begin(None)
    version, epoch, unique = span.trace_id.split("-")
    assert version == "1" and abs(int(epoch, 16) - time.time()) < 5 and len(unique) == 24
    assert span.parent_id is None and len(span.segment_id) == 16


def test_given_a_failed_invocation_when_it_ends_then_both_lambda_segments_are_sent_as_faults() -> None:
    xray = FakeXRay()
    daemon = XRayDaemon(xray)
    tracing = ServiceTracing(daemon, "us-east-1", "123456789012")
    span = tracing.begin_lambda(None)
    tracing.end_lambda(span, "fn", "req-1", failed=True)
    daemon.flush()
    service, function = xray.documents
    assert (service["origin"], function["origin"]) == ("AWS::Lambda", "AWS::Lambda::Function")
    assert function["parent_id"] == service["id"] and "parent_id" not in service
    assert service["fault"] is True and function["fault"] is True
    assert service["aws"]["request_id"] == "req-1"
    assert function["aws"]["function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:fn"
    assert service["end_time"] >= service["start_time"]


def test_given_an_execution_when_started_twice_then_its_tasks_keep_the_first_header_and_one_segment_is_sent() -> None:
    xray = FakeXRay()
    daemon = XRayDaemon(xray)
    tracing = ServiceTracing(daemon, "us-east-1", "123456789012")
    arn = "arn:aws:states:us-east-1:123456789012:execution:workflow:ord_1"
    tracing.begin_execution(arn, child_header(ROOT, "bbbbbbbbbbbbbbbb"))
    first = tracing.execution_header(arn)
    tracing.begin_execution(arn, None)  # a duplicate StartExecution returns the same execution
    assert tracing.execution_header(arn) == first and first is not None and ROOT in first
    tracing.end_execution(arn, "FAILED")
    tracing.end_execution(arn, "FAILED")
    daemon.flush()
    (segment,) = xray.documents
    assert segment["origin"] == "AWS::StepFunctions::StateMachine" and segment["name"] == "workflow"
    assert segment["parent_id"] == "bbbbbbbbbbbbbbbb" and segment["fault"] is True
    assert tracing.execution_header(arn) is None


def test_given_datagrams_in_the_sdk_framing_when_the_daemon_runs_then_they_reach_put_trace_segments() -> None:
    xray = FakeXRay()
    daemon = XRayDaemon(xray, flush_s=0.05).start()
    host, port = daemon.address.split(":")
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for segment_id in ("1111111111111111", "bad"):
            document = {"id": segment_id, "name": "s", "trace_id": ROOT, "start_time": 1.0, "end_time": 2.0}
            sender.sendto(b'{"format": "json", "version": 1}\n' + json.dumps(document).encode(), (host, int(port)))
        sender.sendto(b"not a daemon document", (host, int(port)))
        deadline = time.monotonic() + 5
        while daemon.forwarded + daemon.rejected < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sender.close()
        daemon.stop()
    assert [doc["id"] for doc in xray.documents] == ["1111111111111111"]
    assert (daemon.forwarded, daemon.rejected) == (1, 1)


def test_given_annotation_terms_when_parsed_then_each_key_and_value() -> None:
    assert parse_filter('annotation.order_id = "ord_1"') == {"order_id": "ord_1"}
    assert parse_filter('annotation.order_id = "ord_1" and annotation.kind="x"') == {"order_id": "ord_1", "kind": "x"}


@pytest.mark.parametrize("expression", ['service("api")', "responsetime > 5", 'annotation.order_id != "x"'])
def test_given_an_expression_the_local_stage_does_not_evaluate_then_a_clear_400(expression: str) -> None:
    with pytest.raises(UnsupportedFilterError) as raised:
        parse_filter(expression)
    assert raised.value.code == 400 and expression in raised.value.message


@pytest.fixture
def sdk_daemon() -> Any:
    """GIVEN the in-process X-Ray SDK pointed at a UDP socket standing in for the stage's daemon."""
    from aws_xray_sdk.core import xray_recorder

    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(2)
    host, port = daemon.getsockname()
    try:
        with Patches() as patches:
            install_sdk_context(patches, f"{host}:{port}")
            yield daemon, xray_recorder
    finally:
        daemon.close()


def test_given_the_sdk_context_when_a_call_is_traced_in_an_invocation_then_it_joins_its_trace(sdk_daemon: Any) -> None:
    daemon, recorder = sdk_daemon
    parent = "53995c3f42cd8ad8"
    # WHEN a function traces a call while its invocation runs on this thread
    with invocation_header(child_header(ROOT, parent)), recorder.in_subsegment("reserve_inventory"):
        pass
    # THEN the subsegment reaches the daemon as it closes, in the invocation's trace under its segment
    header, _, body = daemon.recv(65_507).partition(b"\n")
    document = json.loads(body)
    assert json.loads(header) == {"format": "json", "version": 1}
    assert (document["name"], document["trace_id"], document["parent_id"]) == ("reserve_inventory", ROOT, parent)


def test_given_the_sdk_context_when_a_call_is_made_outside_an_invocation_then_the_sdk_is_bypassed(
    sdk_daemon: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, recorder = sdk_daemon

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the SDK began a subsegment outside an invocation")

    monkeypatch.setattr(recorder, "begin_subsegment", refuse)
    # WHEN the stage's own code (no invocation on this thread) makes a traced call
    traced = recorder.capture("poll")(lambda: "polled")
    # THEN it runs straight through: no subsegment, not even a dummy one
    assert traced() == "polled"
