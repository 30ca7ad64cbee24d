"""Stage throttling as API Gateway applies it: a token bucket per stage, or per method with its own limits.

``update_stage`` with ``/*/*/throttling/rateLimit`` and ``/burstLimit`` (what ``scripts/deploy.py``
sets) gives every method of the stage one bucket: it holds ``burstLimit`` tokens, refills at
``rateLimit`` per second, starts full, and a request without a token is answered 429 ``THROTTLED``.
A method setting (``/~1items~1{id}/GET/throttling/...``) gives that method a bucket of its own.
The limits are read at each request, so a change applies at once (a changed limit starts a new, full
bucket). Not modelled: the account-level limit (10,000 requests per second) and usage plans' limits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

STAGE_WIDE = "*/*"


@dataclass
class _Bucket:
    rate: float
    burst: int
    tokens: float
    refilled_at: float


def setting_key(resource_path: str, http_method: str) -> str:
    """The method setting's key, as ``update_stage`` paths name it: ``/items`` GET -> ``~1items/GET``."""
    return f"{resource_path.replace('/', '~1')}/{http_method}"


def limits(
    method_settings: Mapping[str, Mapping[str, Any]], resource_path: str, http_method: str
) -> tuple[str, float, int] | None:
    """(setting key, rate, burst) that applies to the method, or ``None`` if the stage sets no throttling."""
    for key in (setting_key(resource_path, http_method), setting_key(resource_path, "*"), STAGE_WIDE):
        setting = method_settings.get(key) or {}
        if "throttlingRateLimit" in setting or "throttlingBurstLimit" in setting:
            return key, float(setting.get("throttlingRateLimit", 0.0)), int(setting.get("throttlingBurstLimit", 0))
    return None


class StageThrottle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}
        self._lock = threading.Lock()

    def admit(
        self,
        api_id: str,
        stage: str,
        method_settings: Mapping[str, Mapping[str, Any]],
        resource_path: str,
        http_method: str,
    ) -> bool:
        """Whether a request to the method gets a token now (and takes it)."""
        found = limits(method_settings, resource_path, http_method)
        if found is None:
            return True
        key, rate, burst = found
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get((api_id, stage, key))
            if bucket is None or (bucket.rate, bucket.burst) != (rate, burst):
                bucket = self._buckets[(api_id, stage, key)] = _Bucket(rate, burst, float(burst), now)
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.refilled_at) * rate)
            bucket.refilled_at = now
            if bucket.tokens < 1:
                return False
            bucket.tokens -= 1
            return True
