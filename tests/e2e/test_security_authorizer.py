"""The authorizer under attack, over HTTP on the running local stage: every bad token refused, never a 5xx.

Forged tokens that need the stage's real key (wrong issuer, not yet valid...) are signed with
the key read from the embedded Secrets Manager through the AWS endpoint: the test checks that
the claims are verified, not only the signature.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jwt
import pytest

from runbooks.stage_client import StageClient
from tests.e2e.conftest import RunningStage
from tests.e2e.support import aws

pytestmark = pytest.mark.e2e

SECRET_ID = "ecommerce-backend-signing-key-local"
USERS_TABLE = "ecommerce-backend-users-local"
ATTACKER_KEY = "attacker-key-that-is-long-enough-for-hs256!"
PASSWORD = "Sup3r-secret"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _register_and_login(stage: RunningStage) -> tuple[str, str]:
    with StageClient.open(stage.api_url) as client:
        customer = client.register("target", PASSWORD, "T")
    return customer.email, customer.access_token


def _get_orders(stage: RunningStage, authorization: str | bytes | None) -> httpx.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    return httpx.get(f"{stage.api_url}/orders", headers=headers, timeout=15)


@pytest.fixture(scope="module")
def real_key(local_stage: RunningStage) -> tuple[str, str]:
    secret = json.loads(aws(local_stage, "secretsmanager").get_secret_value(SecretId=SECRET_ID)["SecretString"])
    return str(secret["kid"]), str(secret["key"])


def test_given_malformed_or_missing_authorization_headers_then_401_or_403_never_5xx(local_stage: RunningStage) -> None:
    _, token = _register_and_login(local_stage)
    candidates: dict[str, str | bytes | None] = {
        "missing": None,
        "empty": "",
        "scheme only": "Bearer",
        "other scheme": f"Basic {token}",
        "two tokens": f"Bearer {token} {token}",
        "one segment": "Bearer abc",
        "two segments": "Bearer abc.def",
        "bad base64": "Bearer !!!.@@@.###",
        "json garbage": f"Bearer {_b64({'alg': 'HS256'})}.{_b64({'x': 1})[:-1]}%.sig",
        "non-ascii bytes": b"Bearer \xff\xfe\xfd",
        "oversized token": "Bearer " + "a" * 5000,
        "oversized header": "Bearer " + ("x" * 100 + ".") * 80,
    }
    answers = {name: _get_orders(local_stage, value).status_code for name, value in candidates.items()}
    assert all(status in (401, 403) for status in answers.values()), answers
    assert answers["missing"] == 401
    assert _get_orders(local_stage, f"Bearer {token}").status_code == 200


def test_given_forged_or_stale_tokens_when_calling_then_each_is_refused(
    local_stage: RunningStage, real_key: tuple[str, str]
) -> None:
    kid, key = real_key
    _, token = _register_and_login(local_stage)
    claims = jwt.decode(token, options={"verify_signature": False})
    head, payload, signature = token.split(".")
    now = int(time.time())

    def signed(changes: dict[str, Any], signing_key: str = key, alg: str = "HS256", key_id: str = kid) -> str:
        return jwt.encode({**claims, **changes}, signing_key, algorithm=alg, headers={"kid": key_id})

    forged = {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{payload}.",
        "alg none, no signature segment": f"{_b64({'alg': 'none', 'kid': kid})}.{payload}",
        "wrong algorithm (HS512, real key)": signed({}, alg="HS512"),
        "wrong algorithm header on an HS256 signature": f"{_b64({'alg': 'HS384', 'kid': kid})}.{payload}.{signature}",
        "wrong key": signed({}, signing_key=ATTACKER_KEY),
        "unknown kid": signed({}, key_id="k-unknown"),
        "tampered payload (admin role)": f"{head}.{_b64({**claims, 'roles': ['admin']})}.{signature}",
        "tampered payload (other user)": f"{head}.{_b64({**claims, 'sub': 'usr_x', 'user_id': 'usr_x'})}.{signature}",
        "expired": signed({"iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}),
        "not yet valid": signed({"nbf": now + 3600}),
        "issued in the future and not yet valid": signed({"iat": now + 3600, "nbf": now + 3600}),
        "wrong issuer": signed({"iss": "ecommerce-backend-prod"}),
        "wrong audience": signed({"aud": "someone-else"}),
        "no expiry": jwt.encode(
            {k: v for k, v in claims.items() if k != "exp"}, key, algorithm="HS256", headers={"kid": kid}
        ),
        "sub differs from user_id": signed({"user_id": "usr_other"}),
        "roles not a list": signed({"roles": "admin"}),
    }
    answers = {name: _get_orders(local_stage, f"Bearer {value}").status_code for name, value in forged.items()}
    assert all(status == 403 for status in answers.values()), answers
    # The control: a token signed the same way with the true claims is accepted, so the refusals are the claims'.
    assert _get_orders(local_stage, f"Bearer {signed({})}").status_code == 200


def test_given_a_deleted_account_when_its_unexpired_token_is_used_then_403(local_stage: RunningStage) -> None:
    email, token = _register_and_login(local_stage)
    user_id = jwt.decode(token, options={"verify_signature": False})["user_id"]
    pool_id = aws(local_stage, "cognito-idp").list_user_pools(MaxResults=10)["UserPools"][0]["Id"]

    aws(local_stage, "cognito-idp").admin_delete_user(UserPoolId=pool_id, Username=email)
    aws(local_stage, "dynamodb").delete_item(TableName=USERS_TABLE, Key={"user_id": {"S": user_id}})

    # The token was never presented before, so no cached Allow: the authorizer sees the account is gone.
    assert _get_orders(local_stage, f"Bearer {token}").status_code == 403
    relogin = httpx.post(f"{local_stage.api_url}/auth/login", json={"email": email, "password": PASSWORD}, timeout=15)
    assert relogin.status_code == 401


def test_given_the_gateways_own_refusals_then_a_browser_can_read_them_and_their_request_id(
    local_stage: RunningStage,
) -> None:
    # GIVEN a request without a token and one with a forged token
    missing = _get_orders(local_stage, None)
    forged = _get_orders(local_stage, f"Bearer {_b64({'alg': 'HS256'})}.{_b64({'sub': 'x'})}.sig")
    # THEN each is the stage's gateway response: the API's error format, the CORS origin, the request id
    for answer, status, code in ((missing, 401, "unauthorized"), (forged, 403, "forbidden")):
        assert answer.status_code == status
        body = answer.json()
        assert (body["error"], body["details"]) == (code, [])
        assert answer.headers["X-Request-Id"] == body["request_id"] != ""
        assert answer.headers["Access-Control-Allow-Origin"] == "*"  # the local stage's CORS_ALLOW_ORIGIN
