"""The role sessions deployed functions act as (``localstage.runtime.deployed``): one per function, renewed.

A deployed function's role is assumed once (session name = the function's name); its keys go to the
function's processes, and the same session is the emulator's principal for the function.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from localstage.iam.principals import Acting, acting_as, assume

SESSION_REFRESH_S = 6 * 3600  # sessions are issued for 12 h; a new environment after 6 h gets fresh keys


class RoleSessions:
    """One session of each deployed function's execution role, assumed through the embedded STS."""

    def __init__(self, sts: Any) -> None:
        self._sts = sts
        self._sessions: dict[str, tuple[Acting, float]] = {}
        self._lock = threading.Lock()

    def of(self, function: str, role_arn: str) -> Acting:
        """The function's session of ``role_arn``, assumed now if it has none (or one of another role)."""
        with self._lock:
            found = self._sessions.get(function)
        if found is not None and found[0].role_arn == role_arn and time.monotonic() - found[1] < SESSION_REFRESH_S:
            return found[0]
        with acting_as(None):  # Lambda assumes the role as the service, whoever's thread asks
            session = assume(self._sts, role_arn, function)
        with self._lock:
            self._sessions[function] = (session, time.monotonic())
        return session

    def get(self, function: str) -> Acting | None:
        with self._lock:
            found = self._sessions.get(function)
        return found[0] if found is not None else None

    def forget(self, function: str) -> None:
        with self._lock:
            self._sessions.pop(function, None)

    def names(self) -> set[str]:
        with self._lock:
            return set(self._sessions)


class Principals(Mapping[str, Acting]):
    """The emulator's principals: a deployed function's role session, else whatever the emulator had."""

    def __init__(self, sessions: RoleSessions, fallback: Mapping[str, Acting]) -> None:
        self._sessions = sessions
        self.fallback = fallback

    def __getitem__(self, name: str) -> Acting:
        found = self._sessions.get(name)
        return found if found is not None else self.fallback[name]

    def __iter__(self) -> Iterator[str]:
        return iter({*self._sessions.names(), *self.fallback})

    def __len__(self) -> int:
        return len({*self._sessions.names(), *self.fallback})
