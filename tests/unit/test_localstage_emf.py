"""EMF lines into metric data, the way CloudWatch Logs extracts them."""

from __future__ import annotations

import io
import json

import pytest

from chalicelib.observability.metrics import MetricsRecorder
from localstage.emf import metric_data

pytestmark = pytest.mark.unit


def test_given_the_apps_emf_lines_when_extracted_then_each_metric_with_its_dimensions() -> None:
    out = io.StringIO()
    recorder = MetricsRecorder("ServerlessApp", {"FunctionName": "f1"}, out)
    recorder.add("FunctionExecutionTime", 12.5, "Milliseconds")
    recorder.add("OrdersProcessed", 1)
    recorder.add("OrdersProcessed", 1)
    recorder.flush()

    [(namespace, data)] = metric_data(out.getvalue().strip())

    assert namespace == "ServerlessApp"
    by_name = {d["MetricName"]: d for d in data}
    assert (
        by_name["FunctionExecutionTime"]["Value"] == 12.5 and by_name["FunctionExecutionTime"]["Unit"] == "Milliseconds"
    )
    assert by_name["OrdersProcessed"]["Values"] == [1.0, 1.0] and by_name["OrdersProcessed"]["Counts"] == [1.0, 1.0]
    assert by_name["OrdersProcessed"]["Dimensions"] == [{"Name": "FunctionName", "Value": "f1"}]


@pytest.mark.parametrize(
    "line",
    [
        "START RequestId: 1 Version: $LATEST",
        '{"level": "INFO", "message": "not emf"}',
        '{"_aws": {"Timestamp": "soon"}}',
        '{"_aws": {broken',
    ],
)
def test_given_lines_that_are_not_emf_when_extracted_then_nothing(line: str) -> None:
    assert metric_data(line) == []


def test_given_a_metric_without_a_numeric_value_then_it_is_skipped() -> None:
    line = json.dumps(
        {
            "_aws": {
                "Timestamp": 0,
                "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [[]], "Metrics": [{"Name": "M"}]}],
            },
            "M": "x",
        }
    )
    assert metric_data(line) == []


class _Recording:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[dict[str, object]]]] = []

    def put_metric_data(self, Namespace: str, MetricData: list[dict[str, object]]) -> None:
        self.calls.append((Namespace, MetricData))


def test_given_an_invocations_emf_lines_when_extracted_then_one_call_per_namespace_with_every_metric() -> None:
    from localstage.telemetry import Telemetry

    lines = []
    for namespace, metric in (("ServerlessApp", "OrdersProcessed"), ("ServerlessApp", "Latency"), ("Other", "X")):
        out = io.StringIO()
        recorder = MetricsRecorder(namespace, {"FunctionName": "f1"}, out)
        recorder.add(metric, 1)
        recorder.flush()
        lines.append(out.getvalue().strip())
    cloudwatch = _Recording()

    Telemetry(logs=object(), cloudwatch=cloudwatch).extract_metrics([*lines, "START RequestId: 1"])

    assert sorted((ns, sorted(str(d["MetricName"]) for d in data)) for ns, data in cloudwatch.calls) == [
        ("Other", ["X"]),
        ("ServerlessApp", ["Latency", "OrdersProcessed"]),
    ]
