"""What a handler prints: captured for its log stream, and shown on the console unless it is EMF."""

from __future__ import annotations

import io
import threading

import pytest

from localstage.output import _Tee

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
