"""Step Functions execution logs in CloudWatch Logs, as AWS writes them, which moto does not.

A state machine with a ``LoggingConfiguration`` has Step Functions write each history event its
level selects to the configured log group, one JSON line per event
(https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html)::

    {"id": "3", "previous_event_id": "2", "event_timestamp": "1733080000123", "type": "TaskStateEntered",
     "execution_arn": "...", "details": {"name": "ValidateOrder"}, "redrive_count": "0"}

For an Express workflow this log is the only record of an execution: the Step Functions API keeps
no history. moto's interpreter has the event hook (``CloudWatchLoggingSession``) but moto's
``StartExecution`` passes no session, and the session's own write builds ``LogEvent`` from a dict
without ``timestamp``/``message``. ``deliver_execution_logs`` wraps moto's ``Execution.__init__``
(through ``localstage.patches``) to give every execution of a logging state machine a session that
writes AWS's format, with ``details`` stripped of inputs and outputs unless ``includeExecutionData``.

*Differences* (docs/local-stage.md): the stream is ``states/<machine>/<yyyy-mm-dd-hh-mm>/<execution
name>`` (AWS ends Express streams with a random id); events are written as they happen, while AWS
delivers within seconds; the log group's resource policy and the role's log-delivery permissions are
not checked.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, cast

from localstage.patches import Patches

log = logging.getLogger("localstage.sfn_logs")


def log_line(history_log: dict[str, Any]) -> tuple[int, str]:
    """(epoch ms, message) of one history event, in the shape AWS writes to the log group."""
    at = history_log["event_timestamp"]  # moto: a datetime, or its ISO 8601 text
    if not isinstance(at, datetime):
        text = str(at)
        at = (
            datetime.fromtimestamp(int(text) / 1000, UTC)
            if text.isdigit()
            else datetime.fromisoformat(text.replace("Z", "+00:00"))
        )
    millis = int(at.timestamp() * 1000)
    line = {
        "id": str(history_log["id"]),
        "previous_event_id": str(history_log["previous_event_id"]),
        "event_timestamp": str(millis),
        "type": str(getattr(history_log["type"], "value", history_log["type"])),  # moto's HistoryEventType
        "execution_arn": history_log["execution_arn"],
        "details": history_log.get("details") or {},
        "redrive_count": "0",
    }
    return millis, json.dumps(line, default=str, separators=(",", ":"))


def _session_class() -> type:
    from moto.stepfunctions.parser.asl.eval.event.logging import CloudWatchLoggingSession

    class AwsFormatLoggingSession(CloudWatchLoggingSession):
        """moto's session, writing AWS's JSON lines to a stream of the execution's own."""

        def publish_history_log(self, history_log: Any) -> None:
            try:
                self._write(*log_line(dict(history_log)))
            except Exception as exc:  # a log line must never stop the execution that writes it
                log.warning("execution log line not written: %r", exc)

        def _write(self, millis: int, message: str) -> None:
            group, stream = self.configuration.log_group_name, self.configuration.log_stream_name
            events = [{"timestamp": millis, "message": message}]
            try:
                self._logs_client.put_log_events(log_group_name=group, log_stream_name=stream, log_events=events)
            except Exception:  # the execution's first line: its stream does not exist yet
                try:
                    self._logs_client.create_log_stream(log_group_name=group, log_stream_name=stream)
                    self._logs_client.put_log_events(log_group_name=group, log_stream_name=stream, log_events=events)
                except Exception as exc:  # AWS drops what it cannot deliver; say so in the stage's log
                    log.warning("execution log not delivered to %s: %r", group, exc)

    return AwsFormatLoggingSession


def _with_logging_session(original: Any) -> Any:
    from moto.stepfunctions.parser.asl.eval.event.logging import CloudWatchLoggingConfiguration

    session_class = _session_class()

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        machine = kwargs.get("state_machine")
        if kwargs.get("cloud_watch_logging_session") is None and machine is not None:
            config = CloudWatchLoggingConfiguration.from_logging_configuration(
                state_machine_arn=machine.arn, logging_configuration=cast(Any, machine.loggingConfiguration or {})
            )
            if config is not None:
                started = kwargs.get("start_date")
                minute = started.strftime("%Y-%m-%d-%H-%M") if isinstance(started, datetime) else "0"
                # moto names one stream per state machine; AWS one per Express execution (Final only to mypy).
                setattr(config, "log_stream_name", f"states/{machine.name}/{minute}/{kwargs.get('name')}")  # noqa: B010
                kwargs["cloud_watch_logging_session"] = session_class(kwargs["exec_arn"], config)
        original(self, *args, **kwargs)

    return init


def deliver_execution_logs(patches: Patches) -> None:
    """Every execution of a state machine that logs writes its events to its log group, as on AWS."""
    from moto.stepfunctions.parser.backend.execution import Execution

    patches.wrap("moto", Execution, "__init__", _with_logging_session)
