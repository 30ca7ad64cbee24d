"""The reports bucket: cost-optimization reports out, memory-tuning results in."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.usage import TUNING_LATEST, TUNING_PREFIX, TuningResult

log = logging.getLogger(__name__)


class S3ReportStore:
    """``ReportStore`` on S3. Tuning results are found with one ListObjectsV2 per 1,000 keys, then read."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self.bucket = bucket

    def tuning_results(self) -> dict[str, TuningResult]:
        found: dict[str, TuningResult] = {}
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=TUNING_PREFIX):
            for entry in page.get("Contents", []):
                key = str(entry["Key"])
                function = key[len(TUNING_PREFIX) :].removesuffix("/" + TUNING_LATEST)
                if not key.endswith("/" + TUNING_LATEST) or "/" in function:
                    continue  # older runs are kept beside latest.json; only the latest counts
                body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                try:
                    result = TuningResult.from_json(json.loads(body), source=f"s3://{self.bucket}/{key}")
                except (ValueError, ValidationError) as exc:  # one bad file must not stop the report
                    log.warning("ignoring memory-tuning results %s: %s", key, exc)
                    continue
                found[function] = result
        return found

    def save(self, key: str, report: Mapping[str, Any]) -> str:
        body = json.dumps(report, indent=2, sort_keys=False, default=str).encode()
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
        return f"s3://{self.bucket}/{key}"
