"""The error a service answers when IAM refuses a call, in that service's protocol and wording.

AWS's message names the caller, the action, the resource and why (the ``Decision``'s reason):
``User: arn:aws:sts::123456789012:assumed-role/<role>/<session> is not authorized to perform:
dynamodb:GetItem on resource: arn:aws:dynamodb:...:table/<t> because no identity-based policy allows
the dynamodb:GetItem action``. The code and status differ by service, and the SDKs read them from
different places (JSON ``__type``, the query protocol's XML, S3's XML, Lambda's ``x-amzn-ErrorType``),
so each is shaped as its service shapes it; botocore then raises the same ``ClientError`` it raises
against AWS (``tests/integration/test_localstage_iam.py`` checks the parsed codes).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from localstage.iam.actions import Call, Target
from localstage.iam.policy import Decision

Response = tuple[str, list[tuple[str, str]], bytes]

# JSON-protocol services whose SDKs take the code from x-amzn-query-error (awsQueryCompatible).
_QUERY_COMPATIBLE = {"sqs": "AccessDenied", "cloudwatch": "AccessDenied"}
_QUERY_CODES = {"sns": "AuthorizationError"}  # others answer AccessDenied


def message(principal: str, target: Target, decision: Decision) -> str:
    on = f" on resource: {target.resource}" if target.resource != "*" else ""
    because = decision.reason if decision.reason.startswith("with ") else f"because {decision.reason}"
    return f"User: {principal} is not authorized to perform: {target.action}{on} {because}"


def denial(environ: Mapping[str, Any], call: Call, principal: str, target: Target, decision: Decision) -> Response:
    """Status, headers and body of the refusal, as ``call.service`` answers it."""
    text = message(principal, target, decision)
    request_id = str(uuid.uuid4())
    common = [("x-amzn-RequestId", request_id)]
    if environ.get("HTTP_X_AMZ_TARGET"):
        if call.service in _QUERY_COMPATIBLE:
            code = _QUERY_COMPATIBLE[call.service]
            body = json.dumps({"__type": f"com.amazonaws.{call.service}#{code}", "message": text}).encode()
            headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-query-error", f"{code};Sender")]
            return "403 Forbidden", headers + common, body
        body = json.dumps({"__type": "AccessDeniedException", "Message": text, "message": text}).encode()
        return "400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"), *common], body
    if call.service == "s3":
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
            f"<Message>{_escape(text)}</Message><RequestId>{request_id}</RequestId><HostId>local</HostId></Error>"
        )
        return "403 Forbidden", [("Content-Type", "application/xml"), *common], xml.encode()
    if call.service in ("lambda", "apigateway", "xray"):
        body = json.dumps({"Type": "User", "Message": text, "message": text}).encode()
        headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", "AccessDeniedException")]
        return "403 Forbidden", headers + common, body
    code = _QUERY_CODES.get(call.service, "AccessDenied")
    xml = (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{_escape(text)}</Message>"
        f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return "403 Forbidden", [("Content-Type", "text/xml"), *common], xml.encode()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
