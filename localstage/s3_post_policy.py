"""A WSGI middleware in front of moto that refuses browser uploads S3 would refuse.

moto 5.2.5 stores any form POST to a bucket (``POST /<bucket>``, no ``Authorization`` header): it
checks neither the policy's expiration, its signature, ``content-length-range``, the ``Content-Type``,
key or bucket conditions, nor the ``x-amz-*`` fields, and answers a body that is not
multipart/form-data with a 500. ``PostPolicyMiddleware`` reads such a request, runs S3's checks
(``localstage.s3_post_checks``) and either answers S3's error or hands moto a clean body.

Streaming: the fields before the file are capped at S3's 20,480 bytes; the file is kept in memory
only up to the policy's maximum (moto needs it whole), and past it is read and counted, not kept,
so that ``EntityTooLarge`` reports S3's ``ProposedSize``. A refused body is read to its end (and
dropped) so that a kept-alive connection does not take its rest for the next request.

moto then receives only what S3 would act on: the fields before the file, with ``${filename}``
expanded, and the file; fields after the file are dropped, as S3 ignores them. The verified upload
(bucket, key, signer's access key) is left in ``environ[VERIFIED_UPLOAD]`` for whatever authorizes
``s3:PutObject`` for the signer further in.
"""

from __future__ import annotations

import html
import logging
import re
import secrets
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from io import BytesIO
from typing import IO, Any

from werkzeug.datastructures import Headers
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from localstage.patches import require
from localstage.s3_post_checks import (
    MAX_PRE_DATA_BYTES,
    Identity,
    PostForm,
    S3PostError,
    SizeRange,
    check_conditions,
    check_expiration,
    check_size,
    decode_policy,
    signed_form,
    verify_signature,
)

log = logging.getLogger("localstage.s3_post")

VERIFIED_UPLOAD = "localstage.s3_post.upload"
CHUNK_BYTES = 64 * 1024
_BUCKET = r"([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])"
_PATH_STYLE = re.compile(rf"^/{_BUCKET}/?$")
_VIRTUAL_HOST = re.compile(rf"^{_BUCKET}\.(?:s3[.\-].*|localhost)$")

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
CredentialSource = Callable[[str], Identity | None]
BucketRegions = Callable[[str], str | None]


@dataclass(frozen=True)
class VerifiedUpload:
    """A form POST whose policy and signature S3's checks accepted."""

    bucket: str
    key: str
    access_key_id: str


class MotoCredentials:
    """The secret of an access key: the stage's own keys, then moto's STS sessions and IAM users' keys."""

    def __init__(self, static: Mapping[str, str] | None = None) -> None:
        require("moto")
        self._static = dict(static) if static is not None else _stage_keys()

    def __call__(self, access_key_id: str) -> Identity | None:
        from moto.core.utils import utcnow
        from moto.iam.models import iam_backends
        from moto.sts.models import sts_backends

        if access_key_id in self._static:
            return Identity(self._static[access_key_id], any_token=True)
        for sts_account in list(sts_backends.values()):
            for sts in list(sts_account.values()):
                for role in list(sts.assumed_roles):
                    if role.access_key_id == access_key_id:
                        return Identity(role.secret_access_key, role.session_token, role.expiration < utcnow())
        for iam_account in list(iam_backends.values()):
            for iam in list(iam_account.values()):
                key = iam.access_keys.get(access_key_id)
                if key is not None and key.status == "Active":
                    return Identity(key.secret_access_key)
        return None


def _stage_keys() -> dict[str, str]:
    # Imported here: server.py imports this module to wire the middleware in.
    from localstage.server import FAKE_CREDENTIALS

    return {FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"]: FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}


def moto_bucket_region(bucket: str) -> str | None:
    """The region of an existing bucket in moto, ``None`` if there is no such bucket."""
    from moto.s3.models import s3_backends

    located = s3_backends.bucket_accounts.get(bucket)
    if located is None:
        return None
    partition, account_id = located
    found = s3_backends[account_id][partition].buckets.get(bucket)
    return None if found is None else str(found.region_name)


def post_object_bucket(environ: Mapping[str, Any]) -> str | None:
    """The bucket a browser-style form POST targets (path-style or virtual-hosted), else ``None``.

    Signed API calls (``Authorization``, ``X-Amz-Target``, a query string such as ``?delete``) and
    moto's own ``/moto-api`` are not form POSTs.
    """
    if environ.get("REQUEST_METHOD") != "POST" or environ.get("QUERY_STRING"):
        return None
    if "HTTP_AUTHORIZATION" in environ or "HTTP_X_AMZ_TARGET" in environ:
        return None
    path = str(environ.get("PATH_INFO", ""))
    if path.startswith("/moto-api"):
        return None
    host = str(environ.get("HTTP_HOST", "")).lower().rsplit(":", 1)[0]
    virtual = _VIRTUAL_HOST.match(host)
    if virtual and path in ("", "/"):
        return virtual.group(1)
    path_style = _PATH_STYLE.match(path)
    return path_style.group(1) if path_style else None


class _Body:
    """``wsgi.input`` read in chunks up to ``CONTENT_LENGTH``, counting what was read."""

    def __init__(self, stream: IO[bytes], length: int) -> None:
        self._stream = stream
        self.remaining = length
        self.read = 0

    def chunks(self) -> Iterator[bytes]:
        while self.remaining > 0:
            data = self._stream.read(min(CHUNK_BYTES, self.remaining))
            if not data:
                self.remaining = 0
                raise S3PostError(
                    400,
                    "IncompleteBody",
                    "You did not provide the number of bytes specified by the Content-Length HTTP header",
                )
            self.remaining -= len(data)
            self.read += len(data)
            yield data

    def drain(self) -> None:
        """Read the rest and drop it: only the connection's framing needs it read. A client that
        stopped sending has nothing left to drain."""
        while self.remaining > 0:
            data = self._stream.read(min(CHUNK_BYTES, self.remaining))
            self.remaining = self.remaining - len(data) if data else 0


@dataclass
class _Upload:
    """What the parse collects: the form, the parts to hand on, and the file."""

    form: PostForm = field(default_factory=PostForm)
    parts: list[tuple[Headers, bytes]] = field(default_factory=list)
    file_headers: Headers | None = None
    file_data: list[bytes] | None = None  # None until the file part starts
    file_size: int = 0
    sizes: SizeRange = field(default_factory=SizeRange)
    verified: VerifiedUpload | None = None


class _FormReader:
    """Feeds the body to werkzeug's multipart decoder and sorts its events as S3 does.

    Fields before the part named ``file`` make the form; at the file's start ``on_file`` runs (the
    checks that need no file); the file is kept up to the policy's maximum and counted past it;
    parts after the file are ignored ("Any fields below it are ignored.").
    """

    def __init__(self, boundary: bytes, upload: _Upload, on_file: Callable[[_Upload], None]) -> None:
        self._decoder = MultipartDecoder(boundary)
        self._upload = upload
        self._on_file = on_file
        self._stage = "fields"  # then "file", then "ignored"
        self._part: tuple[str, Headers] | None = None
        self._value = bytearray()
        self._fed = 0

    def feed(self, chunk: bytes | None) -> None:
        """One chunk of the body; ``None`` at its end."""
        self._fed += len(chunk or b"")
        for event in self._events(chunk):
            if isinstance(event, Field | File):
                self._start_part(event)
            elif isinstance(event, Data):
                self._data(event)
        if self._stage == "fields":
            _pre_data_within_limit(self._fed - len(self._decoder.buffer))
            _pre_data_within_limit(len(self._decoder.buffer) - CHUNK_BYTES)  # part headers that never end

    def _events(self, chunk: bytes | None) -> Iterator[Field | File | Data]:
        try:
            self._decoder.receive_data(chunk)
            event = self._decoder.next_event()
            while not isinstance(event, NeedData | Epilogue):
                if isinstance(event, Field | File | Data):
                    yield event
                event = self._decoder.next_event()
        except ValueError:  # werkzeug's answer to a body that is not multipart/form-data
            raise _malformed() from None

    def _start_part(self, event: Field | File) -> None:
        if self._stage != "fields":
            self._stage = "ignored"
        elif not event.name:
            raise _malformed()
        elif event.name.lower() != "file":
            self._part, self._value = (event.name, event.headers), bytearray()
        else:
            _pre_data_within_limit(self._fed - len(self._decoder.buffer))
            self._upload.form.filename = event.filename if isinstance(event, File) else None
            self._upload.file_headers, self._upload.file_data, self._stage = event.headers, [], "file"
            self._on_file(self._upload)

    def _data(self, event: Data) -> None:
        upload = self._upload
        if self._stage == "fields" and self._part is not None:
            self._value += event.data
            if not event.more_data:
                upload.form.fields.append((self._part[0], self._value.decode("utf-8", "replace")))
                upload.parts.append((self._part[1], bytes(self._value)))
        elif self._stage == "file" and upload.file_data is not None:
            upload.file_size += len(event.data)
            if upload.file_size <= upload.sizes.maximum:
                upload.file_data.append(event.data)
            else:  # only counted from here: moto never gets it, S3 reports its size
                upload.file_data.clear()
            self._stage = "file" if event.more_data else "ignored"


def _pre_data_within_limit(size: int) -> None:
    if size > MAX_PRE_DATA_BYTES:
        raise S3PostError(  # "preceeding ... was": S3's own wording
            400,
            "MaxPostPreDataLengthExceeded",
            "Your POST request fields preceeding the upload file was too large.",
            MaxPostPreDataLengthBytes=MAX_PRE_DATA_BYTES,
        )


class PostPolicyMiddleware:
    """WSGI middleware: S3's POST Object checks in front of ``app`` (moto's WSGI application)."""

    def __init__(
        self,
        app: Wsgi,
        credentials: CredentialSource | None = None,
        bucket_regions: BucketRegions | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.app = app
        self._credentials = credentials or MotoCredentials()
        if bucket_regions is None:
            require("moto")
        self._bucket_regions = bucket_regions or moto_bucket_region
        self._clock = clock
        self.refused: Counter[str] = Counter()  # by S3 error code, for tests and operators
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        bucket = post_object_bucket(environ)
        if bucket is None or not str(environ.get("CONTENT_LENGTH") or "").isdigit():
            return self.app(environ, start_response)  # not a form POST, or moto's own 411 for a missing length
        body = _Body(environ["wsgi.input"], int(environ["CONTENT_LENGTH"]))
        try:
            upload = self._read(environ, body, bucket)
        except S3PostError as error:
            body.drain()
            return self._refuse(error, bucket, start_response)
        assert upload.verified is not None and upload.file_headers is not None and upload.file_data is not None
        canonical = _encode(_boundary(environ), upload.parts, upload.file_headers, b"".join(upload.file_data))
        environ["wsgi.input"] = BytesIO(canonical)
        environ["CONTENT_LENGTH"] = str(len(canonical))
        environ[VERIFIED_UPLOAD] = upload.verified
        return self.app(environ, start_response)

    def _read(self, environ: Mapping[str, Any], body: _Body, bucket: str) -> _Upload:
        region = self._bucket_regions(bucket)
        if region is None:
            raise S3PostError(404, "NoSuchBucket", "The specified bucket does not exist", BucketName=bucket)
        mimetype, _ = parse_options_header(str(environ.get("CONTENT_TYPE", "")))
        if mimetype != "multipart/form-data":
            raise S3PostError(
                412,
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
                Condition="Bucket POST must be of the enclosure-type multipart/form-data",
            )
        upload = _Upload()
        reader = _FormReader(_boundary(environ), upload, lambda found: self._check(found, bucket, region))
        for chunk in body.chunks():
            reader.feed(chunk)
        reader.feed(None)
        if upload.file_data is None:
            self._check(upload, bucket, region)  # a missing key or a bad signature is answered first
            raise S3PostError(
                400,
                "InvalidArgument",
                "POST requires exactly one file upload per request.",
                ArgumentName="file",
                ArgumentValue=0,
            )
        check_size(upload.file_size, upload.sizes)
        return upload

    def _check(self, upload: _Upload, bucket: str, region: str) -> None:
        """Everything S3 decides before reading the file: fields, signer, signature, policy."""
        signed = signed_form(upload.form, region)
        if signed is None:  # an anonymous POST: only a publicly writable bucket takes it; the stage's are private
            raise S3PostError(403, "AccessDenied", "Access Denied")
        verify_signature(signed, self._credentials(signed.access_key_id))
        document = decode_policy(signed.policy)
        check_expiration(document, self._clock())
        upload.sizes = check_conditions(document["conditions"], upload.form, bucket)
        upload.verified = VerifiedUpload(bucket, str(upload.form.expanded("key")), signed.access_key_id)
        basename = upload.form.basename()
        if basename is not None:  # moto gets the fields as S3 stores them
            upload.parts = [
                (headers, data.replace(b"${filename}", basename.encode())) for headers, data in upload.parts
            ]

    def _refuse(self, error: S3PostError, bucket: str, start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            self.refused[error.code] += 1
        log.info("refused a POST upload to %s: %s %s", bucket, error.code, error.message)
        request_id = secrets.token_hex(8).upper()
        extra = "".join(f"<{name}>{_xml(value)}</{name}>" for name, value in error.elements.items())
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{error.code}</Code><Message>{_xml(error.message)}</Message>{extra}"
            f"<RequestId>{request_id}</RequestId><HostId>{uuid.uuid4().hex}</HostId></Error>"
        ).encode()
        headers = [
            ("Content-Type", "application/xml"),
            ("Content-Length", str(len(xml))),
            ("x-amz-request-id", request_id),
            ("x-amz-id-2", uuid.uuid4().hex),
        ]
        start_response(f"{error.status} {HTTPStatus(error.status).phrase}", headers)
        return [xml]


def _boundary(environ: Mapping[str, Any]) -> bytes:
    _, options = parse_options_header(str(environ.get("CONTENT_TYPE", "")))
    boundary = options.get("boundary", "")
    if not boundary:
        raise _malformed()
    return boundary.encode("latin-1")


def _xml(text: str) -> str:
    """Text as XML character data (``&``, ``<``, ``>`` escaped)."""
    return html.escape(text, quote=False)


def _malformed() -> S3PostError:
    return S3PostError(
        400, "MalformedPOSTRequest", "The body of your POST request is not well-formed multipart/form-data."
    )


def _encode(boundary: bytes, parts: list[tuple[Headers, bytes]], file_headers: Headers, file_data: bytes) -> bytes:
    """The multipart body moto gets: the fields before the file, the file, the closing delimiter."""
    out = bytearray()
    for headers, data in [*parts, (file_headers, file_data)]:
        out += b"--" + boundary + b"\r\n"
        for name, value in headers.items():
            out += f"{name}: {value}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += b"--" + boundary + b"--\r\n"
    return bytes(out)
