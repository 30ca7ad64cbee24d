"""The local stage writes Step Functions execution logs in AWS's format (localstage/sfn_logs.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from moto.stepfunctions.parser.api import HistoryEventType

from localstage.sfn_logs import log_line

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("at", [datetime(2026, 12, 1, 21, 2, 37, 336000, tzinfo=UTC), "2026-12-01T21:02:37.336Z"])
def test_given_a_moto_history_event_when_logged_then_it_is_awss_json_line(at: object) -> None:
    # GIVEN one history event as moto's interpreter hands it to the logging session
    event = {
        "id": "4",
        "previous_event_id": "3",
        "event_timestamp": at,
        "type": HistoryEventType.TaskStateEntered,
        "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:orders:ord_1",
        "details": {"name": "ValidateOrder"},
    }
    # WHEN it becomes a log line
    millis, message = log_line(event)
    # THEN the line is AWS's: string ids, epoch milliseconds as text, the bare event type
    assert millis == 1_796_158_957_336
    assert json.loads(message) == {
        "id": "4",
        "previous_event_id": "3",
        "event_timestamp": "1796158957336",
        "type": "TaskStateEntered",
        "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:orders:ord_1",
        "details": {"name": "ValidateOrder"},
        "redrive_count": "0",
    }
