"""Structured logs and EMF metrics: the formats CloudWatch parses."""

from __future__ import annotations

import io
import json
import logging

import pytest

from chalicelib.observability.logs import JsonFormatter, bound, current
from chalicelib.observability.metrics import MetricsRecorder

pytestmark = pytest.mark.unit


def _logger(stream: io.StringIO) -> logging.Logger:
    logger = logging.getLogger(f"test.{id(stream)}")
    logger.handlers = [logging.StreamHandler(stream)]
    logger.handlers[0].setFormatter(JsonFormatter())
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_given_a_bound_context_when_logging_then_one_json_line_with_the_ids() -> None:
    out = io.StringIO()
    with bound(function="api", request_id="r1", correlation_id="c1"):
        _logger(out).info("order placed", extra={"order_id": "ord_1"})
        assert current("correlation_id") == "c1"
    line = json.loads(out.getvalue())
    assert line["level"] == "INFO" and line["message"] == "order placed"
    assert (line["function"], line["request_id"], line["correlation_id"], line["order_id"]) == (
        "api",
        "r1",
        "c1",
        "ord_1",
    )
    assert current("correlation_id") is None


def test_given_an_exception_when_logging_then_its_type_and_trace_are_fields() -> None:
    out = io.StringIO()
    try:
        raise KeyError("x")
    except KeyError:
        _logger(out).exception("boom")
    line = json.loads(out.getvalue())
    assert line["error_type"] == "KeyError" and "Traceback" in line["exception"]


def test_given_metrics_when_flushing_then_one_emf_document_per_dimension_set() -> None:
    out = io.StringIO()
    metrics = MetricsRecorder("Shop", {"Service": "orders"}, out)
    metrics.add("OrdersProcessed", 1)
    metrics.add("OrderValue", 25.3, "None")
    metrics.add("OrdersProcessed", 1)
    metrics.add("FunctionError", 1, dimensions={"ErrorType": "KeyError"})
    metrics.flush()
    documents = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(documents) == 2
    main = next(d for d in documents if "OrdersProcessed" in d)
    directive = main["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "Shop" and directive["Dimensions"] == [["Service"]]
    assert {m["Name"] for m in directive["Metrics"]} == {"OrdersProcessed", "OrderValue"}
    assert main["OrdersProcessed"] == [1.0, 1.0] and main["OrderValue"] == 25.3 and main["Service"] == "orders"
    error = next(d for d in documents if "FunctionError" in d)
    assert error["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["ErrorType", "Service"]]
    metrics.flush()
    assert len(out.getvalue().splitlines()) == 2  # flushed metrics are not written twice


def test_given_more_than_100_metrics_when_flushing_then_documents_are_chunked() -> None:
    out = io.StringIO()
    metrics = MetricsRecorder("Shop", {}, out)
    for i in range(150):
        metrics.add(f"M{i}", i)
    metrics.flush()
    sizes = [len(json.loads(line)["_aws"]["CloudWatchMetrics"][0]["Metrics"]) for line in out.getvalue().splitlines()]
    assert sizes == [100, 50]
