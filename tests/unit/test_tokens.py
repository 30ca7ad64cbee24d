"""Token issue and verification: the authorizer's core."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from chalicelib.adapters.memory import InMemoryUserRepository
from chalicelib.adapters.signing_keys import StaticSigningKeys
from chalicelib.api.auth import authorize, bearer_token
from chalicelib.domain.errors import AuthenticationError
from chalicelib.domain.ports import SigningKey
from chalicelib.domain.users import UserProfile
from chalicelib.services.authentication import Authenticator
from chalicelib.services.tokens import TokenService

pytestmark = pytest.mark.unit

KEY = SigningKey("k1", b"0123456789abcdef0123456789abcdef")
OLD = SigningKey("k0", b"fedcba9876543210fedcba9876543210")
USER = UserProfile("u1", "u1@example.com", "U", "t0", roles=("user", "admin"))
ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/api/GET/orders"


def service(clock: datetime | None = None, keys: list[SigningKey] | None = None) -> TokenService:
    moment = clock or datetime.now(UTC)
    return TokenService(
        StaticSigningKeys(keys or [KEY]), "ecommerce-backend-test", "ecommerce-backend-api", 3600, lambda: moment
    )


def test_given_an_issued_token_when_verifying_then_the_principal_comes_back() -> None:
    tokens = service()
    principal = tokens.verify(tokens.issue(USER))
    assert (principal.user_id, principal.email, principal.roles, principal.is_admin) == (
        "u1",
        "u1@example.com",
        ("user", "admin"),
        True,
    )


def test_given_a_token_signed_with_a_rotated_out_key_when_still_listed_then_accepted() -> None:
    old_token = service(keys=[OLD]).issue(USER)
    assert service(keys=[KEY, OLD]).verify(old_token).user_id == "u1"
    with pytest.raises(AuthenticationError):
        service(keys=[KEY]).verify(old_token)


@pytest.mark.parametrize(
    ("case", "make"),
    [
        ("expired", lambda: service(datetime.now(UTC) - timedelta(hours=2)).issue(USER)),
        ("not yet valid", lambda: service(datetime.now(UTC) + timedelta(hours=1)).issue(USER)),
        (
            "wrong issuer",
            lambda: TokenService(StaticSigningKeys([KEY]), "other", "ecommerce-backend-api", 60).issue(USER),
        ),
        (
            "wrong audience",
            lambda: TokenService(StaticSigningKeys([KEY]), "ecommerce-backend-test", "other", 60).issue(USER),
        ),
        ("foreign key same kid", lambda: service(keys=[SigningKey("k1", b"x" * 32)]).issue(USER)),
        ("HS512", lambda: jwt.encode({"sub": "u1"}, KEY.secret, algorithm="HS512", headers={"kid": "k1"})),
        ("no kid", lambda: jwt.encode({"sub": "u1"}, KEY.secret, algorithm="HS256")),
        ("missing claims", lambda: jwt.encode({"sub": "u1"}, KEY.secret, algorithm="HS256", headers={"kid": "k1"})),
        ("alg none", lambda: jwt.encode({"sub": "u1", "user_id": "u1"}, None, algorithm="none", headers={"kid": "k1"})),
        ("too long", lambda: "x" * 5000),
        ("empty", lambda: ""),
    ],
)
def test_given_a_bad_token_when_verifying_then_authentication_error(case: str, make: object) -> None:
    token = make()  # type: ignore[operator]
    with pytest.raises(AuthenticationError):
        service().verify(token)


def test_given_authorization_headers_when_parsing_then_only_bearer_tokens_pass() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None


def authenticator(tokens: TokenService, *profiles: UserProfile) -> Authenticator:
    users = InMemoryUserRepository()
    for profile in profiles:
        users.add(profile)
    return Authenticator(tokens, users)


def test_given_a_valid_token_when_authorizing_then_all_routes_allowed_with_context() -> None:
    tokens = service()
    policy = authorize(authenticator(tokens, USER), f"Bearer {tokens.issue(USER)}", ARN)
    statement = policy["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == ["arn:aws:execute-api:us-east-1:123456789012:abc123/api/*"]
    assert policy["context"] == {"user_id": "u1", "email": "u1@example.com", "roles": "user,admin"}


def test_given_an_invalid_token_when_authorizing_then_an_explicit_deny_not_an_exception() -> None:
    policy = authorize(authenticator(service(), USER), "Bearer nope", ARN)
    assert policy["principalId"] == "anonymous"
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Deny"


def test_given_the_token_of_a_deleted_account_when_authorizing_then_denied() -> None:
    tokens = service()
    policy = authorize(authenticator(tokens), f"Bearer {tokens.issue(USER)}", ARN)
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Deny"


def test_given_a_disabled_account_when_authenticating_then_refused() -> None:
    tokens = service()
    with pytest.raises(AuthenticationError, match="not active"):
        authenticator(tokens, replace(USER, status="disabled")).principal(tokens.issue(USER))


def test_given_a_role_revoked_after_login_when_authenticating_then_the_stored_roles_count() -> None:
    tokens = service()
    token = tokens.issue(USER)  # claims say admin
    principal = authenticator(tokens, replace(USER, roles=("user",))).principal(token)
    assert principal.roles == ("user",) and not principal.is_admin
