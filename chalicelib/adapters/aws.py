"""boto3 clients: created lazily, once per process, with one botocore ``Config``.

Endpoints are not set here: boto3 honours ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_<SERVICE>``, so the same code reaches the embedded local
AWS or the real one.
"""

from __future__ import annotations

import threading
from typing import Any

# Standard retry mode: exponential backoff with jitter on throttling and 5xx, bounded by
# max_attempts; short timeouts, because a Lambda invocation has a budget of its own.
CLIENT_OPTIONS: dict[str, Any] = {
    "retries": {"mode": "standard", "max_attempts": 4},
    "connect_timeout": 2,
    "read_timeout": 10,
    "tcp_keepalive": True,
}

_lock = threading.Lock()
_clients: dict[tuple[str, str], Any] = {}
_session: list[Any] = []  # the process's one boto3 session, made with the first client


def client(service: str, region: str) -> Any:
    """The process-wide client for ``service``; boto3 clients are thread-safe."""
    key = (service, region)
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:
        if key not in _clients:
            # Deferred: importing boto3/botocore costs ~40 ms of cold start, paid only by the first
            # request that needs AWS (never by in-memory use).
            from botocore.config import Config

            _clients[key] = _shared_session().client(service, region_name=region, config=Config(**CLIENT_OPTIONS))
        return _clients[key]


def session() -> Any:
    """The process's one boto3 session, which every client here is made from (created on first use).

    The local stage's Lambda zygote makes it before forking environments and loads the app's service
    models into it, so that a new environment's first clients do not parse them again
    (localstage/lambda_worker.py). It holds no credentials until a client is made.
    """
    with _lock:
        return _shared_session()


def _shared_session() -> Any:
    # One session for every client: each new session loads botocore's endpoint, partition and
    # defaults data again (about 80 ms a client here); a session is not thread-safe, so clients are
    # made under the lock.
    if not _session:
        import boto3

        _session.append(boto3.session.Session())
    return _session[0]


def reset_clients(*, keep_session: bool = False) -> None:
    """Forget cached clients and their session (tests that switch endpoints or credentials).

    ``keep_session``: forget only the clients, for tests that each start a fresh moto mock with the
    same fake credentials: a new session would load botocore's models again (about 0.4 s a test).
    """
    with _lock:
        _clients.clear()
        if not keep_session:
            _session.clear()
