"""Registration, login and profiles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import AuthenticationError, ConflictError, ForbiddenError, NotFoundError
from chalicelib.domain.ids import Clock, iso, utc_now
from chalicelib.domain.ports import IdentityProvider, UserRepository
from chalicelib.domain.users import ROLE_ADMIN, Principal, Registration, UserProfile
from chalicelib.services.tokens import TokenService

# One answer for an unknown email and a wrong password, so the API does not reveal who has an account.
INVALID_CREDENTIALS = "Invalid email or password"


@dataclass(frozen=True)
class LoginResult:
    access_token: str
    expires_in: int
    user: UserProfile

    def to_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "user": {"user_id": self.user.user_id, "email": self.user.email, "name": self.user.name},
        }


class UserService:
    def __init__(
        self,
        identity: IdentityProvider,
        users: UserRepository,
        tokens: TokenService,
        clock: Clock = utc_now,
    ) -> None:
        self._identity = identity
        self._users = users
        self._tokens = tokens
        self._clock = clock

    def register(self, registration: Registration, roles: tuple[str, ...] = ("user",)) -> UserProfile:
        """Create the credentials (identity provider), then the profile (Users table).

        If the profile cannot be stored the credentials are deleted again, so a
        retry with the same email is not refused as "taken".
        """
        if self._users.get_by_email(registration.email) is not None:
            raise ConflictError("An account with this email already exists")
        user_id = self._identity.create_user(registration.email, registration.password, registration.name)
        profile = UserProfile(
            user_id=user_id,
            email=registration.email,
            name=registration.name,
            created_at=iso(self._clock()),
            roles=roles,
            preferences={"notifications": True, "marketing_emails": registration.marketing_emails},
        )
        try:
            self._users.add(profile)
        except BaseException:
            self._identity.delete_user(registration.email)
            raise
        return profile

    def login(self, email: str, password: str) -> LoginResult:
        try:
            self._identity.authenticate(email, password)
        except AuthenticationError as exc:
            raise AuthenticationError(INVALID_CREDENTIALS) from exc
        profile = self._users.get_by_email(email)
        if profile is None:
            # Credentials without a profile: a half-finished registration. Treat as unknown.
            raise AuthenticationError(INVALID_CREDENTIALS)
        return LoginResult(self._tokens.issue(profile), self._tokens.ttl_seconds, profile)

    def get_profile(self, caller: Principal, user_id: str) -> UserProfile:
        """A user reads their own profile; an admin reads anyone's."""
        if caller.user_id != user_id and not caller.is_admin:
            raise ForbiddenError("You may only read your own profile")
        profile = self._users.get(user_id)
        if profile is None:
            raise NotFoundError(f"User {user_id} not found")
        return profile

    def grant_admin(self, email: str) -> UserProfile:
        """Promote an existing user (used by ``make admin``)."""
        profile = self._users.get_by_email(email)
        if profile is None:
            raise NotFoundError(f"No user with email {email}")
        promoted = profile.with_role(ROLE_ADMIN)
        if promoted is not profile:
            self._users.save(promoted)
        return promoted
