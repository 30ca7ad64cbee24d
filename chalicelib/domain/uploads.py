"""File uploads: the browser posts straight to S3 with a presigned form.

The form's conditions, not this code, enforce type and size at upload time;
this module only refuses requests that could never satisfy them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import FieldError, PayloadTooLargeError
from chalicelib.domain.validation import Fields

ALLOWED_CONTENT_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "application/pdf"})
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
UPLOAD_URL_TTL_SECONDS = 900
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class UploadRequest:
    filename: str
    content_type: str
    size: int


def safe_filename(filename: str) -> str:
    """Keep the base name, replace anything unusual, never return an empty name."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", base).strip("._") or "file"
    return cleaned[:100]


def parse_upload_request(data: Any, max_bytes: int = MAX_UPLOAD_BYTES) -> UploadRequest:
    f = Fields(data)
    f.reject_unknown({"filename", "content_type", "size"})
    filename = f.text("filename", max_len=255)
    content_type = f.text("content_type", max_len=100)
    if content_type is not None and content_type.lower() not in ALLOWED_CONTENT_TYPES:
        f.fail("content_type", "must be one of " + ", ".join(sorted(ALLOWED_CONTENT_TYPES)))
    size = f.integer("size", minimum=1)
    f.raise_if_any("The upload request is invalid")
    assert filename is not None and content_type is not None and size is not None
    if size > max_bytes:
        raise PayloadTooLargeError(
            f"Uploads are limited to {max_bytes} bytes",
            [FieldError("size", f"must be at most {max_bytes} bytes")],
        )
    return UploadRequest(safe_filename(filename), content_type.lower(), size)


def upload_key(user_id: str, upload_id: str, filename: str) -> str:
    return f"uploads/{user_id}/{upload_id}/{filename}"
