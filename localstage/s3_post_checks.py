"""What S3 checks on a browser upload (POST Object with a POST policy), as pure functions.

moto 5.2.5 stores whatever a form POST carries: an expired policy, a forged signature, a file
over ``content-length-range``, another ``Content-Type`` or key. ``localstage.s3_post_policy``
runs these checks in front of it, so that the stage refuses what S3 refuses, with S3's status,
``Code``, message and extra elements. Sources, in order of weight:

- AWS, "POST Policy" (``sigv4-HTTPPOSTConstructPolicy``), "Creating a POST policy / form fields"
  (``sigv4-HTTPPOSTForms``), "Authenticating requests in browser-based uploads"
  (``sigv4-authentication-HTTPPOST``) and the S3 error table (``ErrorResponses``);
- S3's answers recorded against AWS in LocalStack's ``TestS3PresignedPost`` (validated
  2026-02-21): 403 ``AccessDenied`` "Invalid according to Policy: Policy expired." and "... Policy
  Condition failed: [...]", 400 ``EntityTooLarge`` / ``EntityTooSmall`` with ``ProposedSize`` and
  ``MaxSizeAllowed`` / ``MinSizeAllowed`` (bounds inclusive), 403 ``SignatureDoesNotMatch`` with the
  policy as ``StringToSign``, 400 ``InvalidArgument`` for a missing field, 412 for a body that is
  not multipart;
- answers captured in issue trackers (the "Extra input fields" rule, simple conditions printed as
  ``["eq", "$name", value]``, ``MaxPostPreDataLengthExceeded`` at 20,480 bytes, the wrong-region
  message). Messages no source shows are marked *unrecorded* where they are raised.

Both signature versions are checked: botocore's ``generate_presigned_post`` signs with SigV2
(``AWSAccessKeyId``/``signature``) unless the client is configured for ``s3v4``, and S3 accepts both.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.auth import HmacV1Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SIGV4_ALGORITHM = "AWS4-HMAC-SHA256"
MAX_PRE_DATA_BYTES = 20_480  # "The form data and boundaries (excluding the contents of the file) cannot exceed 20KB."
MAX_OBJECT_BYTES = 5 * 1024**3  # the largest single upload without a content-length-range of its own
# Fields no condition needs to name (sigv4-HTTPPOSTConstructPolicy; the SigV2 page adds AWSAccessKeyId, signature).
EXEMPT_FIELDS = frozenset({"x-amz-signature", "file", "policy", "awsaccesskeyid", "signature"})
_V4_FIELDS = (("x-amz-algorithm", "X-Amz-Algorithm"), ("x-amz-credential", "X-Amz-Credential"))
_V4_LATER_FIELDS = (("x-amz-date", "X-Amz-Date"), ("x-amz-signature", "X-Amz-Signature"))
_ISO8601_LONG = re.compile(r"^\d{8}T\d{6}Z$")
_EXPIRATION_FORMATS = ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ")
_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your key and signing method."
)


class S3PostError(Exception):
    """One S3 error answer: status, ``Code``, ``Message`` and the elements S3 adds for that code."""

    def __init__(self, status: int, code: str, message: str, **elements: object) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.elements = {name: str(value) for name, value in elements.items()}


def condition_failed(condition: object) -> S3PostError:
    """403 ``AccessDenied`` naming the condition as S3 prints it (a simple condition as an ``eq`` array)."""
    if isinstance(condition, dict):
        (name, value), *_ = condition.items()
        condition = ["eq", f"${name}", value]
    return S3PostError(
        403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}"
    )


def invalid_policy(reason: str) -> S3PostError:
    return S3PostError(400, "InvalidPolicyDocument", f"Invalid Policy: {reason}")


def missing_field(name: str) -> S3PostError:
    message = (
        f"Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields."
    )
    return S3PostError(400, "InvalidArgument", message, ArgumentName=name, ArgumentValue="")


@dataclass
class PostForm:
    """The fields before the file part (names as sent, in order) and what is known of the file."""

    fields: list[tuple[str, str]] = field(default_factory=list)
    filename: str | None = None  # the file part's ``filename`` parameter, if it has one

    def get(self, name: str) -> str | None:
        """A field's value (names are case-insensitive); repeated fields are joined by commas, as S3 does."""
        values = [value for sent, value in self.fields if sent.lower() == name.lower()]
        return ",".join(values) if values else None

    def basename(self) -> str | None:
        """What ``${filename}`` stands for: the file name after its last slash or backslash."""
        return None if self.filename is None else re.split(r"[/\\]", self.filename)[-1]

    def expanded(self, name: str) -> str | None:
        """The value with ``${filename}`` replaced: "All variables within the form are expanded prior to
        validating the POST policy." Without a ``filename`` parameter S3 keeps the text as sent."""
        value, basename = self.get(name), self.basename()
        return value if value is None or basename is None else value.replace("${filename}", basename)


@dataclass(frozen=True)
class SignedForm:
    """Who signed the form, and how: what ``verify_signature`` needs."""

    version: int  # 2 or 4
    access_key_id: str
    signature: str
    policy: str
    security_token: str | None
    credential_date: str = ""  # SigV4 only: YYYYMMDD from x-amz-credential
    region: str = ""


@dataclass(frozen=True)
class Identity:
    """A secret the stage knows for an access key, and the session token it requires, if any.

    ``any_token``: the stage's own fake key, which a shell's leftover ``AWS_SESSION_TOKEN`` may
    accompany; only moto's STS sessions have a token to check.
    """

    secret_access_key: str
    session_token: str | None = None
    expired: bool = False
    any_token: bool = False


@dataclass(frozen=True)
class SizeRange:
    minimum: int = 0
    maximum: int = MAX_OBJECT_BYTES


def signed_form(form: PostForm, bucket_region: str | None) -> SignedForm | None:
    """The signature fields of ``form`` checked for presence and shape; ``None`` for an anonymous form."""
    if form.get("key") is None:
        raise missing_field("key")
    token = form.get("x-amz-security-token")
    if any(form.get(name) is not None for name, _ in (*_V4_FIELDS, *_V4_LATER_FIELDS)):
        for name, spelled in (*_V4_FIELDS, *_V4_LATER_FIELDS):
            if form.get(name) is None:
                raise missing_field(spelled)
        return _sigv4_form(form, token, bucket_region)
    if form.get("awsaccesskeyid") is not None or form.get("signature") is not None:
        for name, spelled in (("awsaccesskeyid", "AWSAccessKeyId"), ("signature", "Signature")):
            if form.get(name) is None:
                raise missing_field(spelled)
        policy = form.get("policy")
        if policy is None:
            raise missing_field("Policy")  # unrecorded: S3's answer to a signature without a policy
        return SignedForm(2, str(form.get("awsaccesskeyid")), str(form.get("signature")), policy, token)
    return None


def _sigv4_form(form: PostForm, token: str | None, bucket_region: str | None) -> SignedForm:
    algorithm, credential, date = (str(form.get(n)) for n in ("x-amz-algorithm", "x-amz-credential", "x-amz-date"))
    if algorithm != SIGV4_ALGORITHM:  # unrecorded message (the one presigned URLs get)
        raise S3PostError(
            400,
            "InvalidArgument",
            f'X-Amz-Algorithm only supports "{SIGV4_ALGORITHM}"',
            ArgumentName="X-Amz-Algorithm",
            ArgumentValue=algorithm,
        )
    parts = credential.split("/")
    if len(parts) != 5:  # unrecorded message
        raise _bad_credential(
            credential, 'the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'
        )
    access_key_id, scope_date, region, service, terminal = parts
    if not access_key_id:
        raise _bad_credential(credential, "a non-empty Access Key (AKID) must be provided in the credential.")
    if not re.fullmatch(r"\d{8}", scope_date):  # unrecorded message
        raise _bad_credential(
            credential,
            f'incorrect date format "{scope_date}". This date in the credential must be in the format "yyyyMMdd".',
        )
    if bucket_region is not None and region != bucket_region:
        error = _bad_credential(credential, f"the region '{region}' is wrong; expecting '{bucket_region}'")
        error.elements["Region"] = bucket_region
        raise error
    if service != "s3":  # unrecorded message
        raise _bad_credential(credential, f'incorrect service "{service}". This endpoint belongs to "s3".')
    if terminal != "aws4_request":  # unrecorded message
        raise _bad_credential(credential, f'incorrect terminal "{terminal}". This endpoint uses "aws4_request".')
    if not _ISO8601_LONG.match(date):
        raise S3PostError(
            400,
            "InvalidArgument",
            "X-Amz-Date must be formated via ISO8601 Long format",  # sic, as S3 writes it
            ArgumentName="X-Amz-Date",
            ArgumentValue=date,
        )
    policy = form.get("policy")
    if policy is None:
        raise missing_field("Policy")  # unrecorded
    return SignedForm(4, access_key_id, str(form.get("x-amz-signature")), policy, token, scope_date, region)


def _bad_credential(credential: str, message: str) -> S3PostError:
    return S3PostError(400, "InvalidArgument", message, ArgumentName="X-Amz-Credential", ArgumentValue=credential)


def verify_signature(signed: SignedForm, identity: Identity | None) -> None:
    """The key, the session token and the signature over the policy text as sent (checked before decoding it)."""
    # A session's key without its token is taken for an unknown key (unrecorded: no capture shows it).
    if identity is None or (identity.session_token is not None and signed.security_token is None):
        raise S3PostError(
            403,
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
            AWSAccessKeyId=signed.access_key_id,
        )
    if not identity.any_token and signed.security_token not in (None, identity.session_token):
        raise S3PostError(400, "InvalidToken", "The provided token is malformed or otherwise invalid.")
    if identity.expired:
        raise S3PostError(400, "ExpiredToken", "The provided token has expired.")
    expected = expected_signature(signed, identity.secret_access_key)
    if not hmac.compare_digest(expected.encode(), signed.signature.encode()):
        raise S3PostError(
            403,
            "SignatureDoesNotMatch",
            _SIGNATURE_MISMATCH,
            AWSAccessKeyId=signed.access_key_id,
            StringToSign=signed.policy,
            SignatureProvided=signed.signature,
            StringToSignBytes=" ".join(f"{byte:02x}" for byte in signed.policy.encode()),
        )


def expected_signature(signed: SignedForm, secret_access_key: str) -> str:
    """botocore's own signers: HMAC-SHA1 (base64) for SigV2, the SigV4 signing key's HMAC-SHA256 (hex) for SigV4."""
    credentials = Credentials(signed.access_key_id, secret_access_key)
    if signed.version == 2:
        return str(HmacV1Auth(credentials).sign_string(signed.policy))
    request = AWSRequest(method="POST", url="/")
    request.context["timestamp"] = f"{signed.credential_date}T000000Z"  # only its date part derives the key
    return str(SigV4Auth(credentials, "s3", signed.region).signature(signed.policy, request))


def decode_policy(policy: str) -> dict[str, Any]:
    """The policy document; a policy that is not base64 JSON with expiration and conditions is a 400."""
    try:
        document = json.loads(base64.b64decode(policy, validate=True))
    except (binascii.Error, ValueError):
        raise invalid_policy("Invalid JSON.") from None
    if not isinstance(document, dict):
        raise invalid_policy("Invalid JSON.")
    if "expiration" not in document:
        raise invalid_policy("Policy missing expiration.")  # unrecorded message
    if not isinstance(document.get("conditions"), list):
        raise invalid_policy("Policy missing conditions.")  # unrecorded message
    return document


def check_expiration(document: Mapping[str, Any], now: datetime) -> None:
    text = document["expiration"]
    for layout in _EXPIRATION_FORMATS:
        try:
            expires = datetime.strptime(str(text), layout).replace(tzinfo=UTC)
        except ValueError:
            continue
        if now > expires:
            raise S3PostError(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
        return
    raise invalid_policy(f"Invalid 'expiration' value: '{text}'")


def check_conditions(conditions: Sequence[Any], form: PostForm, bucket: str) -> SizeRange:
    """Every condition, then the rule that each field is named by one; returns the size range to apply."""
    sizes = SizeRange()
    named: set[str] = set()
    for condition in conditions:
        name, passed, size = _evaluate(condition, form, bucket)
        named.add(name)
        if not passed:
            raise condition_failed(condition)
        if size is not None:
            sizes = SizeRange(max(sizes.minimum, size.minimum), min(sizes.maximum, size.maximum))
    for sent, _ in form.fields:
        lowered = sent.lower()
        if lowered not in EXEMPT_FIELDS and not lowered.startswith("x-ignore-") and lowered not in named:
            raise S3PostError(403, "AccessDenied", f"Invalid according to Policy: Extra input fields: {sent}")
    return sizes


def _evaluate(condition: Any, form: PostForm, bucket: str) -> tuple[str, bool, SizeRange | None]:
    """``(lowercased field name, passed, size range)`` of one condition."""
    if isinstance(condition, dict):
        if len(condition) != 1:
            raise invalid_policy(
                "Invalid Simple-Condition: Simple-Conditions must have exactly one property specified."
            )
        (name, value), *_ = condition.items()
        if value is None:
            raise invalid_policy("Invalid JSON.")  # as S3 answered {"success_action_redirect": null}
        if not isinstance(value, str):
            raise invalid_policy("Invalid Simple-Condition: value must be a string.")
        return name.lower(), _value_of(name, form, bucket) == value, None
    if not isinstance(condition, list) or not condition or not isinstance(condition[0], str):
        raise invalid_policy("Invalid condition test: must be a List or Object.")  # unrecorded message
    operation = condition[0]
    if operation not in ("eq", "starts-with", "content-length-range"):
        raise invalid_policy(f"Invalid Condition: unknown operation '{operation}'.")  # unrecorded message
    if len(condition) != 3:
        raise invalid_policy(f"Invalid {operation}: wrong number of arguments.")  # unrecorded message
    if operation == "content-length-range":
        return "", *_size_range(condition[1], condition[2])
    reference, expected = condition[1], condition[2]
    if not isinstance(reference, str) or not isinstance(expected, str):
        raise invalid_policy("Invalid JSON.")
    name = reference[1:].lower() if reference.startswith("$") else ""
    actual = _value_of(name, form, bucket) if name else None
    if actual is None:  # "$" missing, or a field the form lacks: S3 refuses even ["starts-with", "$x", ""]
        return name, False, None
    if operation == "eq":
        return name, actual == expected, None
    if name == "content-type":  # "Content-Types values for a starts-with condition that include commas are lists"
        return name, all(part.strip().startswith(expected) for part in actual.split(",")), None
    return name, actual.startswith(expected), None


def _value_of(name: str, form: PostForm, bucket: str) -> str | None:
    return bucket if name.lower() == "bucket" else form.expanded(name)


def _size_range(low: object, high: object) -> tuple[bool, SizeRange | None]:
    if any(isinstance(bound, float | bool) or bound is None for bound in (low, high)):
        raise invalid_policy("Invalid JSON.")  # as S3 answered ["content-length-range", 0, 512.0]
    try:
        minimum, maximum = int(str(low)), int(str(high))  # S3 takes "5" as well as 5
    except ValueError:
        return False, None
    return True, SizeRange(minimum, maximum)


def check_size(size: int, sizes: SizeRange) -> None:
    if size > sizes.maximum:
        raise S3PostError(
            400,
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size",
            ProposedSize=size,
            MaxSizeAllowed=sizes.maximum,
        )
    if size < sizes.minimum:
        raise S3PostError(
            400,
            "EntityTooSmall",
            "Your proposed upload is smaller than the minimum allowed size",
            ProposedSize=size,
            MinSizeAllowed=sizes.minimum,
        )
