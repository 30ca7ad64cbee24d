"""X-Ray subsegments when the SDK is packaged and a daemon is configured; a no-op otherwise.

aws-xray-sdk is not in requirements.txt: Chalice would then bundle botocore (~10 MB) into the
deployment package. A deployment vendors it (with wrapt, without botocore: the Lambda runtime has
botocore), see docs/observability.md. So every function here works without the SDK, and with it:

- only botocore is patched: ``patch_all()`` imports and wraps every library the SDK knows (requests,
  sqlite3, httplib...), hundreds of milliseconds of cold start for calls this code never makes;
- ``context_missing`` is ``IGNORE_ERROR``: Lambda sets ``AWS_XRAY_CONTEXT_MISSING=LOG_ERROR``,
  which the SDK prefers over ``configure()``'s argument, and that logs an error for every AWS call
  made outside a segment (tests, the local stage, a stage without active tracing).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

_lock = threading.Lock()
_recorder: Any = None  # the SDK's recorder once configured, else None
_configured = False


def configure(enabled: bool, recorder: Any = None) -> bool:
    """Set tracing up once per process; returns whether subsegments will be recorded.

    ``enabled`` comes from the settings (a daemon address is configured); ``recorder`` is for tests.
    Without the SDK this is a no-op, logged once at debug level.
    """
    global _recorder, _configured
    with _lock:
        if _configured:
            return _recorder is not None
        _configured = True
        if not enabled:
            return False
        if recorder is None:
            recorder = _sdk_recorder()
        _recorder = recorder
        return _recorder is not None


def _sdk_recorder() -> Any:
    try:
        from aws_xray_sdk.core import patch, xray_recorder
    except ImportError:
        log.debug("aws_xray_sdk is not packaged; tracing is off")
        return None
    xray_recorder.configure(context_missing="IGNORE_ERROR", service="ecommerce-backend")
    xray_recorder.context.context_missing = "IGNORE_ERROR"  # the env var would win over configure()
    patch(("botocore",))
    return xray_recorder


def reset() -> None:
    """Forget the configuration (tests)."""
    global _recorder, _configured
    with _lock:
        _recorder, _configured = None, False


@contextmanager
def subsegment(
    name: str, annotations: Mapping[str, Any] | None = None, metadata: Mapping[str, Any] | None = None
) -> Iterator[None]:
    """Record the block as a subsegment with searchable ``annotations`` and free-form ``metadata``.

    Annotations are indexed by X-Ray (``annotation.order_id = "ord_..."`` in a filter expression);
    values must be str, int, float or bool. Exceptions propagate; the SDK attaches them.

    >>> with subsegment("validate_order", {"order_id": "ord_1"}):
    ...     pass
    """
    recorder = _recorder
    if recorder is None:
        yield
        return
    with recorder.in_subsegment(name) as segment:
        if segment is not None:  # None when there is no parent segment (context missing, ignored)
            for key, value in (annotations or {}).items():
                if value is not None:
                    segment.put_annotation(key, value)
            for key, value in (metadata or {}).items():
                segment.put_metadata(key, value, "ecommerce")
        yield
