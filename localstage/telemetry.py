"""What AWS Lambda records about each invocation, written to the embedded AWS.

The emulator stands in for the Lambda service here, so it is the one that
publishes the ``AWS/Lambda`` metrics (dimension ``FunctionName``) and writes
the ``/aws/lambda/<name>`` log group, one stream per execution environment,
named the way Lambda names them: ``YYYY/MM/DD/[$LATEST]<32 hex>``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from localstage.emf import metric_data

log = logging.getLogger("localstage.telemetry")

NAMESPACE = "AWS/Lambda"
MAX_METRIC_DATA = 1_000  # values per PutMetricData call


class Telemetry:
    """Writes log events and metric data with injected (or lazily built) clients."""

    def __init__(self, logs: Any = None, cloudwatch: Any = None) -> None:
        self._logs = logs
        self._cloudwatch = cloudwatch
        self._groups: set[str] = set()
        self._lock = threading.Lock()

    def _client(self, service: str) -> Any:
        import boto3

        return boto3.client(service)  # boto3's default session: its loaded data is shared, not reloaded

    @property
    def logs(self) -> Any:
        if self._logs is None:
            self._logs = self._client("logs")
        return self._logs

    @property
    def cloudwatch(self) -> Any:
        if self._cloudwatch is None:
            self._cloudwatch = self._client("cloudwatch")
        return self._cloudwatch

    def ensure_log_group(self, group: str) -> None:
        with self._lock:
            if group in self._groups:
                return
            with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
                self.logs.create_log_group(logGroupName=group)
            self._groups.add(group)

    def open_stream(self, group: str, stream: str) -> None:
        self.ensure_log_group(group)
        with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
            self.logs.create_log_stream(logGroupName=group, logStreamName=stream)

    def write_log(self, group: str, stream: str, lines: list[str]) -> None:
        """Write the lines, then publish their EMF metrics (only what reached the log group)."""
        if self.put_log_lines(group, stream, lines):
            self.extract_metrics(lines)

    def put_log_lines(self, group: str, stream: str, lines: list[str]) -> bool:
        """Write the lines to the log group; ``False`` if they could not be (nothing was written)."""
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": line} for line in lines if line]
        if not events:
            return False
        try:
            self.logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
        except (BotoCoreError, ClientError) as exc:
            # Telemetry must never fail an invocation; say why it is missing instead.
            log.warning("could not write %d log lines to %s: %s", len(events), group, exc)
            return False
        return True

    def extract_metrics(self, lines: list[str]) -> None:
        """Publish the metrics of EMF lines, standing in for CloudWatch Logs' own extraction."""
        # One PutMetricData per namespace per invocation (up to the API's 1,000 values a call), not one
        # per EMF line: the metrics are the same, the emulation's calls several times fewer.
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for line in lines:
            for namespace, data in metric_data(line):
                by_namespace.setdefault(namespace, []).extend(data)
        for namespace, data in by_namespace.items():
            for start in range(0, len(data), MAX_METRIC_DATA):
                chunk = data[start : start + MAX_METRIC_DATA]
                try:
                    self.cloudwatch.put_metric_data(Namespace=namespace, MetricData=chunk)
                except (BotoCoreError, ClientError) as exc:
                    log.warning("could not extract EMF metrics into %s: %s", namespace, exc)

    def put_metrics(self, function_name: str, values: list[tuple[str, float, str]]) -> None:
        """``values``: (metric name, value, unit) for one invocation."""
        data = [
            {
                "MetricName": name,
                "Dimensions": [{"Name": "FunctionName", "Value": function_name}],
                "Value": value,
                "Unit": unit,
            }
            for name, value, unit in values
        ]
        try:
            self.cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data)
        except (BotoCoreError, ClientError) as exc:
            log.warning("could not publish metrics for %s: %s", function_name, exc)
