"""Stack events and the failures that produce them, for the stack an operation is running for.

moto records only the stack's own events; CloudFormation records each resource's, and
``scripts/deploy.py`` names a failed deploy's causes from its ``*_FAILED`` events. moto's parsing
functions are not given the stack, so each stack operation (``localstage.cloudformation.stack``) sets it here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import Event, Stack

from localstage.cloudformation.model import FillError

# The stack an operation runs for, so resource events land on it.
_operation: ContextVar[Stack | None] = ContextVar("cloudformation_operation", default=None)


class ResourceFailed(ValidationError):
    """One resource failed; a ``ValidationError`` so that, should it ever escape an operation (a change
    set), the caller gets CloudFormation's 400 with the reason rather than a 500."""

    def __init__(self, logical_id: str, reason: str, status: str) -> None:
        super().__init__(message=f"{logical_id}: {reason}")
        self.logical_id = logical_id
        self.reason = reason
        self.status = status


class DeletionFailed(Exception):
    """Some resources of a stack could not be deleted (each has its DELETE_FAILED event)."""

    def __init__(self, failures: list[ResourceFailed]) -> None:
        super().__init__("; ".join(f.message for f in failures))
        self.failures = failures


class UpdateRolledBack(ValidationError):
    """An update failed and was rolled back (``rollback_failure`` if the rollback failed too)."""

    def __init__(self, failure: ResourceFailed, rollback_failure: ResourceFailed | None) -> None:
        super().__init__(message=failure.message)
        self.failure = failure
        self.rollback_failure = rollback_failure


def describe(exc: BaseException) -> str:
    """A failure as a stack event's reason: the service's error code and message when it has them."""
    if isinstance(exc, FillError):
        return str(exc)
    code = getattr(exc, "code", None)
    code = code if isinstance(code, str) else getattr(exc, "error_type", None)
    message = getattr(exc, "message", None) or str(exc)
    return f"{code}: {message}" if isinstance(code, str) else f"{type(exc).__name__}: {exc}"


def event(logical_id: str, resource_type: str, physical_id: str, status: str, reason: str | None = None) -> None:
    """A resource's event on the stack being operated on (notified to its topics, as moto does the stack's)."""
    stack = _operation.get()
    if stack is None:
        return
    record = Event(
        stack_id=stack.stack_id,
        stack_name=stack.name,
        logical_resource_id=logical_id,
        physical_resource_id=physical_id,
        resource_type=resource_type,
        resource_status=status,
        resource_status_reason=reason,
        resource_properties=None,
    )
    record.sendToSns(stack.account_id, stack.region_name, stack.notification_arns)
    stack.events.append(record)


def failed(logical_id: str, resource_type: str, exc: BaseException, status: str) -> ResourceFailed:
    """The failure to raise for ``logical_id``, its ``*_FAILED`` event recorded where it happened."""
    failure = ResourceFailed(logical_id, describe(exc), status)
    event(logical_id, resource_type, "", status, failure.reason)
    return failure


@contextlib.contextmanager
def operating_on(stack: Stack) -> Iterator[None]:
    token = _operation.set(stack)
    try:
        yield
    finally:
        _operation.reset(token)


def current_stack() -> Stack | None:
    return _operation.get()
