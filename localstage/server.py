"""The embedded AWS: moto's own threaded server, in this process.

In-process (not ``moto_server`` in a subprocess) because the Lambda emulator
plugs into moto's Lambda backend: an ``Invoke`` that reaches the server, from
boto3, from SNS or from a Step Functions task, has to find the app's handlers
in the same interpreter.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Mapping, TypeVar, cast

from localstage import inprocess
from localstage.apigateway.dataplane import ApiGatewayDataPlane
from localstage.aws_limits import AwsLimitsMiddleware
from localstage.aws_throttle import ThrottlePlan, ThrottlingMiddleware
from localstage.iam.enforcement import Authorizer, IamEnforcement
from localstage.patches import Patches
from localstage.s3_post_policy import PostPolicyMiddleware
from localstage.telemetry import Telemetry, flush_before_reads

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
DEFAULT_HOST = "127.0.0.1"
Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
M = TypeVar("M")
DEFAULT_PORT = 4566
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port nobody listens on right now (tests run several stages side by side)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def client_environment(endpoint: str, port: int) -> dict[str, str]:
    """What any AWS SDK in this process (or a child) needs to reach the embedded AWS."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        **FAKE_CREDENTIALS,
        # moto's Step Functions interpreter calls Lambda and other services through
        # boto3 at http://localhost:$MOTO_PORT, read on every call.
        "MOTO_PORT": str(port),
    }


def enable_state_machine_execution() -> None:
    """Make Step Functions run definitions instead of returning canned histories.

    moto reads ``default_user_config["stepfunctions"]["execute_state_machine"]``
    on every request (``moto.stepfunctions.responses.get_backend``); the same
    switch is reachable over HTTP at ``POST /moto-api/config``.
    """
    from moto.core.config import default_user_config

    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True


@dataclass
class EmbeddedAws:
    """moto's ``ThreadedMotoServer`` on ``host:port`` (port 0 picks a free one).

    With a ``throttle`` plan, a ``ThrottlingMiddleware`` sits in front of moto's WSGI app,
    inactive until ``start_throttling()`` (localstage/aws_throttle.py). With an ``iam`` authorizer,
    ``IamEnforcement`` authorises every call a role session signs (localstage/iam/enforcement.py).
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    throttle: ThrottlePlan = field(default_factory=ThrottlePlan)
    iam: Authorizer | None = None  # IAM enforced for role sessions (localstage/iam), or not at all
    # SDK clients this process creates reach the WSGI app without a socket (localstage/inprocess.py).
    in_process: bool = field(default_factory=lambda: os.environ.get("LOCAL_AWS_TRANSPORT", "") != "http")
    # The Lambda emulator's telemetry, once the stage has one: reads of CloudWatch flush it first.
    telemetry: Callable[[], Telemetry | None] = field(default=lambda: None, repr=False)
    _server: object | None = field(default=None, repr=False)
    throttling: ThrottlingMiddleware | None = field(default=None, repr=False)
    # The middlewares in front of moto's WSGI app, put there through the checked layer; undone by stop().
    _patches: Patches = field(default_factory=Patches, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, environ: dict[str, str] | None = None) -> EmbeddedAws:
        """Start serving and export the client environment into ``environ`` (default ``os.environ``)."""
        from moto.server import ThreadedMotoServer

        enable_state_machine_execution()
        if self.port == 0:
            self.port = free_port(self.host)
        server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        server.start()
        self._server = server
        # The WSGI server calls ``self.app`` per request; moto keeps its werkzeug server in ``_server``.
        # Outermost first, in the order AWS answers: throttling; a browser upload's own authentication
        # (its signed POST policy, before IAM authorises the signer); IAM; then the services' size
        # quotas (validated once authorised: an unauthorised oversized call is AccessDenied); moto.
        self.serve_through(lambda app: flush_before_reads(app, lambda: self.telemetry()))
        self.serve_through(AwsLimitsMiddleware)
        if self.iam is not None:
            iam = self.iam
            self.serve_through(lambda app: IamEnforcement(app, iam))
        self.serve_through(PostPolicyMiddleware)
        if self.throttle.enabled:
            self.throttling = self.serve_through(lambda app: ThrottlingMiddleware(app, self.throttle))
        # Outside everything: a call to a deployed REST API is not an AWS API call (its throttling,
        # IAM check of the invoke and 10 MB quota are API Gateway's own, decided in the data plane).
        self.serve_through(ApiGatewayDataPlane)
        wsgi_server = server._server
        assert wsgi_server is not None
        if self.in_process:
            # Through the server's current app, so a middleware put in front later applies too.
            inprocess.register(self.host, self.port, lambda environ, respond: wsgi_server.app(environ, respond))
        target = os.environ if environ is None else environ
        target.update(self.environment())
        return self

    def serve_through(self, middleware: Callable[[Wsgi], M]) -> M:
        """Put ``middleware(app)`` in front of moto's WSGI app (outermost); returns it. Undone by ``stop``."""
        wsgi_server = getattr(self._server, "_server", None)
        if wsgi_server is None:
            raise RuntimeError("the embedded AWS is not started")
        self._patches.wrap("moto", wsgi_server, "app", middleware)
        return cast(M, wsgi_server.app)

    def start_throttling(self) -> None:
        """Throttle from now on (the stage calls it once provisioned and seeded)."""
        if self.throttling is not None:
            self.throttling.activate()

    def environment(self) -> Mapping[str, str]:
        return client_environment(self.endpoint, self.port)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            try:
                if self.in_process:
                    inprocess.unregister(self.host, self.port)
                server.stop()  # type: ignore[attr-defined]
            finally:
                self._patches.undo()

    def __enter__(self) -> EmbeddedAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
