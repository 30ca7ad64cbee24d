"""A thread that does one thing every few seconds until stopped (scheduler, status watcher)."""

from __future__ import annotations

import logging
import threading
from typing import Self

log = logging.getLogger("localstage.background")


class PeriodicWorker:
    """Calls ``tick`` every ``interval_s``; a failing tick is logged and the next one still runs."""

    thread_name = "periodic-worker"

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> object:
        """One round of work; what it returns is the subclass's business (the loop ignores it)."""
        raise NotImplementedError  # pragma: no cover - every worker defines its tick

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the worker to end after its current tick, without waiting (``stop()`` waits)."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.tick()
            except Exception:  # a broken tick must not end the worker; say why and tick again
                log.exception("%s: tick failed", self.thread_name)
