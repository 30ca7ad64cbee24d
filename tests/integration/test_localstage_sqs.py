"""SQS event source mapping semantics: delete on success, retry on failure, partial batches, DLQ."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from chalice import Chalice

from chalicelib.adapters.pipeline_messaging import SqsDeadLetters
from chalicelib.config import MAX_RECEIVES
from chalicelib.entrypoints.sqs import QueueMessage, partial_batch_response, queue_messages
from infra.pipeline import REDRIVE_MAX_RECEIVE_COUNT
from localstage.sqs_poller import SqsMapping, SqsPoller
from localstage.testing import Harness, emulated

pytestmark = pytest.mark.integration

app = Chalice(app_name="toyq")
seen: list[dict[str, Any]] = []


@app.on_sqs_message(queue="toyq-work", batch_size=10)
def work(event: Any) -> dict[str, Any]:
    """Bodies: "ok" succeeds, "fail" raises, "bad..." is reported as a batch item failure."""
    records = [r.to_dict() for r in event]
    seen.extend(records)
    if any(r["body"] == "fail" for r in records):
        raise RuntimeError("poison message")
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records if r["body"].startswith("bad")]}


@app.on_sqs_message(queue="toyq-crash", batch_size=1)
def crash_then_fail(event: Any) -> dict[str, Any]:
    """The order consumer's shape: crashes (a timeout, say) on its last receive, fails cleanly after it."""
    records = [r.to_dict() for r in event]
    seen.extend(records)
    if int(records[0]["attributes"]["ApproximateReceiveCount"]) == MAX_RECEIVES:
        raise RuntimeError("crashed before the batch was handled")
    dead_letters = SqsDeadLetters(crash_dlq["client"], crash_dlq["url"])
    return partial_batch_response(queue_messages(records), _refuse, dead_letters)


def _refuse(record: QueueMessage) -> None:
    raise ValueError(f"cannot process {record.body}")


crash_dlq: dict[str, Any] = {}  # the DLQ of the test below and a client for it, for the handler


@pytest.fixture(scope="module")
def stage() -> Iterator[Harness]:
    with emulated(app) as harness:
        yield harness


@pytest.fixture
def queues(stage: Harness) -> Iterator[tuple[str, str, str]]:
    """A fresh work queue (visibility 1 s, redrive after 3 receives) and its DLQ."""
    sqs = stage.client("sqs")
    suffix = str(time.monotonic_ns())
    dlq = sqs.create_queue(QueueName=f"toyq-dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    url = sqs.create_queue(
        QueueName=f"toyq-work-{suffix}", Attributes={"VisibilityTimeout": "1", "RedrivePolicy": redrive}
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    seen.clear()
    yield url, arn, dlq


def _poller(stage: Harness, url: str, arn: str, **options: Any) -> SqsPoller:
    mapping = SqsMapping("toyq-local-work", url, arn, **{"batch_size": 10, **options})
    return SqsPoller(mapping, stage.emulator, stage.client("sqs"))


def _count(stage: Harness, url: str) -> int:
    attrs = stage.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_given_a_message_when_the_handler_succeeds_then_it_is_deleted(stage: Harness, queues: Any) -> None:
    url, arn, _ = queues
    sqs = stage.client("sqs")
    sqs.send_message(
        QueueUrl=url, MessageBody="ok", MessageAttributes={"kind": {"DataType": "String", "StringValue": "demo"}}
    )
    assert _poller(stage, url, arn).poll_once() == 1
    assert _count(stage, url) == 0
    record = seen[0]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == arn and record["awsRegion"] == "us-east-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1" and "SentTimestamp" in record["attributes"]
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "demo",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert record["md5OfBody"] and record["receiptHandle"] and record["messageId"]


def test_given_a_failing_handler_when_the_visibility_timeout_passes_then_the_message_is_redelivered(
    stage: Harness, queues: Any
) -> None:
    url, arn, _ = queues
    stage.client("sqs").send_message(QueueUrl=url, MessageBody="fail")
    poller = _poller(stage, url, arn)
    assert poller.poll_once() == 0
    time.sleep(1.1)
    assert poller.poll_once() == 0
    assert [r["attributes"]["ApproximateReceiveCount"] for r in seen] == ["1", "2"]
    assert _count(stage, url) == 1


def test_given_a_message_visible_again_within_the_batching_window_then_the_batch_holds_it_once(stage: Harness) -> None:
    # GIVEN a queue whose messages are visible again at once (a visibility timeout that ran out)
    sqs = stage.client("sqs")
    url = sqs.create_queue(QueueName=f"toyq-zero-{time.monotonic_ns()}", Attributes={"VisibilityTimeout": "0"})[
        "QueueUrl"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.send_message(QueueUrl=url, MessageBody="ok-once")
    seen.clear()
    # WHEN the poller gathers a batch over a window in which it receives that message again
    assert _poller(stage, url, arn, batching_window_s=0.3).poll_once() == 1
    # THEN the function gets it once, and the handle it deleted it with was the live one
    assert [r["body"] for r in seen] == ["ok-once"]
    assert _count(stage, url) == 0


def test_given_batch_item_failures_when_reported_then_only_those_messages_are_retried(
    stage: Harness, queues: Any
) -> None:
    url, arn, _ = queues
    sqs = stage.client("sqs")
    for body in ("ok-1", "bad-1", "ok-2"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    poller = _poller(stage, url, arn, report_batch_item_failures=True, batching_window_s=0.3)
    assert poller.poll_once() == 2
    time.sleep(1.1)
    seen.clear()
    poller.poll_once()
    assert [r["body"] for r in seen] == ["bad-1"]


def test_given_item_failures_without_the_setting_then_the_reply_is_ignored_and_all_are_deleted(
    stage: Harness, queues: Any
) -> None:
    url, arn, _ = queues
    stage.client("sqs").send_message(QueueUrl=url, MessageBody="bad-2")
    assert _poller(stage, url, arn, report_batch_item_failures=False).poll_once() == 1
    assert _count(stage, url) == 0


def test_given_a_poison_message_when_it_fails_max_receive_count_times_then_it_reaches_the_dlq(
    stage: Harness, queues: Any
) -> None:
    url, arn, dlq = queues
    sqs = stage.client("sqs")
    sqs.send_message(QueueUrl=url, MessageBody="fail")
    # Locally shortened retry delay (ChangeMessageVisibility to 0), documented in docs/local-stage.md.
    poller = _poller(stage, url, arn, retry_visibility_s=0)
    for _ in range(4):
        poller.poll_once()
    assert len(seen) == 3  # the fourth receive moved it to the DLQ instead of delivering it
    moved = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages", [])
    assert [m["Body"] for m in moved] == ["fail"]
    assert _count(stage, url) == 0


def test_given_a_running_poller_when_a_message_is_sent_then_it_is_delivered_in_the_background(
    stage: Harness, queues: Any
) -> None:
    url, arn, _ = queues
    poller = _poller(stage, url, arn).start()
    try:
        stage.client("sqs").send_message(QueueUrl=url, MessageBody="ok")
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        poller.stop()
    assert [r["body"] for r in seen] == ["ok"]


def test_given_a_handler_that_crashes_on_its_last_receive_then_the_backstop_receive_dead_letters_with_a_reason(
    stage: Harness,
) -> None:
    # GIVEN a queue redriving as the stage's do (one receive after the handler gives up)
    sqs = stage.client("sqs")
    suffix = str(time.monotonic_ns())
    crash_dlq.update(client=sqs, url=sqs.create_queue(QueueName=f"toyq-crash-dlq-{suffix}")["QueueUrl"])
    dlq_arn = sqs.get_queue_attributes(QueueUrl=crash_dlq["url"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": REDRIVE_MAX_RECEIVE_COUNT})
    url = sqs.create_queue(
        QueueName=f"toyq-crash-{suffix}", Attributes={"VisibilityTimeout": "1", "RedrivePolicy": redrive}
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    mapping = SqsMapping("toyq-local-crash_then_fail", url, arn, batch_size=1, report_batch_item_failures=True)
    poller = SqsPoller(mapping, stage.emulator, sqs)
    seen.clear()
    sqs.send_message(QueueUrl=url, MessageBody="order-1")

    # WHEN it fails twice, crashes on its last receive, then fails again
    handled = []
    for _ in range(REDRIVE_MAX_RECEIVE_COUNT):
        handled.append(poller.poll_once())
        time.sleep(1.1)

    # THEN the message is in the DLQ once, with the reason the handler gave
    assert [r["attributes"]["ApproximateReceiveCount"] for r in seen] == ["1", "2", "3", "4"]
    assert handled == [0, 0, 0, 1]  # the last: parked by the handler, so done as far as the queue goes
    parked = sqs.receive_message(QueueUrl=crash_dlq["url"], MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    [message] = parked["Messages"]
    assert message["Body"] == "order-1"
    assert message["MessageAttributes"]["ErrorType"]["StringValue"] == "ValueError"
    assert _count(stage, url) == 0


def test_given_no_batching_window_then_a_batch_is_one_receive(stage: Harness, queues: Any) -> None:
    # GIVEN three messages waiting, and a mapping without a batching window (Chalice's default)
    url, arn, _ = queues
    sqs = stage.client("sqs")
    for body in ("ok", "ok", "ok"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    poller = _poller(stage, url, arn)
    receives: list[dict[str, Any]] = []
    poller._sqs.meta.events.register("before-call.sqs.ReceiveMessage", lambda params, **_: receives.append(params))
    # WHEN the poller takes a batch
    handled = poller.poll_once()
    # THEN it invoked with what one receive returned, as Lambda does, and asked no second time
    assert handled == 3 and len(seen) == 3
    assert len(receives) == 1
