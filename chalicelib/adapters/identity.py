"""Identity providers: Cognito for a deployed stage, an in-memory one for tests and the in-memory mode.

The API issues its own tokens (``chalicelib.services.tokens``); the identity
provider only holds passwords and answers "is this the right password?".
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import uuid
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import (
    AuthenticationError,
    ConflictError,
    DependencyUnavailableError,
    FieldError,
    ValidationError,
)
from chalicelib.domain.users import normalise_email, password_problems

logger = logging.getLogger(__name__)

# Every one of these means "these credentials do not log in"; the caller gets one answer for all.
_AUTH_FAILURES = frozenset(
    {"NotAuthorizedException", "UserNotFoundException", "UserNotConfirmedException", "PasswordResetRequiredException"}
)
# Worth a retry by the client: answered as 503 instead of an opaque 500.
_TRANSIENT = frozenset({"TooManyRequestsException", "InternalErrorException", "LimitExceededException"})


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _weak_password(exc: ClientError | None = None) -> ValidationError:
    detail = str(exc.response.get("Error", {}).get("Message", "")) if exc is not None else ""
    message = "does not meet the password policy" + (f": {detail}" if detail else "")
    return ValidationError(f"password: {message}", [FieldError("password", message)])


def _refused_attributes(exc: ClientError) -> ValidationError:
    """Cognito judges usernames and attribute values by rules stricter than ours (``a/b@x.io`` passes our check)."""
    detail = str(exc.response.get("Error", {}).get("Message", ""))
    field = "email" if any(word in detail.lower() for word in ("username", "email")) else "name"
    message = "was refused by the identity provider" + (f": {detail}" if detail else "")
    return ValidationError(f"{field}: {message}", [FieldError(field, message)])


def _unavailable(action: str) -> DependencyUnavailableError:
    return DependencyUnavailableError(f"The identity provider could not {action}; please retry")


class CognitoIdentityProvider:
    """Users in a Cognito user pool whose usernames are email addresses.

    ``admin_create_user`` alone leaves a user in ``FORCE_CHANGE_PASSWORD`` (so the
    seed's users could never log in); setting the password as permanent right
    after makes the user ``CONFIRMED``.
    """

    def __init__(self, client: Any, user_pool_id: str, client_id: str) -> None:
        self._idp = client
        self._pool_id = user_pool_id
        self._client_id = client_id

    def create_user(self, email: str, password: str, name: str) -> str:
        """Create a confirmed user; returns its ``sub``, which never changes even if the email does."""
        try:
            created = self._idp.admin_create_user(
                UserPoolId=self._pool_id,
                Username=email,
                UserAttributes=[
                    {"Name": "email", "Value": email},
                    {"Name": "name", "Value": name},
                    # The API's registration is the verification; Cognito must not mail a code.
                    {"Name": "email_verified", "Value": "true"},
                ],
                MessageAction="SUPPRESS",
            )
        except ClientError as exc:
            if _code(exc) == "UsernameExistsException":
                raise ConflictError("An account with this email already exists") from exc
            if _code(exc) == "InvalidParameterException":
                raise _refused_attributes(exc) from exc
            if _code(exc) in _TRANSIENT:
                raise _unavailable("create the user") from exc
            raise
        except BotoCoreError as exc:
            raise _unavailable("create the user") from exc

        try:
            self._idp.admin_set_user_password(
                UserPoolId=self._pool_id, Username=email, Password=password, Permanent=True
            )
            return self._sub(created["User"], email)
        except BaseException as exc:
            # A user without a usable password would make the email "taken" for every retry.
            self._discard(email)
            if isinstance(exc, ClientError) and _code(exc) == "InvalidPasswordException":
                raise _weak_password(exc) from exc
            if isinstance(exc, BotoCoreError) or (isinstance(exc, ClientError) and _code(exc) in _TRANSIENT):
                raise _unavailable("set the password") from exc
            raise

    def authenticate(self, email: str, password: str) -> None:
        """Check the password with ``ADMIN_USER_PASSWORD_AUTH``; Cognito's own tokens are not used."""
        try:
            answer = self._idp.admin_initiate_auth(
                UserPoolId=self._pool_id,
                ClientId=self._client_id,
                AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": email, "PASSWORD": password},
            )
        except ClientError as exc:
            if _code(exc) in _AUTH_FAILURES:
                raise AuthenticationError(f"cognito refused the login: {_code(exc)}") from exc
            if _code(exc) in _TRANSIENT:
                raise _unavailable("check the password") from exc
            raise
        except BotoCoreError as exc:
            raise _unavailable("check the password") from exc
        if answer.get("ChallengeName") or "AuthenticationResult" not in answer:
            # A challenge (new password, MFA) is a flow this API does not offer: not logged in.
            raise AuthenticationError(f"cognito answered with challenge {answer.get('ChallengeName')!r}")

    def delete_user(self, email: str) -> None:
        """Delete the user; one that is already gone counts as deleted."""
        try:
            self._idp.admin_delete_user(UserPoolId=self._pool_id, Username=email)
        except ClientError as exc:
            if _code(exc) != "UserNotFoundException":
                raise

    def _sub(self, user: dict[str, Any], email: str) -> str:
        for attribute in user.get("Attributes", []):
            if attribute.get("Name") == "sub":
                return str(attribute["Value"])
        # Not every answer lists ``sub``; the stored user always has it.
        stored = self._idp.admin_get_user(UserPoolId=self._pool_id, Username=email)
        for attribute in stored.get("UserAttributes", []):
            if attribute.get("Name") == "sub":
                return str(attribute["Value"])
        raise RuntimeError("cognito user has no sub attribute")

    def _discard(self, email: str) -> None:
        try:
            self.delete_user(email)
        except (ClientError, BotoCoreError):
            logger.exception("could not delete half-created cognito user; delete it before the email is reused")


class InMemoryIdentityProvider:
    """Salted scrypt hashes in a dict: the Cognito behaviour the services rely on, without AWS.

    ``scrypt_n`` is the scrypt cost; tests may lower it to stay fast.
    """

    def __init__(self, scrypt_n: int = 2**14) -> None:
        self._n = scrypt_n
        self._users: dict[str, tuple[str, bytes, bytes]] = {}  # email -> (user id, salt, hash)
        self._lock = threading.Lock()
        # Hashed for unknown emails too, so timing does not reveal which emails have accounts.
        self._dummy_salt = secrets.token_bytes(16)

    def create_user(self, email: str, password: str, name: str) -> str:
        if password_problems(password):
            raise _weak_password()
        salt = secrets.token_bytes(16)
        digest = self._hash(password, salt)
        key = normalise_email(email)
        user_id = str(uuid.uuid4())
        with self._lock:
            if key in self._users:
                raise ConflictError("An account with this email already exists")
            self._users[key] = (user_id, salt, digest)
        return user_id

    def authenticate(self, email: str, password: str) -> None:
        with self._lock:
            found = self._users.get(normalise_email(email))
        if found is None:
            self._hash(password, self._dummy_salt)
            raise AuthenticationError("unknown email")
        _, salt, expected = found
        if not hmac.compare_digest(self._hash(password, salt), expected):
            raise AuthenticationError("wrong password")

    def delete_user(self, email: str) -> None:
        with self._lock:
            self._users.pop(normalise_email(email), None)

    def _hash(self, password: str, salt: bytes) -> bytes:
        return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=self._n, r=8, p=1, dklen=32)
