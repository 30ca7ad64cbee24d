"""From an HTTP request to the embedded AWS to the API call IAM authorises (``actions.Call``).

Who signed: the access key of the SigV4 ``Authorization`` header, of a presigned URL's
``X-Amz-Credential``, or of a browser upload's ``x-amz-credential`` form field (an S3 POST carries
its signature in the form, not in a header). What it asks, by protocol:

- JSON (``X-Amz-Target``: DynamoDB, SQS, EventBridge, Step Functions, Cognito, Secrets Manager,
  Logs, CloudWatch): the operation is the target's suffix, the parameters the JSON body;
- query (form with ``Action``: SNS, STS, IAM, CloudFormation, older SQS clients): the form's top-level
  parameters (list members stay flattened; no authorisation here needs them);
- REST (S3, Lambda, API Gateway, X-Ray): the operation and its parameters from method, path and query.

Bodies are read only for calls signed by a role session (``needs_call``), and put back for moto.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from werkzeug.sansio.multipart import Data, Field, File, MultipartDecoder, NeedData, Preamble
from werkzeug.wsgi import LimitedStream

from localstage.iam.actions import Call

# SigV4 signing name -> botocore service name, where they differ
SERVICES = {"states": "stepfunctions", "monitoring": "cloudwatch", "execute-api": "apigateway"}
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
MAX_POST_FIELDS_BYTES = 20 * 1024  # S3: the form fields before the file may not exceed 20 KB


@dataclass(frozen=True)
class Signer:
    access_key: str
    region: str
    service: str  # botocore's name


def _signer(credential: str) -> Signer | None:
    parts = unquote(credential).split("/")
    if len(parts) != 5:
        return None
    return Signer(parts[0], parts[2], SERVICES.get(parts[3], parts[3]))


def signer_of(environ: Mapping[str, Any]) -> Signer | None:
    """The header's or the presigned URL's signer; ``None`` for an unsigned request (or an S3 POST)."""
    found = _CREDENTIAL.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    if found:
        return Signer(found.group(1), found.group(2), SERVICES.get(found.group(3), found.group(3)))
    query = parse_qs(str(environ.get("QUERY_STRING", "")))
    if "X-Amz-Credential" in query:
        return _signer(query["X-Amz-Credential"][0])
    return None


def is_form_post(environ: Mapping[str, Any]) -> bool:
    """A browser upload (S3 POST Object): a multipart form posted to a bucket, signed inside the form."""
    return (
        environ.get("REQUEST_METHOD") == "POST"
        and str(environ.get("CONTENT_TYPE", "")).startswith("multipart/form-data")
        and "HTTP_AUTHORIZATION" not in environ
    )


def content_length(environ: Mapping[str, Any]) -> int:
    try:
        return max(0, int(environ.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def bound_input(environ: dict[str, Any]) -> Any:
    """The body stream, limited to ``Content-Length``: the server's socket must never be read past it."""
    stream = environ["wsgi.input"]
    if not isinstance(stream, io.BytesIO | _Replay | LimitedStream):
        stream = LimitedStream(stream, content_length(environ))
        environ["wsgi.input"] = stream
    return stream


def read_body(environ: dict[str, Any]) -> bytes:
    """The whole body, put back so the next reader (moto) finds it unread."""
    body: bytes = bound_input(environ).read()
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def drain(environ: dict[str, Any]) -> None:
    """Read what is left of the body: unread, it would be taken for the next request on the connection."""
    stream = bound_input(environ)
    while stream.read(65536):
        pass


class _Replay(io.RawIOBase):
    """The bytes already read, then the rest of the original stream."""

    def __init__(self, head: bytes, rest: Any) -> None:
        self._head = io.BytesIO(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:  # what werkzeug's LimitedStream reads with
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        chunk = self._head.read(size if size is not None and size >= 0 else -1)
        if size is None or size < 0:
            return chunk + self._rest.read()
        if len(chunk) < size:
            chunk += self._rest.read(size - len(chunk))
        return chunk

    def readline(self, size: int | None = -1) -> bytes:
        line = self._head.readline(size if size is not None else -1)
        if line.endswith(b"\n") or (size is not None and 0 <= size <= len(line)):
            return line
        return line + self._rest.readline(-1 if size is None or size < 0 else size - len(line))


def post_form_fields(environ: dict[str, Any]) -> tuple[dict[str, str], str | None]:
    """The text fields before the file of an S3 POST form (lower-cased names) and the file's name.

    Reads only up to the file part (S3 caps what precedes it at 20 KB) and puts the bytes back, so
    the upload itself streams on to moto untouched.
    """
    boundary = re.search(r'boundary="?([^";]+)"?', str(environ.get("CONTENT_TYPE", "")))
    if boundary is None:
        return {}, None
    decoder = MultipartDecoder(boundary.group(1).encode(), max_form_memory_size=MAX_POST_FIELDS_BYTES)
    stream, consumed = bound_input(environ), bytearray()
    fields: dict[str, str] = {}
    current: str | None = None
    value = bytearray()
    filename: str | None = None
    while filename is None and len(consumed) <= MAX_POST_FIELDS_BYTES + 8192:
        event = decoder.next_event()
        if isinstance(event, NeedData):
            chunk = stream.read(4096)
            consumed += chunk
            decoder.receive_data(chunk or None)
            if not chunk:
                break
        elif isinstance(event, File):
            filename = event.filename or ""
        elif isinstance(event, Field):
            current, value = event.name.lower(), bytearray()
        elif isinstance(event, Data) and current is not None:
            value += event.data
            if not event.more_data:
                fields[current] = value.decode("utf-8", "replace")
                current = None
        elif not isinstance(event, Preamble):
            break  # the epilogue: a form without a file
    environ["wsgi.input"] = _Replay(bytes(consumed), stream)
    return fields, filename


# -- REST routes ------------------------------------------------------------------------------------

_LAMBDA_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(pattern), operation)
    for method, pattern, operation in (
        ("GET", r"^/2015-03-31/functions/?$", "ListFunctions"),
        ("POST", r"^/2015-03-31/functions/?$", "CreateFunction"),
        ("POST", r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$", "Invoke"),
        ("POST", r"^/2014-11-13/functions/(?P<name>[^/]+)/invoke-async/?$", "InvokeAsync"),
        ("GET", r"^/2015-03-31/functions/(?P<name>[^/]+)/configuration$", "GetFunctionConfiguration"),
        ("PUT", r"^/2015-03-31/functions/(?P<name>[^/]+)/configuration$", "UpdateFunctionConfiguration"),
        ("PUT", r"^/2015-03-31/functions/(?P<name>[^/]+)/code$", "UpdateFunctionCode"),
        ("GET", r"^/2015-03-31/functions/(?P<name>[^/]+)/?$", "GetFunction"),
        ("DELETE", r"^/2015-03-31/functions/(?P<name>[^/]+)/?$", "DeleteFunction"),
        ("GET", r"^/2015-03-31/functions/(?P<name>[^/]+)/policy/?$", "GetPolicy"),
        ("POST", r"^/2015-03-31/functions/(?P<name>[^/]+)/policy/?$", "AddPermission"),
        ("DELETE", r"^/2015-03-31/functions/(?P<name>[^/]+)/policy/[^/]+$", "RemovePermission"),
        ("GET", r"^/2015-03-31/functions/(?P<name>[^/]+)/versions/?$", "ListVersionsByFunction"),
        ("POST", r"^/2015-03-31/functions/(?P<name>[^/]+)/versions/?$", "PublishVersion"),
        ("PUT", r"^/2017-10-31/functions/(?P<name>[^/]+)/concurrency$", "PutFunctionConcurrency"),
        ("GET", r"^/2019-09-30/functions/(?P<name>[^/]+)/concurrency$", "GetFunctionConcurrency"),
        ("PUT", r"^/2019-09-25/functions/(?P<name>[^/]+)/event-invoke-config$", "PutFunctionEventInvokeConfig"),
        ("POST", r"^/2019-09-25/functions/(?P<name>[^/]+)/event-invoke-config$", "UpdateFunctionEventInvokeConfig"),
        ("GET", r"^/2019-09-25/functions/(?P<name>[^/]+)/event-invoke-config$", "GetFunctionEventInvokeConfig"),
        ("GET", r"^/2015-03-31/event-source-mappings/?$", "ListEventSourceMappings"),
        ("POST", r"^/2015-03-31/event-source-mappings/?$", "CreateEventSourceMapping"),
        ("GET", r"^/2015-03-31/event-source-mappings/[^/]+$", "GetEventSourceMapping"),
        ("PUT", r"^/2015-03-31/event-source-mappings/[^/]+$", "UpdateEventSourceMapping"),
        ("DELETE", r"^/2015-03-31/event-source-mappings/[^/]+$", "DeleteEventSourceMapping"),
    )
)
_XRAY_ROUTES = {"/TraceSegments": "PutTraceSegments", "/TelemetryRecords": "PutTelemetryRecords"}
# S3 sub-resources (the query's key) -> the IAM action's name for GET / PUT, on a bucket or an object
_S3_BUCKET_SUBRESOURCES = {
    "cors": ("GetBucketCORS", "PutBucketCORS"),
    "policy": ("GetBucketPolicy", "PutBucketPolicy"),
    "versioning": ("GetBucketVersioning", "PutBucketVersioning"),
    "location": ("GetBucketLocation", "GetBucketLocation"),
    "encryption": ("GetEncryptionConfiguration", "PutEncryptionConfiguration"),
    "publicAccessBlock": ("GetBucketPublicAccessBlock", "PutBucketPublicAccessBlock"),
    "notification": ("GetBucketNotification", "PutBucketNotification"),
    "lifecycle": ("GetLifecycleConfiguration", "PutLifecycleConfiguration"),
    "tagging": ("GetBucketTagging", "PutBucketTagging"),
    "uploads": ("ListBucketMultipartUploads", "ListBucketMultipartUploads"),
}
_S3_OBJECT_SUBRESOURCES = {
    "tagging": ("GetObjectTagging", "PutObjectTagging"),
    "acl": ("GetObjectAcl", "PutObjectAcl"),
}


def _lambda_call(method: str, path: str, query: Mapping[str, list[str]]) -> tuple[str, dict[str, Any]]:
    for route_method, pattern, operation in _LAMBDA_ROUTES:
        found = pattern.match(path) if method == route_method else None
        if found:
            params: dict[str, Any] = {}
            if "name" in found.groupdict():
                params["FunctionName"] = unquote(found.group("name"))
            if "Qualifier" in query:
                params["Qualifier"] = query["Qualifier"][0]
            return operation, params
    return "Unknown", {}


def _s3_call(
    method: str, path: str, query: Mapping[str, list[str]], environ: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    if not bucket:
        return "ListBuckets", {}
    params: dict[str, Any] = {"Bucket": bucket}
    if key:
        params["Key"] = key
        for sub, (get, put) in _S3_OBJECT_SUBRESOURCES.items():
            if sub in query:
                return (get if method in ("GET", "HEAD") else put), params
        if method == "POST":
            return ("CompleteMultipartUpload" if "uploadId" in query else "CreateMultipartUpload"), params
        if method == "PUT" and "partNumber" in query:
            return "UploadPart", params
        if method == "PUT" and environ.get("HTTP_X_AMZ_COPY_SOURCE"):
            return "CopyObject", params
        return {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}.get(
            method, "Unknown"
        ), params
    for sub, (get, put) in _S3_BUCKET_SUBRESOURCES.items():
        if sub in query:
            return (get if method in ("GET", "HEAD") else put), params
    if method == "GET":
        return ("ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"), params
    if method == "POST" and "delete" in query:
        return "DeleteObject", params  # keys are in the XML body: scoped to the bucket, so refused unless s3:* on it
    return {"HEAD": "HeadBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}.get(method, "Unknown"), params


def _flat_query(body: bytes) -> dict[str, Any]:
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


def call_of(environ: dict[str, Any], signer: Signer, account: str) -> Call:
    """The API call a signed request makes (reads and puts back the body where the call is in it)."""
    method = str(environ.get("REQUEST_METHOD", "GET"))
    path = str(environ.get("PATH_INFO", "/"))
    query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
    service = signer.service
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    params: dict[str, Any]
    if target:
        body = read_body(environ)
        try:
            params = json.loads(body) if body else {}
        except ValueError:
            params = {}
        operation = target.rsplit(".", 1)[-1]
    elif str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded") and method == "POST":
        params = _flat_query(read_body(environ))
        operation = str(params.pop("Action", "Unknown"))
        if service == "sqs" and "QueueUrl" not in params and path.count("/") == 2:
            params["QueueUrl"] = path  # the query protocol posts to the queue's own URL
    elif "Action" in query:
        params = {k: v[0] for k, v in query.items()}
        operation = str(params.pop("Action"))
    elif service == "s3":
        operation, params = _s3_call(method, path, query, environ)
    elif service == "lambda":
        operation, params = _lambda_call(method, path, query)
    elif service == "xray":
        operation, params = _XRAY_ROUTES.get(path, "Unknown"), {}
    elif service == "apigateway":
        operation, params = method, {"path": path}
    else:
        operation, params = "Unknown", {}
    return Call(service, operation, params, signer.region, account)


def form_post_call(
    bucket: str, fields: Mapping[str, str], filename: str | None, account: str, region: str = "us-east-1"
) -> tuple[Signer, Call] | None:
    """The signer and the ``PutObject`` of a browser upload, from its form fields.

    SigV4 forms name the key in ``x-amz-credential``; SigV2 forms (what botocore presigns for an S3
    endpoint it has no region rules for) in ``AWSAccessKeyId``, with the bucket's region implied.
    """
    credential = fields.get("x-amz-credential")
    signer = _signer(credential) if credential else None
    if signer is None and fields.get("awsaccesskeyid"):
        signer = Signer(fields["awsaccesskeyid"], region, "s3")
    if signer is None:
        return None
    key = fields.get("key", "").replace("${filename}", filename or "")
    call = Call("s3", "PostObject", {"Bucket": bucket, "Key": key}, signer.region, account)
    return Signer(signer.access_key, signer.region, "s3"), call
