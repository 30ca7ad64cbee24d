"""Users: registration rules and the profile kept in the Users table.

Credentials never live here: the identity provider (Cognito) holds passwords.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from chalicelib.domain.validation import Fields

ROLE_USER = "user"
ROLE_ADMIN = "admin"
ROLES = frozenset({ROLE_USER, ROLE_ADMIN})

STATUS_ACTIVE = "active"

# Pragmatic address check; the identity provider is the final judge of deliverability.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$")

# Kept in step with the Cognito pool's PasswordPolicy in infra/template.py.
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user a verified token names, as the authorizer passes it to the routes."""

    user_id: str
    email: str
    roles: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        return ROLE_ADMIN in self.roles


@dataclass(frozen=True)
class Registration:
    email: str
    password: str
    name: str
    marketing_emails: bool


@dataclass(frozen=True)
class Credentials:
    email: str
    password: str


@dataclass(frozen=True)
class UserProfile:
    user_id: str
    email: str
    name: str
    created_at: str
    status: str = STATUS_ACTIVE
    roles: tuple[str, ...] = (ROLE_USER,)
    preferences: dict[str, Any] = field(default_factory=dict)

    @property
    def is_admin(self) -> bool:
        return ROLE_ADMIN in self.roles

    def with_role(self, role: str) -> UserProfile:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        if role in self.roles:
            return self
        return replace(self, roles=tuple(sorted({*self.roles, role})))

    def public(self) -> dict[str, Any]:
        """The profile as ``GET /users/{user_id}`` shows it."""
        return {
            "user_id": self.user_id,
            "email": self.email,
            "name": self.name,
            "created_at": self.created_at,
            "status": self.status,
            "roles": list(self.roles),
            "preferences": dict(self.preferences),
        }


def normalise_email(email: str) -> str:
    return email.strip().lower()


def password_problems(password: str) -> list[str]:
    """What a password lacks under the pool's policy; empty when it is strong enough."""
    problems = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"at least {PASSWORD_MIN_LENGTH} characters")
    if not re.search(r"[a-z]", password):
        problems.append("a lowercase letter")
    if not re.search(r"[A-Z]", password):
        problems.append("an uppercase letter")
    if not re.search(r"[0-9]", password):
        problems.append("a digit")
    return problems


def parse_registration(data: Any) -> Registration:
    f = Fields(data)
    f.reject_unknown({"email", "password", "name", "marketing_emails"})
    email = f.text("email", max_len=254)
    if email is not None and not _EMAIL.match(email):
        f.fail("email", "must be a valid email address")
    password = _password(f)
    if password is not None:
        missing = password_problems(password)
        if missing:
            f.fail("password", "is too weak: needs " + ", ".join(missing))
    name = f.text("name", max_len=100)
    marketing = f.boolean("marketing_emails", default=False)
    f.raise_if_any("The registration is invalid")
    assert email is not None and password is not None and name is not None
    return Registration(normalise_email(email), password, name, marketing)


def parse_credentials(data: Any) -> Credentials:
    f = Fields(data)
    f.reject_unknown({"email", "password"})
    email = f.text("email", max_len=254)
    password = _password(f)
    f.raise_if_any("The login request is invalid")
    assert email is not None and password is not None
    return Credentials(normalise_email(email), password)


def _password(f: Fields) -> str | None:
    # Passwords are not stripped: leading or trailing spaces are part of the secret.
    raw = f.data.get("password")
    if raw is None:
        f.fail("password", "is required")
        return None
    if not isinstance(raw, str):
        f.fail("password", "must be a string")
        return None
    if not raw or len(raw) > PASSWORD_MAX_LENGTH:
        f.fail("password", f"must have 1 to {PASSWORD_MAX_LENGTH} characters")
        return None
    return raw
