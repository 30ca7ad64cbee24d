"""Who the stage's code acts as: a role session per function, per state machine, per poller.

On AWS each function runs with its execution role's temporary credentials (Lambda assumes the role,
session name = function name, and hands the keys to the runtime), so every SDK call it makes is
signed as ``assumed-role/<role>/<function>``. The local stage runs every function in one process,
sharing one ``os.environ`` and one set of boto3 clients, so credentials cannot come from the
environment. Instead the stage assumes each role once through the embedded STS and, while a thread
runs on a principal's behalf (a handler invocation, a Step Functions task, an event source mapping's
poll), ``acting_as`` makes every botocore request signed on that thread use that role's keys.

The seam is botocore's own: ``RequestSigner.get_auth_instance`` takes ``request_credentials``;
the wrap passes the thread's, when it has one (``localstage.patches`` checks the botocore version).
Threads acting for nobody sign with the process's credentials: the stage itself, standing in for
AWS's services, and any operator tool.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.credentials import Credentials

from localstage.patches import Patches
from localstage.threads import detach_from_served_calls

_thread = detach_from_served_calls(threading.local())


@dataclass(frozen=True)
class Acting:
    """A role session the stage acts as (its temporary credentials)."""

    role_arn: str
    session_name: str
    credentials: Credentials

    @property
    def session_arn(self) -> str:
        account = self.role_arn.split(":")[4]
        return f"arn:aws:sts::{account}:assumed-role/{self.role_arn.rsplit('/', 1)[-1]}/{self.session_name}"


def assume(sts: Any, role_arn: str, session_name: str) -> Acting:
    """Assume ``role_arn`` through ``sts`` (the embedded STS), as Lambda or Step Functions would."""
    issued = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name[:64], DurationSeconds=43_200)
    keys = issued["Credentials"]
    return Acting(
        role_arn, session_name, Credentials(keys["AccessKeyId"], keys["SecretAccessKey"], keys["SessionToken"])
    )


def current() -> Acting | None:
    """The principal this thread acts for, if any."""
    return getattr(_thread, "acting", None)


@contextmanager
def acting_as(principal: Acting | None) -> Iterator[None]:
    """Sign this thread's AWS requests as ``principal`` (``None``: as the stage itself) inside the block."""
    previous = current()
    _thread.acting = principal
    try:
        yield
    finally:
        _thread.acting = previous


def _signed_as_thread(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_auth_instance(
        self: Any,
        signing_name: str,
        region_name: str,
        signature_version: str | None = None,
        request_credentials: Any = None,
        **kwargs: Any,
    ) -> Any:
        acting = current()
        if acting is not None and request_credentials is None:
            request_credentials = acting.credentials
        return original(self, signing_name, region_name, signature_version, request_credentials, **kwargs)

    return get_auth_instance


def install(patches: Patches) -> None:
    """Make botocore sign with the acting thread's credentials (undone with ``patches.undo()``)."""
    from botocore.signers import RequestSigner

    patches.wrap("botocore", RequestSigner, "get_auth_instance", _signed_as_thread)
