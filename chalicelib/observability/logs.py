"""One JSON object per log line, carrying the invocation's context.

Every line has level, message, logger, function, request id and the
correlation id that follows an order from the API through SQS, the workflow
and the events, so one CloudWatch Logs Insights query finds an order's story:
``fields @timestamp, function, message | filter correlation_id = "..."``.
"""

from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any, Iterator

_NOTHING_BOUND: dict[str, str] = {}  # the default; ``annotate`` never mutates it
_context: ContextVar[dict[str, str]] = ContextVar("log_context", default=_NOTHING_BOUND)

# Attributes every LogRecord has; anything else passed through ``extra=`` is emitted as a field.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            **_context.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
            line["error_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return json.dumps(line, default=str, separators=(",", ":"))


def configure(level: int = logging.INFO) -> None:
    """Give the root logger one JSON handler (Lambda's runtime installs a plain one; replace its format)."""
    root = logging.getLogger()
    root.setLevel(level)
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stdout))
    for handler in root.handlers:
        if not isinstance(handler.formatter, JsonFormatter):
            handler.setFormatter(JsonFormatter())


@contextmanager
def bound(**fields: str | None) -> Iterator[None]:
    """Add fields (function, request_id, correlation_id, order_id...) to every line logged inside."""
    token = push(**fields)
    try:
        yield
    finally:
        pop(token)


def push(**fields: str | None) -> Token[dict[str, str]]:
    """Open a ``bound`` scope by hand; ``pop`` its token to close it.

    For the per-invocation path (``invocation.observe``), where a generator-based context manager
    costs more than the binding itself.
    """
    return _context.set({**_context.get(), **{k: v for k, v in fields.items() if v}})


def pop(token: Token[dict[str, str]]) -> None:
    _context.reset(token)


def annotate(**fields: str | None) -> bool:
    """Add fields to the innermost ``bound`` scope, until it ends; ``False`` (and nothing) outside any scope.

    For ids learnt mid-invocation: a workflow task receives only the order id and learns the
    order's correlation id when it reads the order. Each ``bound`` scope owns a fresh dict, so
    the fields disappear with the scope that was active when they were added.
    """
    scope = _context.get()
    if scope is _NOTHING_BOUND:
        return False
    scope.update({k: v for k, v in fields.items() if v})
    return True


def current(field: str) -> str | None:
    return _context.get().get(field)
