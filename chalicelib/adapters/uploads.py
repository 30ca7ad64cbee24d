"""Presigned POST forms: S3 for a deployed stage, a local look-alike for tests and the in-memory mode.

A presigned POST (not PUT) because only a POST policy can cap the size: S3
itself refuses a body outside ``content-length-range`` or of another type.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import DependencyUnavailableError
from chalicelib.domain.ids import Clock, utc_now


def policy_conditions(content_type: str, max_bytes: int) -> list[Any]:
    """The conditions every form carries: exactly this type, between 1 byte and ``max_bytes``."""
    return [{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]]


def decode_policy(form: dict[str, Any]) -> dict[str, Any]:
    """The policy document of a form from either signer (base64 JSON in ``fields["policy"]``)."""
    policy: dict[str, Any] = json.loads(base64.b64decode(form["fields"]["policy"]))
    return policy


class S3UploadSigner:
    """Signs forms for one bucket; signing is local, S3 checks the policy when the browser posts."""

    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self._bucket = bucket

    def presign(self, key: str, content_type: str, max_bytes: int, expires_in: int) -> dict[str, object]:
        try:
            form = self._s3.generate_presigned_post(
                Bucket=self._bucket,
                Key=key,
                Fields={"Content-Type": content_type},
                Conditions=policy_conditions(content_type, max_bytes),
                ExpiresIn=expires_in,
            )
        except (ClientError, BotoCoreError) as exc:
            # E.g. credentials that cannot be loaded: nothing the caller did wrong.
            raise DependencyUnavailableError("The upload form could not be signed; please retry") from exc
        return {"url": form["url"], "fields": dict(form["fields"])}


class InMemoryUploadSigner:
    """A form with S3's SigV4 field names and a readable policy, posted to a local URL.

    Deterministic for a given clock, so tests can compare whole forms.
    """

    def __init__(
        self,
        bucket: str = "local-uploads",
        base_url: str = "http://localhost:8000/_uploads",
        clock: Clock = utc_now,
    ) -> None:
        self._bucket = bucket
        self._url = f"{base_url.rstrip('/')}/{bucket}"
        self._clock = clock

    def presign(self, key: str, content_type: str, max_bytes: int, expires_in: int) -> dict[str, object]:
        now = self._clock().astimezone(UTC)
        policy = {
            "expiration": (now + timedelta(seconds=expires_in)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "conditions": [*policy_conditions(content_type, max_bytes), {"bucket": self._bucket}, {"key": key}],
        }
        encoded = base64.b64encode(json.dumps(policy).encode("utf-8")).decode("ascii")
        fields = {
            "Content-Type": content_type,
            "key": key,
            "x-amz-algorithm": "AWS4-HMAC-SHA256",
            "x-amz-credential": f"local/{now:%Y%m%d}/local/s3/aws4_request",
            "x-amz-date": f"{now:%Y%m%dT%H%M%SZ}",
            "policy": encoded,
            # Not a real signature: nothing local verifies it, it only fills the field S3 would check.
            "x-amz-signature": hmac.new(b"local", encoded.encode("ascii"), hashlib.sha256).hexdigest(),
        }
        return {"url": self._url, "fields": fields}
