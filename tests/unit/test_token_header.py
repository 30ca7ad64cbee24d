"""The authorizer reads a token's header once, leniently, and leaves every check to ``jwt.decode``."""

from __future__ import annotations

import base64
import json

import pytest

from chalicelib.adapters.signing_keys import StaticSigningKeys
from chalicelib.domain.errors import AuthenticationError
from chalicelib.domain.ports import SigningKey
from chalicelib.domain.users import UserProfile
from chalicelib.services.tokens import TokenService

pytestmark = pytest.mark.unit

KEY = SigningKey("k1", b"0123456789abcdef0123456789abcdef")
USER = UserProfile("u1", "ada@example.com", "Ada", "2026-11-27T00:00:00.000000Z")


def _segment(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def service() -> TokenService:
    return TokenService(StaticSigningKeys([KEY]), "issuer", "audience", 3600)


@pytest.mark.parametrize(
    "token",
    ["", "one.two", "a.b.c.d", "!!!.e30.sig", f"{_segment([1, 2])}.e30.sig", f"{_segment({'alg': 'none'})}.e30."],
)
def test_given_a_malformed_token_when_verified_then_authentication_error(token: str) -> None:
    with pytest.raises(AuthenticationError):
        service().verify(token)


def test_given_a_valid_header_but_a_tampered_payload_when_verified_then_the_signature_check_still_refuses() -> None:
    tokens = service()
    header, _, signature = tokens.issue(USER).split(".")
    forged = _segment({"sub": "admin", "user_id": "admin", "roles": ["admin"]})

    with pytest.raises(AuthenticationError):
        tokens.verify(f"{header}.{forged}.{signature}")


def test_given_a_valid_token_when_verified_then_its_principal() -> None:
    tokens = service()

    assert tokens.verify(tokens.issue(USER)).user_id == "u1"
