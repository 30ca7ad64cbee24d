"""Browser uploads against the embedded AWS with ``PostPolicyMiddleware`` in front of moto.

moto alone stores every one of the refused uploads below (docs/local-stage.md). The forms are the
app's own (``S3UploadSigner``) or botocore's with SigV4; they are posted as a browser would, with
multipart/form-data and no ``Authorization`` header.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from chalicelib.adapters.uploads import S3UploadSigner
from localstage.s3_post_policy import PostPolicyMiddleware
from localstage.server import REGION, EmbeddedAws

pytestmark = pytest.mark.integration

BUCKET = "stage-uploads"
KEY = "uploads/u1/upl_1/cat.png"
PNG = b"\x89PNG\r\n\x1a\n" + b"p" * 92  # 100 bytes


@dataclass
class Uploads:
    aws: EmbeddedAws
    middleware: PostPolicyMiddleware
    clock: list[datetime]

    clients: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    def s3(self, signature_version: str | None = None, **credentials: str) -> Any:
        """A client signing with ``credentials`` (default: the stage's), made once: clients are slow to build."""
        keys = credentials or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        cache_key = (signature_version, *sorted(keys.items()))
        if cache_key not in self.clients:
            config = Config(signature_version=signature_version, retries={"max_attempts": 1, "mode": "standard"})
            session = boto3.session.Session(region_name=REGION, **keys)
            self.clients[cache_key] = session.client("s3", endpoint_url=self.aws.endpoint, config=config)
        return self.clients[cache_key]


@pytest.fixture(scope="module")
def uploads() -> Iterator[Uploads]:
    aws = EmbeddedAws(port=0).start(environ={})
    clock = [datetime.now(UTC)]
    # Wired as EmbeddedAws.start wires the throttling middleware: the WSGI server calls ``app`` per request.
    wsgi_server = aws._server._server  # type: ignore[attr-defined]
    middleware = PostPolicyMiddleware(wsgi_server.app, clock=lambda: clock[0])
    wsgi_server.app = middleware
    harness = Uploads(aws, middleware, clock)
    for bucket in (BUCKET, "another-bucket"):
        harness.s3().create_bucket(Bucket=bucket)
    try:
        yield harness
    finally:
        aws.stop()


@pytest.fixture(autouse=True)
def _real_time(uploads: Uploads) -> None:
    uploads.clock[0] = datetime.now(UTC)


def app_form(uploads: Uploads, max_bytes: int = 1024, content_type: str = "image/png") -> dict[str, Any]:
    """The form ``POST /uploads`` returns, from the app's own adapter (botocore's default: SigV2)."""
    return S3UploadSigner(uploads.s3(), BUCKET).presign(KEY, content_type, max_bytes, 900)


def post(
    form: dict[str, Any],
    body: bytes = PNG,
    *,
    fields: dict[str, str | None] | None = None,
    url: str | None = None,
    client: httpx.Client | None = None,
) -> httpx.Response:
    """Post the form's fields (changed by ``fields``; ``None`` drops one) then the file, as a browser does."""
    sent = {**form["fields"], **(fields or {})}
    data = {name: value for name, value in sent.items() if value is not None}
    files = {"file": ("cat.png", body, "image/png")}
    return (client or httpx).post(url or form["url"], data=data, files=files, timeout=30)


def s3_error(response: httpx.Response) -> dict[str, str]:
    """The ``<Error>`` document's elements, in order."""
    assert response.headers["content-type"] == "application/xml"
    return dict(re.findall(r"<(\w+)>([^<]*)</\1>", response.text.split("<Error>", 1)[1]))


def stored(uploads: Uploads, key: str = KEY, bucket: str = BUCKET) -> bytes | None:
    s3 = uploads.s3()
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


@pytest.fixture(autouse=True)
def _empty_bucket(uploads: Uploads) -> None:
    s3 = uploads.s3()
    for bucket in (BUCKET, "another-bucket"):
        for listed in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=listed["Key"])


# -- accepted -------------------------------------------------------------------------------------


def test_given_the_apps_form_when_a_file_within_the_policy_is_posted_then_s3_stores_it(uploads: Uploads) -> None:
    answer = post(app_form(uploads))

    assert answer.status_code == 204, answer.text
    assert stored(uploads) == PNG
    assert uploads.s3().head_object(Bucket=BUCKET, Key=KEY)["ContentType"] == "image/png"


def test_given_a_sigv4_form_when_a_file_of_exactly_the_maximum_is_posted_then_stored(uploads: Uploads) -> None:
    form = uploads.s3("s3v4").generate_presigned_post(
        BUCKET,
        KEY,
        Fields={"Content-Type": "image/png"},
        Conditions=[{"Content-Type": "image/png"}, ["content-length-range", 1, 100]],
    )

    answer = post(form, PNG)

    assert answer.status_code == 204, answer.text
    assert stored(uploads) == PNG


def test_given_session_credentials_when_their_form_is_posted_with_its_token_then_stored(uploads: Uploads) -> None:
    iam = boto3.client(
        "iam",
        endpoint_url=uploads.aws.endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    trust = {
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    }
    role = iam.create_role(RoleName="uploader", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    sts = boto3.client(
        "sts",
        endpoint_url=uploads.aws.endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    session = sts.assume_role(RoleArn=role, RoleSessionName="api")["Credentials"]
    s3 = uploads.s3(
        "s3v4",
        aws_access_key_id=session["AccessKeyId"],
        aws_secret_access_key=session["SecretAccessKey"],
        aws_session_token=session["SessionToken"],
    )
    form = s3.generate_presigned_post(BUCKET, KEY)

    wrong_token = post(form, fields={"x-amz-security-token": "another-token"})
    accepted = post(form)

    assert (wrong_token.status_code, s3_error(wrong_token)["Code"]) == (400, "InvalidToken")
    assert accepted.status_code == 204, accepted.text


# -- refused as S3 refuses ------------------------------------------------------------------------


def test_given_the_apps_form_when_the_file_is_one_byte_over_then_400_entity_too_large(uploads: Uploads) -> None:
    answer = post(app_form(uploads, max_bytes=99))

    error = s3_error(answer)
    assert answer.status_code == 400
    assert (error["Code"], error["Message"]) == (
        "EntityTooLarge",
        "Your proposed upload exceeds the maximum allowed size",
    )
    assert (error["ProposedSize"], error["MaxSizeAllowed"]) == ("100", "99")
    assert error["RequestId"] and answer.headers["x-amz-request-id"] == error["RequestId"]
    assert stored(uploads) is None


def test_given_the_apps_form_when_the_file_is_empty_then_400_entity_too_small(uploads: Uploads) -> None:
    answer = post(app_form(uploads), b"")

    error = s3_error(answer)
    assert (answer.status_code, error["Code"]) == (400, "EntityTooSmall")
    assert error["Message"] == "Your proposed upload is smaller than the minimum allowed size"
    assert (error["ProposedSize"], error["MinSizeAllowed"]) == ("0", "1")


def test_given_the_apps_form_when_another_content_type_is_sent_then_403_condition_failed(uploads: Uploads) -> None:
    answer = post(app_form(uploads), fields={"Content-Type": "text/html"})

    error = s3_error(answer)
    assert (answer.status_code, error["Code"]) == (403, "AccessDenied")
    assert error["Message"] == (
        'Invalid according to Policy: Policy Condition failed: ["eq", "$Content-Type", "image/png"]'
    )
    assert stored(uploads) is None


def test_given_the_apps_form_when_another_key_is_sent_then_403_and_nothing_stored_there(uploads: Uploads) -> None:
    answer = post(app_form(uploads), fields={"key": "uploads/someone-else/evil.png"})

    assert answer.status_code == 403
    assert s3_error(answer)["Message"].endswith(f'["eq", "$key", "{KEY}"]')
    assert stored(uploads, "uploads/someone-else/evil.png") is None


def test_given_the_apps_form_when_posted_to_another_bucket_then_403_bucket_condition(uploads: Uploads) -> None:
    form = app_form(uploads)

    answer = post(form, url=form["url"].replace(BUCKET, "another-bucket"))

    assert answer.status_code == 403
    assert s3_error(answer)["Message"].endswith(f'["eq", "$bucket", "{BUCKET}"]')
    assert stored(uploads, bucket="another-bucket") is None


def test_given_an_expired_form_when_posted_then_403_policy_expired(uploads: Uploads) -> None:
    form = app_form(uploads)
    uploads.clock[0] = datetime.now(UTC) + timedelta(seconds=901)

    answer = post(form)

    assert answer.status_code == 403
    assert s3_error(answer)["Message"] == "Invalid according to Policy: Policy expired."


def test_given_a_forged_signature_when_posted_then_403_signature_does_not_match(uploads: Uploads) -> None:
    sigv2 = app_form(uploads)
    sigv4 = uploads.s3("s3v4").generate_presigned_post(BUCKET, KEY)

    for answer in (
        post(sigv2, fields={"signature": "AAAA" + sigv2["fields"]["signature"][4:]}),
        post(sigv4, fields={"x-amz-signature": "0" * 64}),
    ):
        error = s3_error(answer)
        assert (answer.status_code, error["Code"]) == (403, "SignatureDoesNotMatch")
        assert error["AWSAccessKeyId"] == "testing"
    assert stored(uploads) is None


def test_given_an_unknown_access_key_when_posted_then_403_invalid_access_key_id(uploads: Uploads) -> None:
    form = uploads.s3(aws_access_key_id="AKIAUNKNOWN", aws_secret_access_key="whatever").generate_presigned_post(
        BUCKET, KEY
    )

    answer = post(form)

    error = s3_error(answer)
    assert (answer.status_code, error["Code"]) == (403, "InvalidAccessKeyId")
    assert error["AWSAccessKeyId"] == "AKIAUNKNOWN"


def test_given_an_extra_field_when_posted_then_403_extra_input_fields(uploads: Uploads) -> None:
    answer = post(app_form(uploads), fields={"x-amz-meta-owner": "mallory"})

    assert answer.status_code == 403
    assert s3_error(answer)["Message"] == "Invalid according to Policy: Extra input fields: x-amz-meta-owner"


def test_given_a_body_that_is_not_multipart_when_posted_then_412_precondition_failed(uploads: Uploads) -> None:
    answer = httpx.post(
        app_form(uploads)["url"], content=b"key=a", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )

    error = s3_error(answer)
    assert (answer.status_code, error["Code"]) == (412, "PreconditionFailed")
    assert error["Condition"] == "Bucket POST must be of the enclosure-type multipart/form-data"


def test_given_no_signature_fields_when_posted_then_403_access_denied_to_the_anonymous_caller(uploads: Uploads) -> None:
    answer = post(app_form(uploads), fields={"AWSAccessKeyId": None, "signature": None})

    assert (answer.status_code, s3_error(answer)["Message"]) == (403, "Access Denied")


# -- streaming ------------------------------------------------------------------------------------


def test_given_a_file_far_over_the_maximum_when_posted_then_its_size_is_reported_and_the_connection_reused(
    uploads: Uploads,
) -> None:
    large = b"x" * (3 * 1024 * 1024 + 7)
    with httpx.Client() as client:
        refused = post(app_form(uploads, max_bytes=1024 * 1024), large, client=client)
        accepted = post(app_form(uploads), client=client)  # the same kept-alive connection

    assert s3_error(refused)["ProposedSize"] == str(len(large))
    assert s3_error(refused)["MaxSizeAllowed"] == str(1024 * 1024)
    assert accepted.status_code == 204
    assert uploads.middleware.refused["EntityTooLarge"] >= 1


def test_given_fields_after_the_file_when_posted_then_ignored_as_s3_ignores_them(uploads: Uploads) -> None:
    form = app_form(uploads)
    boundary = "stageboundary"
    parts = [*form["fields"].items(), ("file", PNG), ("x-amz-meta-late", "ignored")]
    body = b""
    for name, value in parts:
        disposition = f'form-data; name="{name}"' + ('; filename="cat.png"' if name == "file" else "")
        content = value if isinstance(value, bytes) else value.encode()
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()

    answer = httpx.post(
        form["url"], content=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )

    assert answer.status_code == 204, answer.text
    assert "late" not in uploads.s3().head_object(Bucket=BUCKET, Key=KEY)["Metadata"]


def test_given_signed_api_calls_when_they_post_to_a_bucket_then_the_middleware_stays_out(uploads: Uploads) -> None:
    s3 = uploads.s3()
    s3.put_object(Bucket=BUCKET, Key="a.txt", Body=b"a")

    deleted = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "a.txt"}]})  # POST /<bucket>?delete

    assert [d["Key"] for d in deleted["Deleted"]] == ["a.txt"]
