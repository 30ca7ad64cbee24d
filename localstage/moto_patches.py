"""Corrections to moto that the local stage needs to behave like AWS under concurrency.

moto's DynamoDB backend is not thread-safe: a cancelled ``TransactWriteItems``
restores a copy of the whole table, undoing writes other threads made meanwhile.
DynamoDB applies each write atomically, and the stage serves HTTP requests, SQS
batches and workflow tasks on many threads at once (N concurrent orders for the
last items in stock must leave exactly 0, never a resurrected count). One lock
around moto's write operations restores per-write atomicity.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

WRITE_OPERATIONS = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_lock = threading.RLock()
_originals: dict[str, Callable[..., Any]] = {}


def _locked(original: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return original(*args, **kwargs)

    call.__wrapped__ = original  # type: ignore[attr-defined]
    return call


def serialise_dynamodb_writes() -> None:
    """Install the lock (idempotent)."""
    for name in WRITE_OPERATIONS:
        if name not in _originals and hasattr(DynamoDBBackend, name):
            _originals[name] = getattr(DynamoDBBackend, name)
            setattr(DynamoDBBackend, name, _locked(_originals[name]))


def restore_dynamodb_writes() -> None:
    for name, original in _originals.items():
        setattr(DynamoDBBackend, name, original)
    _originals.clear()


@contextmanager
def serialised_dynamodb_writes() -> Iterator[None]:
    """The lock for the duration of a block (tests that run moto in-process)."""
    installed_here = not _originals
    serialise_dynamodb_writes()
    try:
        yield
    finally:
        if installed_here:
            restore_dynamodb_writes()
