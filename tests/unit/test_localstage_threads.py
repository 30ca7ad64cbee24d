"""Kept threads (localstage/threads.py): reused when idle, never waited for, clean for each task."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any

import pytest

from localstage.threads import KeptThreads

pytestmark = pytest.mark.unit


def _run(threads: KeptThreads, run: Callable[[], Any]) -> Any:
    """``run()`` on a kept thread, waited for, as the emulator waits for a handler."""
    task = threads.submit(run)
    assert task.wait(5)
    return task.outcome()


def test_given_sequential_tasks_then_one_kept_thread_runs_them_each_in_a_fresh_context() -> None:
    marker: contextvars.ContextVar[str | None] = contextvars.ContextVar("marker", default=None)
    threads = KeptThreads("t")
    seen: list[tuple[str | None, int, str]] = []

    def task(n: int) -> int:
        seen.append((marker.get(), threading.get_ident(), threading.current_thread().name))
        marker.set("left behind")
        return n * 2

    assert [_run(threads, lambda n=n: task(n)) for n in range(5)] == [0, 2, 4, 6, 8]
    assert threads.started == 1
    assert [value for value, _, _ in seen] == [None] * 5
    assert len({ident for _, ident, _ in seen}) == 1 and seen[0][1] != threading.get_ident()


def test_given_a_task_still_running_then_the_next_gets_another_thread_and_a_timed_wait_says_so() -> None:
    threads = KeptThreads("t")
    release = threading.Event()
    blocked = threads.submit(lambda: release.wait(5), name="blocked")
    assert blocked.wait(0.05) is False  # what the emulator reads as a timeout
    names: list[str] = []
    assert threads.submit(lambda: names.append(threading.current_thread().name), name="next").wait(5)
    assert threads.started == 2 and names == ["next"]  # never queued behind the running task
    release.set()
    assert blocked.wait(5) and blocked.wait(0) and blocked.outcome() is True


def test_given_a_failing_task_then_its_exception_reaches_the_caller_and_the_thread_lives_on() -> None:
    threads = KeptThreads("t", keep=1)

    def broken() -> None:
        raise ValueError("failed on the kept thread")

    with pytest.raises(ValueError, match="failed on the kept thread"):
        _run(threads, broken)
    assert _run(threads, lambda: "after") == "after" and threads.started == 1


def test_given_more_idle_threads_than_kept_then_the_extra_ones_end() -> None:
    threads = KeptThreads("t", keep=1)
    release = threading.Event()
    first = threads.submit(lambda: release.wait(5))
    second = threads.submit(lambda: release.wait(5))
    release.set()
    assert first.wait(5) and second.wait(5)
    assert _run(threads, lambda: 1) == 1 and _run(threads, lambda: 2) == 2
    assert threads.started == 2 and len(threads._idle) == 1
