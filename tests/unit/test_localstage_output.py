"""What a handler prints: captured for its log stream, and shown on the console unless it is EMF."""

from __future__ import annotations

import io
import logging
import threading

import pytest

from localstage.output import _Tee, rebind

pytestmark = pytest.mark.unit


def test_given_an_invocation_printing_logs_and_emf_then_both_are_captured_and_only_logs_echoed() -> None:
    console = io.StringIO()
    captures = threading.local()
    tee = _Tee(console, captures)
    captures.buffer = []

    tee.write('{"level":"INFO","message":"order placed"}\n')
    tee.write('{"_aws":{"Timestamp":1,"CloudWatchMetrics":[]},"M":1}\n')

    assert len(captures.buffer) == 2
    assert "order placed" in console.getvalue() and '"_aws"' not in console.getvalue()


def test_given_output_outside_an_invocation_then_it_goes_to_the_console_only() -> None:
    console = io.StringIO()
    tee = _Tee(console, threading.local())
    tee.write('{"_aws": "not inside an invocation"}\n')
    assert '"_aws"' in console.getvalue()


def test_given_a_handler_bound_to_the_raw_stream_when_rebound_then_a_functions_log_lines_reach_its_capture() -> None:
    # GIVEN a logging handler made before the tee, writing to the raw stream (as basicConfig binds stderr)
    raw = io.StringIO()
    handler = logging.StreamHandler(raw)
    logger = logging.getLogger("test.output.rebind")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        captures = threading.local()
        tee = _Tee(raw, captures)
        # WHEN the tee is installed over that stream
        rebind([handler], {id(raw): tee})
        captures.buffer = []
        logger.warning("reserved stock for ord_1")
        # THEN the line reaches the invocation's capture (its log group) and still the console
        assert "reserved stock for ord_1" in "".join(captures.buffer)
        assert "reserved stock for ord_1" in raw.getvalue()
    finally:
        logger.removeHandler(handler)
