"""One execution environment as a process: a function's code behind its own Runtime API.

Lambda runs each execution environment as a process of its own, with its own environment variables
and credentials, and throws it away on a timeout. A process is the one thing here that can be
stopped at any moment (Python cannot kill a thread) and whose environment is truly its own, so the
deployed code sees what Lambda gives it and nothing of the stage.

The runtime's stdout and stderr (one pipe) are read as they come and handed, line by line, to the
thread of the invocation that is running, so the emulator's capture puts them in the invocation's log
stream, between START and END. Output written before the runtime posts its answer is in the pipe by
then (awslambdaric writes unbuffered), and is drained before the invocation returns.
"""

from __future__ import annotations

import codecs
import json
import logging
import os
import select
import shutil
import signal
import subprocess  # starts our own interpreter on awslambdaric, no shell  # nosec B404
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from localstage.lambda_model import RuntimeReportedError, Usage
from localstage.runtime.api import Answer, Invocation, RuntimeApi

log = logging.getLogger("localstage.runtime")

INIT_TIMEOUT_S = 10.0  # Lambda's limit for the Init phase of an on-demand function
KILL_GRACE_S = 1.0  # past the deadline, a worker nobody stopped stops itself
MAX_PENDING_OUTPUT = 1_048_576  # what a runtime printed between invocations, kept for the next one
_SIGNALS = {signal.SIGKILL: "killed", signal.SIGSEGV: "segmentation fault", signal.SIGABRT: "aborted"}

Forward = Callable[[str], None]


class WorkerProcess:
    """A runtime process and its Runtime API; one invocation at a time."""

    def __init__(
        self,
        label: str,
        argv: Sequence[str],
        cwd: Path,
        environment: Mapping[str, str],
        scratch: Path | None = None,
        init_timeout_s: float = INIT_TIMEOUT_S,
    ) -> None:
        self.label = label  # "<function>:<version>", for logs
        self._argv = list(argv)
        self._cwd = cwd
        self._environment = dict(environment)
        self._scratch = scratch  # the environment's own TMPDIR, removed with it
        self._init_timeout_s = init_timeout_s
        self._changed = threading.Condition()
        self.api = RuntimeApi(self._changed)
        self._process: subprocess.Popen[bytes] | None = None
        self._output: _Output | None = None
        self._failure: Answer | None = None  # why the init failed (an init error, an exit, a timeout)
        self._stopped = False
        self.busy = False
        self.last_usage: Usage | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> float:
        """Spawn the runtime and wait for its first ``/next`` (the end of its init); the init's ms."""
        started = time.monotonic()
        self.api.start()
        environment = {**self._environment, "AWS_LAMBDA_RUNTIME_API": self.api.address}
        if self._scratch is not None:
            self._scratch.mkdir(parents=True, exist_ok=True)
        # Our own interpreter, argv a list (the handler string is one argument, never a shell's).
        self._process = subprocess.Popen(  # noqa: S603  # nosec B603
            self._argv,
            cwd=self._cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a kill reaches whatever it started too
        )
        assert self._process.stdout is not None
        self._output = _Output(self._process.stdout, self._changed, self.label).start()
        deadline = started + self._init_timeout_s
        with self._changed:
            while self.api.first_next_at is None and self.api.init_error is None and not self._ended():
                if self._stopped:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            ready_at = self.api.first_next_at
        if ready_at is not None and self.api.init_error is None:
            return (ready_at - started) * 1000
        if self.api.init_error is not None:
            self._failure = self.api.init_error
        elif self._ended():
            self._wait_for_exit()
            self._failure = self._exit_answer(f"Runtime exited with error: {self._status()}")
        else:
            timeout = f"Runtime did not finish its init within {self._init_timeout_s:.2f} seconds"
            self._failure = self._exit_answer(timeout, "Sandbox.Timedout")
        log.warning("%s could not start: %s", self.label, self._failure.error_payload().get("errorMessage"))
        self._kill()
        return (time.monotonic() - started) * 1000

    def invoke(self, invocation: Invocation, deadline: float, forward: Forward) -> bytes:
        """Hand ``invocation`` to the runtime; its response, or ``RuntimeReportedError`` with its error.

        ``deadline`` (monotonic) is the invocation's timeout; the emulator stops this worker then, and
        the worker stops itself ``KILL_GRACE_S`` later if nobody did. ``forward`` gets what the
        runtime prints, on the caller's thread.
        """
        assert self._output is not None
        if self._failure is not None:
            forward(self._output.take(final=True))
            raise RuntimeReportedError(self._failure.error_payload(), environment_lost=True)
        cpu_before = _cpu_ms(self.pid)
        self.busy, self.last_usage = True, None
        try:
            self.api.offer(invocation)
            answer = self._await(invocation.request_id, deadline, forward)
        except RuntimeError as exc:  # the Runtime API closed under us: the environment was stopped
            answer = self._exit_answer(f"RequestId: {invocation.request_id} Error: {exc}")
        finally:
            self.busy = False
        cpu_after, peak = _cpu_ms(self.pid), _peak_memory_mb(self.pid)
        if cpu_before is not None and cpu_after is not None and peak is not None:
            self.last_usage = Usage(cpu_ms=cpu_after - cpu_before, max_memory_mb=peak)
        if answer.error_type is None:
            return answer.body
        raise RuntimeReportedError(answer.error_payload(), environment_lost=answer.fatal)

    def _await(self, request_id: str, deadline: float, forward: Forward) -> Answer:
        assert self._output is not None
        while True:
            with self._changed:
                answer = self.api.answer(request_id)
                if answer is None and not self._ended() and not self._stopped:
                    self._changed.wait(max(0.0, deadline + KILL_GRACE_S - time.monotonic()))
                    answer = self.api.answer(request_id)
                ended, stopped = self._ended(), self._stopped
            if answer is not None:
                self._output.drain()  # what it printed before answering is in the pipe by now
                forward(self._output.take(final=True))
                return answer
            forward(self._output.take(final=False))
            if ended or stopped:
                self._wait_for_exit()
                forward(self._output.take(final=True))
                return self._exit_answer(f"RequestId: {request_id} Error: Runtime exited with error: {self._status()}")
            if time.monotonic() >= deadline + KILL_GRACE_S:
                log.warning("%s overran its deadline and nobody stopped it: stopping it", self.label)
                self.stop()

    def _ended(self) -> bool:
        return self._output is not None and self._output.ended

    def _exit_answer(self, message: str, error_type: str = "Runtime.ExitError") -> Answer:
        return Answer(json.dumps({"errorType": error_type, "errorMessage": message}).encode(), error_type, fatal=True)

    def _wait_for_exit(self) -> None:
        if self._process is None:
            return
        try:
            self._process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            log.warning("%s closed its output but is still running; it will be killed", self.label)

    def _status(self) -> str:
        code = self._process.returncode if self._process is not None else None
        if code is None:
            return "signal: killed" if self._stopped else "exit status unknown"
        if code < 0:
            return f"signal: {_SIGNALS.get(signal.Signals(-code), signal.Signals(-code).name)}"
        return f"exit status {code}"

    def stop(self) -> None:
        """Kill the runtime (and anything it started) and release its API, output and scratch space."""
        with self._changed:
            if self._stopped:
                return
            self._stopped = True
            self._changed.notify_all()
        self._kill()
        self.api.close()
        if self._output is not None:
            self._output.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def _kill(self) -> None:
        process = self._process
        if process is None:
            return
        # returncode None: not reaped yet, so its pid (and group id) cannot belong to anyone else.
        if process.returncode is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                log.debug("%s: process group %d had already exited", self.label, process.pid)
        try:
            process.wait(timeout=5)  # reap it: no zombie
        except subprocess.TimeoutExpired:
            log.error("%s: process %d survived SIGKILL for 5 s", self.label, process.pid)


class _Output:
    """The runtime's stdout and stderr, read as they come and kept until an invocation takes them."""

    def __init__(self, pipe: IO[bytes], changed: threading.Condition, label: str) -> None:
        self._pipe = pipe
        self._fd = pipe.fileno()
        os.set_blocking(self._fd, False)
        self._changed = changed
        self._label = label
        self._lock = threading.Lock()  # one reader at a time: the thread below, or drain() after an answer
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._text = ""
        self.ended = False  # end of file: the runtime (and all it started) exited
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"runtime-output-{label}", daemon=True)

    def start(self) -> _Output:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing = True
        self._thread.join(5)

    def _run(self) -> None:
        while not self.ended and not self._closing:
            readable, _, _ = select.select([self._fd], [], [], 0.2)
            if readable:
                self.drain()
        with self._lock:
            self._pipe.close()

    def drain(self) -> None:
        """Read everything the pipe holds right now."""
        with self._lock:
            if self._pipe.closed:
                return
            while not self.ended:
                try:
                    chunk = os.read(self._fd, 65_536)
                except BlockingIOError:
                    break
                if not chunk:
                    self.ended = True
                self._text += self._decoder.decode(chunk, final=not chunk)
            if len(self._text) > MAX_PENDING_OUTPUT:
                dropped = len(self._text) - MAX_PENDING_OUTPUT
                self._text = f"[localstage: {dropped} characters of output dropped]\n" + self._text[dropped:]
        with self._changed:
            self._changed.notify_all()

    def take(self, final: bool) -> str:
        """Complete lines read so far (``final``: everything, a last partial line included)."""
        with self._lock:
            cut = len(self._text) if final else self._text.rfind("\n") + 1
            taken, self._text = self._text[:cut], self._text[cut:]
        return taken


def _cpu_ms(pid: int | None) -> float | None:
    """User plus system CPU time of ``pid`` (Linux ``/proc``), or ``None`` if it cannot be read."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": field 3 (state) is fields[0]
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


def _peak_memory_mb(pid: int | None) -> int | None:
    """The process's peak resident set (``VmHWM``), what Lambda reports as Max Memory Used."""
    if pid is None:
        return None
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return -(-int(line.split()[1]) // 1024)  # kB, rounded up to MB
    return None
