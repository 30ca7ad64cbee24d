"""A throttling switch for the embedded AWS: a fraction of requests answered "slow down".

It shows that the app's clients (``chalicelib/adapters/aws.py``: standard retry mode,
4 attempts) ride out throttling. Each protocol gets the error its SDK parser expects,
a code botocore classifies as throttling:

- JSON protocol (``X-Amz-Target``: DynamoDB, SQS, Cognito, Secrets Manager, EventBridge,
  Step Functions, Logs): 400 ``{"__type": "ThrottlingException"}``;
- query protocol (form-encoded ``Action=``: SNS, CloudWatch, IAM, STS): 400
  ``<ErrorResponse><Error><Code>Throttling</Code>...``;
- S3 (REST-XML): 503 ``<Error><Code>SlowDown</Code>...``;
- REST-JSON (Lambda): 429 with ``x-amzn-ErrorType: TooManyRequestsException``.

The model is a short burst, as AWS's token buckets refill between backed-off retries: only a
request's first two attempts (botocore's ``amz-sdk-request: attempt=N`` header) may be
throttled, so a client that retries at least twice always gets through, and one that does
not retry fails at the configured rate. Requests without that header count as first attempts.

- ``LOCAL_AWS_THROTTLE_RATE``: the probability (0..1) for each eligible attempt;
- ``LOCAL_AWS_THROTTLE_SERVICES``: comma-separated signing names (``dynamodb,sns``), default all;
- ``LOCAL_AWS_THROTTLE_SEED``: seeds the draws.

The stage switches it on once it is ready, so provisioning and seeding are never throttled.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("localstage.throttle")

RATE = "LOCAL_AWS_THROTTLE_RATE"
SERVICES = "LOCAL_AWS_THROTTLE_SERVICES"
SEED = "LOCAL_AWS_THROTTLE_SEED"
LAST_THROTTLED_ATTEMPT = 2
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_ATTEMPT = re.compile(r"attempt=(\d+)")

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ThrottleConfigError(ValueError):
    """A ``LOCAL_AWS_THROTTLE_*`` variable is malformed."""


@dataclass(frozen=True)
class ThrottlePlan:
    rate: float = 0.0
    services: frozenset[str] = frozenset()  # empty: every service
    seed: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ThrottlePlan:
        try:
            rate = float(env.get(RATE) or 0)
            seed = int(env[SEED]) if env.get(SEED) else None
        except ValueError as exc:
            raise ThrottleConfigError(f"bad throttle switch: {exc}") from exc
        if not 0 <= rate <= 1:
            raise ThrottleConfigError(f"{RATE} must be between 0 and 1, got {rate}")
        services = frozenset(s.strip() for s in (env.get(SERVICES) or "").split(",") if s.strip())
        return cls(rate, services, seed)

    @property
    def enabled(self) -> bool:
        return self.rate > 0


def signing_service(environ: Mapping[str, Any]) -> str | None:
    """The service a SigV4-signed request is for (its credential scope); ``None`` if unsigned."""
    match = _SCOPE.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    return match.group(1) if match else None


def throttle_response(environ: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status, headers and body of a throttling error in the request's protocol."""
    request_id = str(uuid.uuid4())
    service = signing_service(environ)
    if environ.get("HTTP_X_AMZ_TARGET"):
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        return "400 Bad Request", [("Content-Type", "application/x-amz-json-1.0")], body
    if str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
        xml = (
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return "400 Bad Request", [("Content-Type", "text/xml")], xml.encode()
    if service == "s3":
        xml = (
            "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        )
        return "503 Slow Down", [("Content-Type", "application/xml")], xml.encode()
    body = json.dumps({"Type": "User", "message": "Rate exceeded"}).encode()
    headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", "TooManyRequestsException")]
    return "429 Too Many Requests", headers, body


class ThrottlingMiddleware:
    """WSGI middleware in front of moto's app; inactive until ``activate()``."""

    def __init__(self, app: Wsgi, plan: ThrottlePlan) -> None:
        self.app = app
        self.plan = plan
        self.active = False
        self.throttled: dict[str, int] = {}
        self._random = random.Random(plan.seed)  # noqa: S311 - fault injection, not cryptography  # nosec B311
        self._lock = threading.Lock()

    def activate(self) -> None:
        self.active = self.plan.enabled

    def _should_throttle(self, environ: Mapping[str, Any]) -> str | None:
        if not self.active or str(environ.get("PATH_INFO", "")).startswith("/moto-api"):
            return None
        service = signing_service(environ)
        if service is None or (self.plan.services and service not in self.plan.services):
            return None
        attempt = _ATTEMPT.search(str(environ.get("HTTP_AMZ_SDK_REQUEST", "")))
        if attempt and int(attempt.group(1)) > LAST_THROTTLED_ATTEMPT:
            return None
        with self._lock:
            if self._random.random() >= self.plan.rate:
                return None
            self.throttled[service] = self.throttled.get(service, 0) + 1
        return service

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        service = self._should_throttle(environ)
        if service is None:
            return self.app(environ, start_response)
        _drain(environ)  # an unread body would be taken for the next request on a kept-alive connection
        status, headers, body = throttle_response(environ)
        log.info("throttled a %s request (%s)", service, RATE)
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]


def _drain(environ: Mapping[str, Any]) -> None:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length > 0:
        environ["wsgi.input"].read(length)
