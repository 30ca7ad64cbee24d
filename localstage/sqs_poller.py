"""SQS event source mappings: what Lambda's pollers do, for one queue and one function.

As on AWS (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html):

- long-poll the queue, gather up to ``batch_size`` messages or until the
  batching window closes, and invoke the function synchronously with Lambda's
  SQS event (``Records`` with ``messageId``, ``receiptHandle``, ``body``,
  ``attributes``, ``messageAttributes`` in the lowercase Lambda shape,
  ``md5OfBody``, ``eventSource``, ``eventSourceARN``, ``awsRegion``);
- on success delete the batch; on an error, timeout or throttle leave it, so the
  messages come back after the queue's visibility timeout;
- with ``ReportBatchItemFailures``, delete all but the ``batchItemFailures``;
  a malformed response (an id not in the batch) fails the whole batch;
- dead-lettering is the queue's own ``RedrivePolicy``: moto moves a message to
  the DLQ on the receive after ``maxReceiveCount``, as SQS does.

Local differences: one poller thread per mapping (AWS scales pollers with the
backlog), and ``retry_visibility_s`` may shorten the wait before a failed
message is retried (``ChangeMessageVisibility``), which AWS does not do.
"""

from __future__ import annotations

import base64
import logging
import threading
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from localstage.iam.principals import Acting, acting_as
from localstage.lambda_model import InvocationResult, LambdaThrottledError
from localstage.lambdas import LambdaEmulator
from localstage.server import REGION

log = logging.getLogger("localstage.sqs")

# The system attributes Lambda copies into a record's "attributes".
RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
)


@dataclass(frozen=True)
class SqsMapping:
    function_name: str
    queue_url: str
    queue_arn: str
    batch_size: int = 10
    batching_window_s: float = 0.0
    report_batch_item_failures: bool = False
    retry_visibility_s: int | None = None


def _attribute_value(value: dict[str, Any]) -> dict[str, Any]:
    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    shaped: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
    if "StringValue" in value:
        shaped["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        shaped["binaryValue"] = b64(value["BinaryValue"])
    return shaped


def sqs_record(message: dict[str, Any], queue_arn: str, region: str = REGION) -> dict[str, Any]:
    """One ``Records`` entry of Lambda's SQS event, from a ``ReceiveMessage`` message."""
    attributes = message.get("Attributes", {})
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {k: attributes[k] for k in RECORD_ATTRIBUTES if k in attributes},
        "messageAttributes": {k: _attribute_value(v) for k, v in message.get("MessageAttributes", {}).items()},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_message_ids(result: InvocationResult, batch_ids: list[str], report_failures: bool) -> set[str]:
    """Which messages of the batch must be retried after this invocation."""
    if result.function_error:
        return set(batch_ids)
    if not report_failures:
        return set()
    response = result.json()
    failures = response.get("batchItemFailures") if isinstance(response, dict) else None
    if not failures:
        return set()
    ids = {f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures}
    if not ids <= set(batch_ids):
        log.warning("invalid batchItemFailures %r: the whole batch is retried, as on AWS", failures)
        return set(batch_ids)
    return {i for i in ids if i}


class SqsPoller:
    """Delivers one queue to one function until stopped."""

    def __init__(
        self, mapping: SqsMapping, emulator: LambdaEmulator, sqs: Any, wait_s: int = 1, principal: Acting | None = None
    ) -> None:
        self.mapping = mapping
        # Lambda polls, deletes and reads queue attributes with the function's role (IAM enforced).
        self.principal = principal
        self._refused: str | None = None
        self._emulator = emulator
        self._sqs = sqs
        self._wait_s = wait_s  # short long-polls, so stop() is prompt (AWS: 20 s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> SqsPoller:
        self._thread = threading.Thread(target=self._run, name=f"sqs-{self.mapping.function_name}", daemon=True)
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the poller to end after its current poll, without waiting (``stop()`` waits)."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        self._read_queue_attributes()
        while not self._stop.is_set():
            try:
                self.poll_once()
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("AccessDenied", "AccessDeniedException"):
                    log.exception("polling %s failed", self.mapping.queue_url)
                    self._stop.wait(1)
                    continue
                # AWS puts the mapping in a PROBLEM state and keeps retrying; say so once, not every second.
                message = str(exc)
                if message != self._refused:
                    log.error("%s cannot poll %s: %s", self.mapping.function_name, self.mapping.queue_url, message)
                    self._refused = message
                self._stop.wait(5)
            except Exception:  # a broken poll must not end delivery; log it and poll again
                log.exception("polling %s failed", self.mapping.queue_url)
                self._stop.wait(1)

    def _read_queue_attributes(self) -> None:
        """What Lambda does as a mapping starts, with the function's role: read the queue's settings."""
        try:
            with acting_as(self.principal):
                self._sqs.get_queue_attributes(QueueUrl=self.mapping.queue_url, AttributeNames=["VisibilityTimeout"])
        except ClientError as exc:
            log.error("%s cannot read %s's attributes: %s", self.mapping.function_name, self.mapping.queue_url, exc)

    def _receive(self, count: int, wait_s: int) -> list[dict[str, Any]]:
        with acting_as(self.principal):
            response = self._sqs.receive_message(
                QueueUrl=self.mapping.queue_url,
                MaxNumberOfMessages=min(10, count),
                WaitTimeSeconds=wait_s,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def gather(self) -> list[dict[str, Any]]:
        """Up to ``batch_size`` messages, waiting at most the batching window once one has arrived."""
        m = self.mapping
        batch = self._receive(m.batch_size, self._wait_s)
        if not batch or m.batching_window_s == 0:
            # No window: Lambda invokes with what the receive returned. Asking again at once brought
            # only what arrived in the microseconds between, at one more billed receive a batch.
            return batch
        window = threading.Event()
        timer = threading.Timer(m.batching_window_s, window.set)
        timer.start()
        try:
            while len(batch) < m.batch_size and not self._stop.is_set():
                more = self._receive(m.batch_size - len(batch), 0)
                # A message whose visibility timeout ran out while the window was open comes back with a
                # new receipt handle: the batch keeps it once, with the handle that can still delete it.
                again = {message["MessageId"] for message in more}
                new = len(again - {message["MessageId"] for message in batch})
                batch = [message for message in batch if message["MessageId"] not in again] + more
                if not new:
                    if window.is_set():
                        break
                    window.wait(0.1)
        finally:
            timer.cancel()
        return batch

    def poll_once(self) -> int:
        """Receive one batch and deliver it; returns how many messages were handled successfully."""
        batch = self.gather()
        if not batch:
            return 0
        m = self.mapping  # read after the long poll: a mapping updated meanwhile applies to this batch
        event = {"Records": [sqs_record(message, m.queue_arn) for message in batch]}
        ids = [message["MessageId"] for message in batch]
        # Lambda continues the trace of the batch's first message that carries one.
        traced = (msg.get("Attributes", {}).get("AWSTraceHeader") for msg in batch)
        trace_header = next((header for header in traced if header), None)
        try:
            result = self._emulator.invoke(m.function_name, event, trace_header=trace_header)
        except LambdaThrottledError:
            log.warning("%s throttled: %d messages return to %s", m.function_name, len(batch), m.queue_url)
            failed = set(ids)
        else:
            failed = failed_message_ids(result, ids, m.report_batch_item_failures)
            if result.function_error:
                log.warning("%s failed on %d messages; they will be retried", m.function_name, len(batch))
        done = [msg for msg in batch if msg["MessageId"] not in failed]
        retry = [msg for msg in batch if msg["MessageId"] in failed]
        self._delete(done)
        self._release(retry)
        return len(done)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [{"Id": str(i), "ReceiptHandle": msg["ReceiptHandle"]} for i, msg in enumerate(chunk)]
            with acting_as(self.principal):
                self._sqs.delete_message_batch(QueueUrl=self.mapping.queue_url, Entries=entries)

    def _release(self, messages: list[dict[str, Any]]) -> None:
        delay = self.mapping.retry_visibility_s
        if delay is None:
            return  # the queue's visibility timeout decides, as on AWS
        # A local shortcut AWS does not take, so the stage makes it as itself (no grant is involved).
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [
                {"Id": str(i), "ReceiptHandle": msg["ReceiptHandle"], "VisibilityTimeout": delay}
                for i, msg in enumerate(chunk)
            ]
            self._sqs.change_message_visibility_batch(QueueUrl=self.mapping.queue_url, Entries=entries)
