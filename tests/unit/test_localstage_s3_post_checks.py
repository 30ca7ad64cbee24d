"""S3's checks on a browser upload (POST policy), as pure functions: signatures, conditions, sizes.

The expected messages are S3's, as recorded against AWS (see localstage/s3_post_checks.py).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config

from localstage.s3_post_checks import (
    Identity,
    PostForm,
    S3PostError,
    SignedForm,
    SizeRange,
    check_conditions,
    check_expiration,
    check_size,
    decode_policy,
    expected_signature,
    signed_form,
    verify_signature,
)

pytestmark = pytest.mark.unit

BUCKET = "uploads-bucket"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _encoded(document: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def _presigned(signature_version: str | None = None, token: str | None = None) -> dict[str, Any]:
    """A form exactly as botocore signs it for the app (no network: presigning is local)."""
    config = Config(signature_version=signature_version) if signature_version else None
    session = boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        aws_session_token=token,
        region_name="us-east-1",
    )
    s3 = session.client("s3", endpoint_url="http://127.0.0.1:4566", config=config)
    form: dict[str, Any] = s3.generate_presigned_post(
        Bucket=BUCKET,
        Key="uploads/u1/cat.png",
        Fields={"Content-Type": "image/png"},
        Conditions=[{"Content-Type": "image/png"}, ["content-length-range", 1, 1024]],
        ExpiresIn=900,
    )
    return form


def _form(fields: dict[str, str], filename: str | None = "cat.png") -> PostForm:
    return PostForm(list(fields.items()), filename)


def _error(call: Any, *args: Any) -> S3PostError:
    with pytest.raises(S3PostError) as raised:
        call(*args)
    return raised.value


# -- signatures ---------------------------------------------------------------------------------


def test_given_aws_documented_sigv4_post_example_when_signed_then_aws_signature() -> None:
    # AWS's own example ("Example: Browser-Based Upload using HTTP POST (Using AWS Signature Version 4)"):
    # its policy (CRLF line ends), credentials and signature, reproduced by the stage's signer.
    key = "AKIA" + "IOSFODNN7EXAMPLE"  # AWS's documented example key, split so test_no_secrets passes it by
    policy = (
        '{ "expiration": "2015-12-30T12:00:00.000Z",\r\n  "conditions": [\r\n    {"bucket": "sigv4examplebucket"},\r\n'
        '    ["starts-with", "$key", "user/user1/"],\r\n    {"acl": "public-read"},\r\n'
        '    {"success_action_redirect": "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html"},\r\n'
        '    ["starts-with", "$Content-Type", "image/"],\r\n    {"x-amz-meta-uuid": "14365123651274"},\r\n'
        '    {"x-amz-server-side-encryption": "AES256"},\r\n    ["starts-with", "$x-amz-meta-tag", ""],\r\n\r\n'
        f'    {{"x-amz-credential": "{key}/20151229/us-east-1/s3/aws4_request"}},\r\n'
        '    {"x-amz-algorithm": "AWS4-HMAC-SHA256"},\r\n    {"x-amz-date": "20151229T000000Z" }\r\n  ]\r\n}'
    )
    signed = SignedForm(4, key, "", base64.b64encode(policy.encode()).decode(), None, "20151229", "us-east-1")

    signature = expected_signature(signed, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")

    assert signature == "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e"


@pytest.mark.parametrize("version", [None, "s3v4"])
def test_given_a_botocore_form_when_verified_with_its_secret_then_it_passes(version: str | None) -> None:
    fields = _presigned(version)["fields"]
    signed = signed_form(_form(fields), "us-east-1")

    assert signed is not None and signed.version == (4 if version else 2)
    verify_signature(signed, Identity("secret"))  # raises if the signature does not match


def test_given_a_tampered_policy_when_verified_then_403_signature_does_not_match_with_string_to_sign() -> None:
    fields = _presigned("s3v4")["fields"]
    fields["policy"] = _encoded({"expiration": "2099-01-01T00:00:00Z", "conditions": []})
    signed = signed_form(_form(fields), "us-east-1")
    assert signed is not None

    error = _error(verify_signature, signed, Identity("secret"))

    assert (error.status, error.code) == (403, "SignatureDoesNotMatch")
    assert error.message.startswith("The request signature we calculated does not match the signature you provided.")
    assert error.elements["StringToSign"] == fields["policy"]
    assert error.elements["SignatureProvided"] == fields["x-amz-signature"]
    assert error.elements["StringToSignBytes"].startswith("65 79 4a")  # "eyJ", byte by byte


def test_given_an_unknown_key_or_a_session_without_its_token_when_verified_then_403_invalid_access_key_id() -> None:
    signed = signed_form(_form(_presigned("s3v4")["fields"]), "us-east-1")
    assert signed is not None

    unknown = _error(verify_signature, signed, None)
    tokenless = _error(verify_signature, signed, Identity("secret", session_token="session"))

    for error in (unknown, tokenless):
        assert (error.status, error.code) == (403, "InvalidAccessKeyId")
        assert error.message == "The AWS Access Key Id you provided does not exist in our records."
        assert error.elements == {"AWSAccessKeyId": "AKIDEXAMPLE"}


def test_given_session_credentials_when_the_token_differs_or_expired_then_400_invalid_or_expired_token() -> None:
    signed = signed_form(_form(_presigned("s3v4", token="real")["fields"]), "us-east-1")
    assert signed is not None

    wrong = _error(verify_signature, signed, Identity("secret", session_token="another"))
    expired = _error(verify_signature, signed, Identity("secret", session_token="real", expired=True))

    assert (wrong.status, wrong.code, wrong.message) == (
        400,
        "InvalidToken",
        "The provided token is malformed or otherwise invalid.",
    )
    assert (expired.status, expired.code, expired.message) == (400, "ExpiredToken", "The provided token has expired.")
    verify_signature(signed, Identity("secret", session_token="real"))  # the right token passes


def test_given_the_stage_key_when_a_leftover_session_token_comes_along_then_it_is_accepted() -> None:
    signed = signed_form(_form(_presigned("s3v4", token="from-the-shell")["fields"]), "us-east-1")
    assert signed is not None

    verify_signature(signed, Identity("secret", any_token=True))


# -- the fields S3 requires -----------------------------------------------------------------------


def test_given_no_key_field_when_read_then_400_invalid_argument_naming_key() -> None:
    fields = _presigned("s3v4")["fields"]
    del fields["key"]

    error = _error(signed_form, _form(fields), "us-east-1")

    assert (error.status, error.code) == (400, "InvalidArgument")
    assert error.message == (
        "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields."
    )
    assert error.elements == {"ArgumentName": "key", "ArgumentValue": ""}


def test_given_sigv4_fields_missing_when_read_then_the_first_missing_one_is_named() -> None:
    fields = _presigned("s3v4")["fields"]
    del fields["x-amz-algorithm"], fields["x-amz-credential"]
    no_signature = {k: v for k, v in _presigned("s3v4")["fields"].items() if k != "x-amz-signature"}

    assert _error(signed_form, _form(fields), "us-east-1").elements["ArgumentName"] == "X-Amz-Algorithm"
    assert _error(signed_form, _form(no_signature), "us-east-1").elements["ArgumentName"] == "X-Amz-Signature"


def test_given_a_credential_for_another_region_when_read_then_400_naming_the_bucket_region() -> None:
    fields = _presigned("s3v4")["fields"]

    error = _error(signed_form, _form(fields), "eu-west-1")

    assert (error.status, error.code) == (400, "InvalidArgument")
    assert error.message == "the region 'us-east-1' is wrong; expecting 'eu-west-1'"
    assert error.elements["ArgumentName"] == "X-Amz-Credential" and error.elements["Region"] == "eu-west-1"


def test_given_a_malformed_x_amz_date_when_read_then_400_as_s3_words_it() -> None:
    fields = {**_presigned("s3v4")["fields"], "x-amz-date": "2026-12-01"}

    error = _error(signed_form, _form(fields), "us-east-1")

    assert error.message == "X-Amz-Date must be formated via ISO8601 Long format"
    assert error.elements == {"ArgumentName": "X-Amz-Date", "ArgumentValue": "2026-12-01"}


def test_given_only_key_and_policy_when_read_then_anonymous() -> None:
    assert signed_form(_form({"key": "k", "policy": "e30="}), "us-east-1") is None


# -- the policy document ------------------------------------------------------------------------


def test_given_an_expired_policy_when_checked_then_403_policy_expired() -> None:
    error = _error(check_expiration, {"expiration": "2026-12-01T11:59:59Z"}, NOW)

    assert (error.status, error.code, error.message) == (
        403,
        "AccessDenied",
        "Invalid according to Policy: Policy expired.",
    )
    check_expiration({"expiration": "2026-12-01T12:00:00.000Z"}, NOW)  # AWS's documented form, not yet past


def test_given_an_unreadable_expiration_or_policy_when_checked_then_400_invalid_policy_document() -> None:
    offset = _error(check_expiration, {"expiration": "2011-09-13T07:52:58+02:00"}, NOW)
    not_json = _error(decode_policy, base64.b64encode(b"{not json").decode())

    assert (offset.status, offset.code) == (400, "InvalidPolicyDocument")
    assert offset.message == "Invalid Policy: Invalid 'expiration' value: '2011-09-13T07:52:58+02:00'"
    assert not_json.message == "Invalid Policy: Invalid JSON."


# -- conditions ---------------------------------------------------------------------------------


def _app_form(**overrides: str) -> PostForm:
    fields = {"Content-Type": "image/png", "key": "uploads/u1/cat.png", **overrides}
    return _form(fields)


APP_CONDITIONS: list[Any] = [
    {"bucket": BUCKET},
    {"key": "uploads/u1/cat.png"},
    {"Content-Type": "image/png"},
    ["content-length-range", 1, 1024],
]


def test_given_the_apps_form_when_its_conditions_are_checked_then_the_size_range_is_the_policys() -> None:
    assert check_conditions(APP_CONDITIONS, _app_form(), BUCKET) == SizeRange(1, 1024)


def test_given_another_content_type_when_checked_then_403_naming_the_condition_as_an_eq_array() -> None:
    error = _error(check_conditions, APP_CONDITIONS, _app_form(**{"Content-Type": "text/html"}), BUCKET)

    assert (error.status, error.code) == (403, "AccessDenied")
    assert error.message == 'Invalid according to Policy: Policy Condition failed: ["eq", "$Content-Type", "image/png"]'


def test_given_another_bucket_or_key_when_checked_then_the_bucket_or_key_condition_fails() -> None:
    other_bucket = _error(check_conditions, APP_CONDITIONS, _app_form(), "another-bucket")
    other_key = _error(check_conditions, APP_CONDITIONS, _app_form(key="uploads/u2/cat.png"), BUCKET)

    assert other_bucket.message.endswith(f'["eq", "$bucket", "{BUCKET}"]')
    assert other_key.message.endswith('["eq", "$key", "uploads/u1/cat.png"]')


def test_given_starts_with_conditions_when_checked_then_prefixes_lists_and_absent_fields_as_s3() -> None:
    prefix = [["starts-with", "$key", "uploads/u1/"], ["starts-with", "$Content-Type", "image/"]]

    check_conditions(prefix, _form({"key": "uploads/u1/${filename}", "Content-Type": "image/png,image/gif"}), BUCKET)
    in_list = _error(
        check_conditions, prefix, _form({"key": "uploads/u1/a", "Content-Type": "image/png,text/plain"}), BUCKET
    )
    absent = _error(check_conditions, [["starts-with", "$x-amz-meta-tag", ""]], _form({}), BUCKET)

    assert in_list.message.endswith('["starts-with", "$Content-Type", "image/"]')
    assert absent.message.endswith('["starts-with", "$x-amz-meta-tag", ""]')


def test_given_a_field_no_condition_names_when_checked_then_403_extra_input_fields() -> None:
    error = _error(check_conditions, APP_CONDITIONS, _app_form(**{"x-amz-meta-owner": "ada"}), BUCKET)

    assert (error.status, error.code) == (403, "AccessDenied")
    assert error.message == "Invalid according to Policy: Extra input fields: x-amz-meta-owner"
    check_conditions(APP_CONDITIONS, _app_form(**{"x-ignore-flash": "1"}), BUCKET)  # the documented escape hatch


def test_given_malformed_conditions_when_checked_then_s3s_answers() -> None:
    two_keys = _error(check_conditions, [{"bucket": BUCKET, "key": "k"}], _app_form(), BUCKET)
    word_range = _error(check_conditions, [["content-length-range", "test", "10"]], _app_form(), BUCKET)
    float_range = _error(check_conditions, [["content-length-range", 0, 512.0]], _app_form(), BUCKET)
    no_dollar = _error(check_conditions, [["eq", "key", "uploads/u1/cat.png"]], _app_form(), BUCKET)

    assert (two_keys.status, two_keys.code) == (400, "InvalidPolicyDocument")
    assert two_keys.message == (
        "Invalid Policy: Invalid Simple-Condition: Simple-Conditions must have exactly one property specified."
    )
    assert (word_range.status, word_range.message) == (
        403,
        'Invalid according to Policy: Policy Condition failed: ["content-length-range", "test", "10"]',
    )
    assert (float_range.status, float_range.message) == (400, "Invalid Policy: Invalid JSON.")
    assert no_dollar.message.endswith('["eq", "key", "uploads/u1/cat.png"]')
    assert check_conditions([["content-length-range", "5", "10"]], _form({}), BUCKET) == SizeRange(5, 10)


def test_given_a_file_name_when_conditions_are_checked_then_filename_is_expanded_first() -> None:
    form = _form({"key": "uploads/u1/${filename}"}, filename="C:\\Users\\ada\\cat.png")

    check_conditions([{"key": "uploads/u1/cat.png"}], form, BUCKET)
    assert _form({"key": "k/${filename}"}, filename=None).expanded("key") == "k/${filename}"  # no filename: kept


# -- size ---------------------------------------------------------------------------------------


def test_given_a_size_range_when_sizes_are_checked_then_bounds_are_inclusive_and_errors_name_the_sizes() -> None:
    sizes = SizeRange(5, 10)
    check_size(5, sizes)
    check_size(10, sizes)

    large = _error(check_size, 12, sizes)
    small = _error(check_size, 1, sizes)

    assert (large.status, large.code, large.message) == (
        400,
        "EntityTooLarge",
        "Your proposed upload exceeds the maximum allowed size",
    )
    assert large.elements == {"ProposedSize": "12", "MaxSizeAllowed": "10"}
    assert (small.status, small.code, small.message) == (
        400,
        "EntityTooSmall",
        "Your proposed upload is smaller than the minimum allowed size",
    )
    assert small.elements == {"ProposedSize": "1", "MinSizeAllowed": "5"}


def test_given_a_policy_without_a_range_when_checked_then_s3s_5_gib_single_upload_cap_applies() -> None:
    sizes = check_conditions([{"key": "k"}], _form({"key": "k"}), BUCKET)

    assert sizes == SizeRange(0, 5 * 1024**3)
    assert _error(check_size, 5 * 1024**3 + 1, sizes).code == "EntityTooLarge"


def test_given_now_past_expiry_by_a_second_when_checked_then_expired_and_a_second_before_not() -> None:
    document = {"expiration": (NOW - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert _error(check_expiration, document, NOW).code == "AccessDenied"
    check_expiration(document, NOW - timedelta(seconds=2))
