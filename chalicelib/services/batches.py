"""SQS batches with partial failures, and dead letters that say why.

Lambda retries only the messages a handler lists in ``batchItemFailures`` (when the
event source mapping has ``ReportBatchItemFailures``), so one bad message does not
send nine good ones round again. A message failing on its last allowed receive is
parked in the dead-letter queue by the handler itself, with the error's type and
message as attributes. The queue's redrive policy is the backstop for a crashed or
timed-out invocation, and says nothing about why: it moves a message one receive
later (``REDRIVE_MAX_RECEIVE_COUNT``), so a handler that crashed on its last receive
gets another and parks the message itself, with the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from chalicelib.domain.pipeline import MAX_RECEIVES
from chalicelib.domain.ports import DeadLetters
from chalicelib.observability.correlation import correlation_of_message
from chalicelib.observability.logs import bound

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueRecord:
    message_id: str
    body: str
    receive_count: int
    correlation_id: str | None = None

    @classmethod
    def from_lambda(cls, record: Mapping[str, Any]) -> QueueRecord:
        """From one entry of Lambda's SQS event (``messageId``, ``body``, ``attributes``, ``messageAttributes``)."""
        count = record.get("attributes", {}).get("ApproximateReceiveCount", "1")
        body = str(record.get("body", ""))
        correlation_id = correlation_of_message(record.get("messageAttributes") or {}, body)
        return cls(str(record["messageId"]), body, int(count), correlation_id)


def process_batch(
    records: Sequence[QueueRecord],
    handle: Callable[[QueueRecord], object],
    dead_letters: DeadLetters | None = None,
    give_up: Callable[[QueueRecord, Exception], None] | None = None,
    max_receives: int = MAX_RECEIVES,
) -> dict[str, list[dict[str, str]]]:
    """Handle each record; answer Lambda's ``{"batchItemFailures": [...]}`` for the ones to retry."""
    failures: list[dict[str, str]] = []
    for record in records:
        with bound(correlation_id=record.correlation_id, message_id=record.message_id):
            try:
                handle(record)
            except Exception as exc:  # each record fails alone; the error is reported, never swallowed
                log.warning("message %s failed (receive %d): %r", record.message_id, record.receive_count, exc)
                if not _dead_letter(record, exc, dead_letters, give_up, max_receives):
                    failures.append({"itemIdentifier": record.message_id})
    return {"batchItemFailures": failures}


def _dead_letter(
    record: QueueRecord,
    exc: Exception,
    dead_letters: DeadLetters | None,
    give_up: Callable[[QueueRecord, Exception], None] | None,
    max_receives: int,
) -> bool:
    """``True`` when the record is parked for good (so it must not be retried)."""
    if dead_letters is None or record.receive_count < max_receives:
        return False
    try:
        dead_letters.send(record.body, type(exc).__name__, str(exc))
    except Exception:  # the redrive policy will move it on the next receive instead
        log.exception("could not dead-letter message %s; leaving it to the redrive policy", record.message_id)
        return False
    if give_up is not None:
        try:
            give_up(record, exc)
        except Exception:  # the message is parked with its reason; the DLQ alarm brings an operator
            log.exception("giving up on message %s left its order as it was", record.message_id)
    return True
