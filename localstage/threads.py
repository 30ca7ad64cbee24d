"""Threads the stage keeps between tasks, and calls served on their caller's thread as on a new one.

**Kept threads** (``KeptThreads``). Each Lambda invocation's handler runs on a thread of its own, so
that it can be left behind when its invocation times out (localstage/lambdas.py), and each
asynchronous delivery waits out its retries on one (localstage/async_invoke.py). Starting a thread
(and mapping its stack) per task, with the in-process calls below, was about a tenth of the stage's
busy time under load and most of its system time. A task takes an idle kept thread or starts one,
so it never waits for another task to finish; a thread that ends its task while ``keep`` others are
idle ends too. A kept thread is as clean as a new one for what the stage puts on threads: every
thread-local the stage, the app and the X-Ray SDK's Lambda context set is set inside a block that
restores it (the SDK's context starts afresh for each invocation's trace header), and each task runs
in a new, empty ``contextvars.Context``, which is what a new thread starts with. This is also what
Lambda does: an execution environment's runtime serves one invocation after another on one thread.

**Detached calls** (``run_detached``). An in-process SDK call's server side must not run as its
caller (localstage/inprocess.py). It runs on the caller's thread with every registered thread-local
empty and a new, empty context, and the caller's state restored afterwards: a handoff to another
thread and back cost about a third of a ``GetItem``'s CPU.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class Task:
    """One task's outcome: ``wait`` for it, then read ``result`` or ``failure``."""

    __slots__ = ("done", "failure", "name", "result", "run")

    def __init__(self, run: Callable[[], Any], name: str) -> None:
        self.run = run
        self.name = name
        self.done = threading.Lock()
        self.done.acquire()  # released by the thread when the task has ended
        self.result: Any = None
        self.failure: BaseException | None = None

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the task ended (within ``timeout`` seconds; ``None``: however long it takes)."""
        ended = self.done.acquire(timeout=-1 if timeout is None else max(0.0, timeout))
        if ended:
            self.done.release()  # ended stays readable: a second wait returns at once
        return ended

    def outcome(self) -> Any:
        """``result``, or ``failure`` raised on the caller's thread."""
        if self.failure is not None:
            raise self.failure
        return self.result


class KeptThreads:
    """Runs each task on a kept idle thread, or on a new one when none is idle."""

    def __init__(self, name: str, keep: int = 32) -> None:
        self._name = name
        self._keep = keep
        self._lock = threading.Lock()
        self._idle: list[tuple[threading.Lock, list[Task]]] = []
        self.started = 0  # threads started so far (tests read it)

    def submit(self, run: Callable[[], Any], name: str | None = None) -> Task:
        """Start ``run`` on a thread named ``name`` (default: the pool's name); returns its task."""
        task = Task(run, name or self._name)
        with self._lock:
            slot = self._idle.pop() if self._idle else None
            if slot is None:
                self.started += 1
        if slot is None:
            wake = threading.Lock()
            wake.acquire()
            thread = threading.Thread(target=self._serve, args=((wake, [task]),), name=task.name, daemon=True)
            thread.start()
        else:
            slot[1].append(task)
            slot[0].release()
        return task

    def _serve(self, slot: tuple[threading.Lock, list[Task]]) -> None:
        wake, tasks = slot
        me = threading.current_thread()
        while True:
            task = tasks.pop()
            me.name = task.name
            try:
                task.result = contextvars.Context().run(task.run)
            except BaseException as exc:  # handed to whoever reads the outcome
                task.failure = exc
            task.done.release()
            del task
            with self._lock:
                if len(self._idle) >= self._keep:
                    return
                self._idle.append(slot)
            wake.acquire()  # the next task for this thread


# -- Serving a call on its caller's thread, detached from the caller's state ---------------------------

_DETACHED: list[threading.local] = []  # the thread-locals a call served in process must not see
# .depth: calls being served on this thread; .counted: whether to count their CPU (a handler's thread);
# .cpu_s: the CPU they took, outermost calls only
_served = threading.local()


def detach_from_served_calls(local: threading.local) -> threading.local:
    """Register ``local``: a call served in process (``run_detached``) sees it empty, and its owner's
    values are back when the call returns. Every thread-local the stage or the app sets on a thread that
    makes SDK calls is registered where it is made; returns ``local``."""
    if not any(known is local for known in _DETACHED):
        _DETACHED.append(local)
    return local


def served_cpu_s() -> float:
    """CPU seconds this thread spent serving in-process calls inside ``counting_served_cpu``."""
    return float(getattr(_served, "cpu_s", 0.0))


@contextmanager
def counting_served_cpu() -> Iterator[None]:
    """Count, in ``served_cpu_s``, the CPU of the calls this thread serves inside the block (what a Lambda
    handler's CPU time must leave out). Only there: reading a thread's CPU clock is a system call."""
    previous = getattr(_served, "counted", False)
    _served.counted = True
    try:
        yield
    finally:
        _served.counted = previous


def run_detached(serve: Callable[[], Any]) -> Any:
    """``serve()`` on this thread as if on a new one: every registered thread-local empty, a new empty
    ``contextvars.Context``; the caller's state restored afterwards, whatever happens.

    Inside ``counting_served_cpu`` the CPU it takes is added to ``served_cpu_s`` (once, for nested
    calls), so that the Lambda emulator does not count the embedded AWS's work for a handler's call
    as the handler's.
    """
    saved = [(local, dict(local.__dict__)) for local in _DETACHED]
    for local, _ in saved:
        local.__dict__.clear()
    depth = getattr(_served, "depth", 0)
    timed = depth == 0 and getattr(_served, "counted", False)
    _served.depth = depth + 1
    started = time.thread_time() if timed else 0.0
    try:
        return contextvars.Context().run(serve)
    finally:
        _served.depth = depth
        if timed:
            _served.cpu_s = served_cpu_s() + time.thread_time() - started
        for local, state in saved:
            local.__dict__.clear()
            local.__dict__.update(state)
