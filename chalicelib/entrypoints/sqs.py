"""Lambda's SQS batches: records in, partial failures out, and dead letters that say why.

Lambda retries only the messages a handler lists in ``batchItemFailures`` (when the
event source mapping has ``ReportBatchItemFailures``), so one bad message does not
send nine good ones round again. A message failing on its last allowed receive
(``config.MAX_RECEIVES``) is parked in the dead-letter queue by the handler itself,
with the error's type and message and the receive count as attributes. The queue's redrive policy is the
backstop for a crashed or timed-out invocation, and says nothing about why: it moves
a message one receive later (``infra.pipeline.REDRIVE_MAX_RECEIVE_COUNT``), so a
handler that crashed on its last receive gets another and parks the message itself,
with the reason.

This is the entry layer's part of a queue consumer (Powertools' batch utility plays the
same role): the record handler it calls takes a ``QueueMessage`` and hands a service
domain values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from chalicelib.config import MAX_RECEIVES
from chalicelib.domain.ports import DeadLetters
from chalicelib.observability.correlation import correlation_of_message
from chalicelib.observability.logs import bound

log = logging.getLogger(__name__)

BatchResponse = dict[str, list[dict[str, str]]]


@dataclass(frozen=True)
class QueueMessage:
    """One SQS record, as far as a consumer needs it."""

    message_id: str
    body: str
    receive_count: int
    correlation_id: str | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> QueueMessage:
        """From one entry of Lambda's SQS event (``messageId``, ``body``, ``attributes``, ``messageAttributes``)."""
        count = (record.get("attributes") or {}).get("ApproximateReceiveCount", "1")
        body = str(record.get("body", ""))
        correlation_id = correlation_of_message(record.get("messageAttributes") or {}, body)
        return cls(str(record["messageId"]), body, int(count), correlation_id)


def queue_messages(records: Iterable[Any]) -> list[QueueMessage]:
    """The messages of a Chalice ``SQSEvent`` (its records have ``to_dict``) or of raw record dicts."""
    return [QueueMessage.from_record(r.to_dict() if hasattr(r, "to_dict") else r) for r in records]


def partial_batch_response(
    messages: Sequence[QueueMessage],
    handle: Callable[[QueueMessage], object],
    dead_letters: DeadLetters | None = None,
    give_up: Callable[[QueueMessage], None] | None = None,
    max_receives: int = MAX_RECEIVES,
) -> BatchResponse:
    """Handle each message alone; answer Lambda's ``{"batchItemFailures": [...]}`` with the ones to retry.

    On its last receive a failing message is dead-lettered with its reason, then ``give_up``
    is told, so that what the message was about is not left waiting forever.
    """
    failures: list[dict[str, str]] = []
    for message in messages:
        with bound(correlation_id=message.correlation_id, message_id=message.message_id):
            try:
                handle(message)
            except Exception as exc:  # each message fails alone; the error is reported, never swallowed
                log.warning("message %s failed (receive %d): %r", message.message_id, message.receive_count, exc)
                if not _dead_letter(message, exc, dead_letters, give_up, max_receives):
                    failures.append({"itemIdentifier": message.message_id})
    return {"batchItemFailures": failures}


def _dead_letter(
    message: QueueMessage,
    exc: Exception,
    dead_letters: DeadLetters | None,
    give_up: Callable[[QueueMessage], None] | None,
    max_receives: int,
) -> bool:
    """``True`` when the message is parked for good (so it must not be retried)."""
    if dead_letters is None or message.receive_count < max_receives:
        return False
    try:
        dead_letters.send(message.body, type(exc).__name__, str(exc), message.receive_count)
    except Exception:  # the redrive policy will move it on the next receive instead
        log.exception("could not dead-letter message %s; leaving it to the redrive policy", message.message_id)
        return False
    if give_up is not None:
        try:
            give_up(message)
        except Exception:  # the message is parked with its reason; the DLQ alarm brings an operator
            log.exception("giving up on message %s left its order as it was", message.message_id)
    return True
