"""What API Gateway does with a Lambda authorizer's answer, shared by both local gateways.

``localstage.http_gateway`` (Chalice's local server, ``make run``'s HTTP API) and the data plane of
deployed REST APIs (``localstage.apigateway.dataplane``) both stand in for API Gateway in front of
an authorizer function, so they share its rules:

- the answer is cached per authorizer and token for the authorizer's ``authorizerResultTtlInSeconds``
  (300 when unset; 0 turns caching off), and a cached answer is used without invoking the function;
- an authorizer that raises ``Exception("Unauthorized")`` makes API Gateway answer 401.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

DEFAULT_RESULT_TTL_SECONDS = 300  # API Gateway's default authorizerResultTtlInSeconds
UNAUTHORIZED = "Unauthorized"  # the one error message API Gateway turns into a 401

Result = TypeVar("Result")


def raised_unauthorized(error_payload: Any) -> bool:
    """Whether an authorizer's error payload (the runtime's ``errorMessage``) asks for a 401."""
    return isinstance(error_payload, dict) and error_payload.get("errorMessage") == UNAUTHORIZED


class PolicyCache(Generic[Result]):
    """API Gateway's authorizer cache: key (authorizer, token...) -> result until its TTL passes."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, Result]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Result | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry[0] < self._clock():
            return None
        return entry[1]

    def put(self, key: Hashable, ttl_s: int, result: Result) -> None:
        if ttl_s > 0:
            with self._lock:
                self._entries[key] = (self._clock() + ttl_s, result)
