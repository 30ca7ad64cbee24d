"""Embedded metric format (EMF) log lines become CloudWatch metrics, as CloudWatch Logs does.

On AWS, CloudWatch extracts metrics from EMF documents in a function's log
stream asynchronously; the app never calls ``put_metric_data``. The local stage
has no such extractor in moto, so the emulator's log writer passes every line
through ``metric_data`` and publishes what it finds to the embedded CloudWatch.
Documents that are not valid EMF are left as plain log lines, as CloudWatch does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

MetricBatch = tuple[str, list[dict[str, Any]]]  # (namespace, MetricData entries)


def metric_data(line: str) -> list[MetricBatch]:
    """The metrics one EMF document declares: one batch per namespace, one datum per dimension set."""
    if not line.startswith("{") or '"_aws"' not in line:
        return []
    try:
        document = json.loads(line)
        directives = document["_aws"]["CloudWatchMetrics"]
        timestamp = datetime.fromtimestamp(int(document["_aws"]["Timestamp"]) / 1000, UTC)
    except (ValueError, KeyError, TypeError):
        return []
    batches: list[MetricBatch] = []
    for directive in directives:
        data: list[dict[str, Any]] = []
        for dimension_set in directive.get("Dimensions") or [[]]:
            dimensions = [{"Name": name, "Value": str(document[name])} for name in dimension_set if name in document]
            for metric in directive.get("Metrics", []):
                raw = document.get(metric.get("Name"))
                values = raw if isinstance(raw, list) else [raw]
                numbers = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
                if not numbers:
                    continue
                datum: dict[str, Any] = {
                    "MetricName": metric["Name"],
                    "Dimensions": dimensions,
                    "Timestamp": timestamp,
                    "Unit": metric.get("Unit", "None"),
                }
                if len(numbers) == 1:
                    datum["Value"] = numbers[0]
                else:
                    datum["Values"], datum["Counts"] = numbers, [1.0] * len(numbers)
                data.append(datum)
        if data:
            batches.append((str(directive["Namespace"]), data))
    return batches
