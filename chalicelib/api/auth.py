"""The custom authorizer's decision, separate from Chalice so it is easy to test."""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.domain.errors import AuthenticationError
from chalicelib.services.authentication import Authenticator

logger = logging.getLogger("ecommerce.auth")


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authorize(authenticator: Authenticator, header: str | None, method_arn: str) -> dict[str, Any]:
    """An IAM policy for API Gateway: allow every route for a valid token of a live account, deny otherwise.

    A deny is returned rather than raised: API Gateway answers 403 for it, and
    Chalice's local gateway (used by ``chalice local`` and the test client)
    does the same, while an exception there would surface as a 500.
    Roles are checked by the routes, so one cached policy fits every route.
    """
    token = bearer_token(header)
    try:
        if token is None:
            raise AuthenticationError("no bearer token")
        caller = authenticator.principal(token)
    except AuthenticationError as exc:
        logger.info("token rejected: %s", exc.message)
        return _policy("anonymous", "Deny", method_arn, {})
    arn_parts = method_arn.split("/")
    # arn:aws:execute-api:region:account:api-id/stage/METHOD/path -> allow all routes of this stage.
    all_routes = "/".join([*arn_parts[:2], "*"]) if len(arn_parts) >= 2 else method_arn
    context = {"user_id": caller.user_id, "email": caller.email, "roles": ",".join(caller.roles)}
    return _policy(caller.user_id, "Allow", all_routes, context)


def _policy(principal_id: str, effect: str, resource: str, context: dict[str, str]) -> dict[str, Any]:
    return {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": [resource]}],
        },
        "context": context,
    }
