"""Access tokens: issued at login, verified by the API's custom authorizer.

HS256 with a key held in Secrets Manager; the token header's ``kid`` names the
key, so a rotated secret can hold the new key and the previous one at once.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import jwt

from chalicelib.domain.errors import AuthenticationError
from chalicelib.domain.ids import Clock, utc_now
from chalicelib.domain.ports import SigningKeys
from chalicelib.domain.users import Principal, UserProfile

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "user_id", "email", "roles", "iat", "exp", "iss", "aud"]
# Tokens longer than this are rejected before any parsing; real ones are ~500 bytes.
MAX_TOKEN_LENGTH = 4096


class TokenService:
    def __init__(self, keys: SigningKeys, issuer: str, audience: str, ttl_seconds: int, clock: Clock = utc_now) -> None:
        self._keys = keys
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds
        self._clock = clock

    def issue(self, user: UserProfile) -> str:
        now = self._clock()
        key = self._keys.current()
        claims = {
            "sub": user.user_id,
            "user_id": user.user_id,
            "email": user.email,
            "name": user.name,
            "roles": list(user.roles),
            "iat": now,
            "nbf": now,
            "exp": now + timedelta(seconds=self.ttl_seconds),
            "iss": self.issuer,
            "aud": self.audience,
        }
        return jwt.encode(claims, key.secret, algorithm=ALGORITHM, headers={"kid": key.kid})

    def verify(self, token: str) -> Principal:
        """Check signature (pinned algorithm), expiry, issuer and audience.

        Raises ``AuthenticationError`` with a reason fit for logs, never for the caller.
        """
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise AuthenticationError("token missing or too long")
        header = _unverified_header(token)
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise AuthenticationError("unexpected algorithm or key id")
        key = self._keys.find(kid)
        if key is None:
            raise AuthenticationError("unknown key id")
        try:
            claims = jwt.decode(
                token,
                key.secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": REQUIRED_CLAIMS},
                leeway=5,
            )
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(f"invalid token: {exc}") from exc
        roles = claims.get("roles")
        if (
            claims["sub"] != claims["user_id"]
            or not isinstance(roles, list)
            or not all(isinstance(r, str) for r in roles)
            or not isinstance(claims["email"], str)
        ):
            raise AuthenticationError("malformed claims")
        return Principal(user_id=claims["user_id"], email=claims["email"], roles=tuple(roles))


def _unverified_header(token: str) -> dict[str, Any]:
    """The token's header, read only to choose the key; ``jwt.decode`` then checks the whole token.

    Not ``jwt.get_unverified_header``: that decodes and validates every segment, character by
    character in Python, and ``jwt.decode`` does it all again, so the authorizer paid for each token
    twice (most of its warm time). Reading the small header segment here is lenient on purpose: a
    token this accepts but PyJWT's strict parsing refuses still fails in ``jwt.decode``, so which
    tokens pass, and as whom, is unchanged.
    """
    segments = token.split(".")
    if len(segments) != 3:
        raise AuthenticationError("malformed token: not three segments")
    encoded = segments[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, TypeError) as exc:  # binascii.Error, JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise AuthenticationError(f"malformed token: {exc}") from exc
    if not isinstance(header, dict):
        raise AuthenticationError("malformed token: the header is not a JSON object")
    return header
