"""Presigned uploads straight to S3: the API never streams file bytes."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.ids import IdFactory, new_id
from chalicelib.domain.ports import UploadSigner
from chalicelib.domain.uploads import MAX_UPLOAD_BYTES, UPLOAD_URL_TTL_SECONDS, UploadRequest, upload_key
from chalicelib.domain.users import Principal


class UploadService:
    def __init__(self, signer: UploadSigner, ids: IdFactory = new_id, max_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self._signer = signer
        self._ids = ids
        self.max_bytes = max_bytes

    def create(self, caller: Principal, request: UploadRequest) -> dict[str, Any]:
        """A form the browser posts to S3; its conditions pin the type and cap the size."""
        key = upload_key(caller.user_id, self._ids("upl"), request.filename)
        form = self._signer.presign(
            key, request.content_type, min(request.size, self.max_bytes), UPLOAD_URL_TTL_SECONDS
        )
        return {"key": key, "upload": form, "expires_in": UPLOAD_URL_TTL_SECONDS}
