"""Per-invocation capture of what a handler prints, for its CloudWatch log stream.

On AWS everything a function writes to stdout/stderr lands in its log stream.
Here all functions share one process, so ``sys.stdout``/``sys.stderr`` are
replaced once by a tee that also copies what a thread writes into the buffer of
the invocation that thread is running. Install it before the app is imported:
Chalice's ``app.log`` handler binds ``sys.stdout`` when the app is created.
Threads a handler starts itself are not attributed to the invocation.

Logging handlers made before the tee (``logging.basicConfig`` in ``python -m localstage`` binds the
real stderr) are pointed at it too: on AWS a function's ``logging`` lines reach its log group like
its prints, and here they would otherwise go to the console only.
"""

from __future__ import annotations

import logging
import sys
import threading
from contextlib import contextmanager
from typing import Iterator, TextIO

from localstage.threads import detach_from_served_calls

EMF_PREFIX = '{"_aws"'


class _Tee:
    """A text stream that writes through and copies into the current thread's capture."""

    def __init__(self, target: TextIO, captures: threading.local) -> None:
        self._target = target
        self._captures = captures

    def write(self, text: str) -> int:
        buffer: list[str] | None = getattr(self._captures, "buffer", None)
        if buffer is not None:
            buffer.append(text)
            if text.startswith(EMF_PREFIX):
                # A metrics document: it reaches the log group and CloudWatch; on the console it
                # would bury the stage's own lines under one JSON blob per invocation.
                return len(text)
        return self._target.write(text)

    def flush(self) -> None:
        self._target.flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self._target, name)


_captures = detach_from_served_calls(threading.local())
_install_lock = threading.Lock()


def install() -> None:
    """Route stdout/stderr, and the root logger's handlers that write to them, through the tee (idempotent)."""
    if isinstance(sys.stdout, _Tee) and isinstance(sys.stderr, _Tee):
        return  # every invocation's capture calls this: no lock once installed
    with _install_lock:
        tees: dict[int, _Tee] = {}
        if not isinstance(sys.stdout, _Tee):
            tees[id(sys.stdout)] = sys.stdout = _Tee(sys.stdout, _captures)
        if not isinstance(sys.stderr, _Tee):
            tees[id(sys.stderr)] = sys.stderr = _Tee(sys.stderr, _captures)
        rebind(logging.getLogger().handlers, tees)


def rebind(handlers: list[logging.Handler], tees: dict[int, _Tee]) -> None:
    """Point each stream handler that writes to a raw stream (by ``id``) at the tee that wraps it."""
    for handler in handlers:
        if isinstance(handler, logging.StreamHandler):
            tee = tees.get(id(handler.stream))
            if tee is not None:
                handler.setStream(tee)


@contextmanager
def captured() -> Iterator[list[str]]:
    """Collect what this thread writes while inside the block."""
    install()
    buffer: list[str] = []
    _captures.buffer = buffer
    try:
        yield buffer
    finally:
        _captures.buffer = None


def record(text: str) -> None:
    """Add ``text`` to this thread's capture without writing it through (a worker process printed it already)."""
    buffer: list[str] | None = getattr(_captures, "buffer", None)
    if buffer is not None and text:
        buffer.append(text)
