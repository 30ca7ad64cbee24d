"""Domain errors. The API layer maps each class to one HTTP status code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field, e.g. ``items[0].quantity``."""

    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class DomainError(Exception):
    """Base class of every error the system reports to a caller on purpose."""

    code = "error"

    def __init__(self, message: str, details: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details or [])


class ValidationError(DomainError):
    """The input is malformed or breaks a rule; ``details`` names each field at fault."""

    code = "validation_error"


class AuthenticationError(DomainError):
    """Credentials or token are missing or wrong."""

    code = "unauthorized"


class ForbiddenError(DomainError):
    """The caller is known but may not do this."""

    code = "forbidden"


class NotFoundError(DomainError):
    code = "not_found"


class ConflictError(DomainError):
    """The request clashes with the current state (email taken, idempotency key reused)."""

    code = "conflict"


class PayloadTooLargeError(DomainError):
    code = "payload_too_large"


class DependencyUnavailableError(DomainError):
    """A downstream service failed after retries; the caller may retry safely."""

    code = "service_unavailable"


class InvalidTransitionError(DomainError):
    """An order was asked to move to a status its lifecycle does not allow."""

    code = "invalid_transition"


def invalid(field: str, message: str) -> ValidationError:
    """Shorthand for a validation error about a single field."""
    return ValidationError(f"{field}: {message}", [FieldError(field, message)])
