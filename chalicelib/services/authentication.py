"""Who a bearer token speaks for *now*: a valid signature is not enough once the account is gone.

A token lives for ``TOKEN_TTL_SECONDS`` (a day); an account deleted or disabled in the
meantime must stop working before that. The authorizer therefore reads the profile
behind each token it verifies (one ``GetItem``; API Gateway caches the verdict per token
for the authorizer's ``ttl_seconds``, 60 s, which bounds how long a deleted account's
token still works). Roles come from the stored profile too, so a revoked admin role
ends with the cache, not with the token.
"""

from __future__ import annotations

from chalicelib.domain.errors import AuthenticationError
from chalicelib.domain.ports import UserRepository
from chalicelib.domain.users import STATUS_ACTIVE, Principal
from chalicelib.services.tokens import TokenService


class Authenticator:
    def __init__(self, tokens: TokenService, users: UserRepository) -> None:
        self._tokens = tokens
        self._users = users

    def principal(self, token: str) -> Principal:
        """The caller behind ``token``; ``AuthenticationError`` if the token or its account is not valid."""
        claimed = self._tokens.verify(token)
        profile = self._users.get(claimed.user_id)
        if profile is None or profile.status != STATUS_ACTIVE:
            raise AuthenticationError(f"account {claimed.user_id} no longer exists or is not active")
        return Principal(user_id=profile.user_id, email=profile.email, roles=profile.roles)
