"""The Lambda emulator's logs and metrics, written into moto's CloudWatch Logs and CloudWatch directly.

Delivering a function's log lines and extracting their EMF metrics is the Lambda and CloudWatch
services' own work. Through the SDK, each batch was a botocore request (every event validated and
serialised on its own), signed, then parsed again by moto's HTTP layer: under load, about a seventh of
the stage's busy time (docs/benchmarks.md). ``DirectLogs`` and ``DirectCloudWatch`` keep the SDK
client's interface that ``localstage.telemetry.Telemetry`` uses, and do what the request did:

- **IAM.** A ``PutLogEvents`` written for a function's role (``Telemetry`` sets it with ``acting_as``)
  is decided as the IAM middleware decides that request: the same targets
  (``localstage.iam.actions.targets``), the role's policies, the ledger that the coverage report
  reads. A refusal is the ``ClientError`` the SDK raises (``AccessDeniedException``), and nothing is
  written. The stage's own writes (no role: the metrics, as over HTTP) are not checked.
- **Errors.** moto's (a missing group or stream, an event too old) are raised as ``ClientError``
  with moto's code and message, as the SDK would raise them.
- **Metric data** is what moto's request parser hands its backend: timestamps as naive UTC
  datetimes, values and counts as floats.

Creating groups and streams (once per execution environment) still goes through the SDK client.
Reads of moto's backends call ``localstage.patches.require`` first, like every read of its state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from localstage.iam import enforcement
from localstage.iam.actions import Call, targets
from localstage.iam.principals import current
from localstage.patches import require
from localstage.telemetry import TELEMETRY_BATCH_S, Telemetry, writer_client


@contextmanager
def _as_client_error(operation: str) -> Iterator[None]:
    from moto.core.exceptions import JsonRESTError, ServiceException

    try:
        yield
    except (JsonRESTError, ServiceException) as exc:
        # moto's two kinds: RESTError has the AWS code in error_type and the HTTP status in code;
        # ServiceException has the AWS code in code (its status is a 400).
        if isinstance(exc, JsonRESTError):
            code, status = exc.error_type, int(exc.code)
        else:
            code, status = exc.code, 400
        error = {"Code": str(code), "Message": str(getattr(exc, "message", None) or exc)}
        raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}, operation) from exc


def authorize(call: Call) -> None:
    """Refuse ``call`` as the IAM middleware would, if a function's role is acting and IAM is enforced."""
    authorizer, acting = enforcement.active(), current()
    if authorizer is None or acting is None:
        return
    for target in targets(call):
        decision = authorizer.decide_role(acting.role_arn, acting.session_name, target)
        if not decision.allowed:
            message = (
                f"User: {acting.session_arn} is not authorized to perform: {target.action} "
                f"on resource: {target.resource} because {decision.reason}"
            )
            error = {"Code": "AccessDeniedException", "Message": message}
            raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, call.operation)


class DirectLogs:
    """``PutLogEvents`` into moto's CloudWatch Logs backend; group and stream creation through ``client()``."""

    def __init__(self, client: Callable[[], Any], account: str, region: str) -> None:
        self._make_client = client
        self._client: Any = None
        self.account, self.region = account, region

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    @property
    def exceptions(self) -> Any:
        return self.client.exceptions

    def create_log_group(self, **arguments: Any) -> Any:
        return self.client.create_log_group(**arguments)

    def create_log_stream(self, **arguments: Any) -> Any:
        return self.client.create_log_stream(**arguments)

    def put_log_events(
        self,
        logGroupName: str,  # the API's own keywords, as Telemetry passes them
        logStreamName: str,
        logEvents: Sequence[Mapping[str, Any]],
    ) -> dict[str, Any]:
        from moto.logs.models import logs_backends

        params = {"logGroupName": logGroupName, "logStreamName": logStreamName}
        authorize(Call("logs", "PutLogEvents", params, self.region, self.account))
        require("moto")
        events = [{"timestamp": int(e["timestamp"]), "message": str(e["message"])} for e in logEvents]
        with _as_client_error("PutLogEvents"):
            token, rejected = logs_backends[self.account][self.region].put_log_events(
                logGroupName, logStreamName, events
            )
        answer: dict[str, Any] = {"nextSequenceToken": token}
        if rejected:
            answer["rejectedLogEventsInfo"] = rejected
        return answer


def parsed_datum(datum: Mapping[str, Any]) -> dict[str, Any]:
    """One ``MetricData`` entry as moto's request parser hands it to the backend."""
    parsed = dict(datum)
    timestamp = parsed.get("Timestamp")
    if isinstance(timestamp, datetime) and timestamp.tzinfo is not None:
        parsed["Timestamp"] = timestamp.astimezone(UTC).replace(tzinfo=None)
    elif isinstance(timestamp, int | float):
        parsed["Timestamp"] = datetime.fromtimestamp(timestamp, UTC).replace(tzinfo=None)
    if "Value" in parsed:
        parsed["Value"] = float(parsed["Value"])
    for name in ("Values", "Counts"):
        if name in parsed:
            parsed[name] = [float(v) for v in parsed[name]]
    return parsed


class DirectCloudWatch:
    """``PutMetricData`` into moto's CloudWatch backend (the stage's own writes: no role, no IAM check)."""

    def __init__(self, account: str, region: str) -> None:
        self.account, self.region = account, region

    def put_metric_data(self, Namespace: str, MetricData: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        from moto.cloudwatch.models import cloudwatch_backends

        authorize(Call("cloudwatch", "PutMetricData", {"Namespace": Namespace}, self.region, self.account))
        require("moto")
        with _as_client_error("PutMetricData"):
            cloudwatch_backends[self.account][self.region].put_metric_data(
                Namespace, [parsed_datum(d) for d in MetricData]
            )
        return {}


def direct_telemetry(account: str, region: str) -> Telemetry:
    """The stage's Lambda telemetry: batched as Lambda delivers it, written into moto's backends."""
    logs = DirectLogs(lambda: writer_client("logs"), account, region)
    return Telemetry(logs, DirectCloudWatch(account, region), batch_window_s=TELEMETRY_BATCH_S)
