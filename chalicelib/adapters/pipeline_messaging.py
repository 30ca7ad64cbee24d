"""Step Functions, SNS and SQS for the order pipeline, and their in-memory twins.

The bus side is ``dispatch.EventBridgePublisher`` (``publish_event``/``create_rule``);
its twin here, ``RecordingEvents``, keeps what was published so unit tests can read it.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Mapping

from botocore.exceptions import ClientError

from chalicelib.adapters.dispatch import to_json


class StepFunctionsWorkflow:
    """Starts executions named after the order, so a redelivered message starts nothing new."""

    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._sfn = client
        self._arn = state_machine_arn

    def start(self, name: str, payload: Mapping[str, Any]) -> bool:
        try:
            self._sfn.start_execution(stateMachineArn=self._arn, name=name, input=to_json(payload))
        except ClientError as exc:
            # Same name and input while running is answered 200 by AWS; anything else by this error.
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return False
            raise
        return True


class SnsTopic:
    def __init__(self, client: Any, topic_arn: str) -> None:
        self._sns = client
        self._arn = topic_arn

    def publish(self, subject: str, message: Mapping[str, Any]) -> None:
        attributes = {}
        if "type" in message:
            # Lets subscribers filter (e.g. e-mail only confirmations) without parsing the body.
            attributes["notification_type"] = {"DataType": "String", "StringValue": str(message["type"])}
        self._sns.publish(
            TopicArn=self._arn, Subject=subject[:100], Message=to_json(message), MessageAttributes=attributes
        )


class SqsDeadLetters:
    """Parks a message in a dead-letter queue with why it failed, as message attributes."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def send(self, body: str, error_type: str, reason: str, receive_count: int) -> None:
        self._sqs.send_message(
            QueueUrl=self._url,
            MessageBody=body,
            MessageAttributes={
                "ErrorType": {"DataType": "String", "StringValue": error_type[:256] or "Error"},
                "ErrorMessage": {"DataType": "String", "StringValue": reason[:1024] or "no message"},
                # The receive it was given up on: SQS's own redrive (one receive later) adds no attributes.
                "ReceiveCount": {"DataType": "Number", "StringValue": str(receive_count)},
            },
        )


class RecordingWorkflow:
    """In-memory ``WorkflowEngine``: remembers executions by name; running them is the caller's business."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.executions: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []  # every start asked for, duplicates included (Express would run them all)

    def start(self, name: str, payload: Mapping[str, Any]) -> bool:
        with self._lock:
            self.calls.append(name)
            if name in self.executions:
                return False
            self.executions[name] = json.loads(to_json(payload))
            return True


class RecordingTopic:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def publish(self, subject: str, message: Mapping[str, Any]) -> None:
        with self._lock:
            self.messages.append((subject, json.loads(to_json(message))))


class RecordingEvents:
    """In-memory ``EventPublisher``: the events as ``(source, detail_type, detail)``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def publish_event(self, source: str, detail_type: str, detail: Mapping[str, Any]) -> str:
        with self._lock:
            self.events.append((source, detail_type, json.loads(to_json(detail))))
            return f"evt-{len(self.events)}"

    def types(self) -> list[str]:
        with self._lock:
            return [detail_type for _, detail_type, _ in self.events]


class RecordingDeadLetters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: list[tuple[str, str, str, int]] = []

    def send(self, body: str, error_type: str, reason: str, receive_count: int) -> None:
        with self._lock:
            self.messages.append((body, error_type, reason, receive_count))
