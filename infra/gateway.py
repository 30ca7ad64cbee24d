"""The API's edge as both deploy paths and the local stage configure it: gateway responses,
access logs, the custom domain's DNS record.

- **Gateway responses.** API Gateway answers some requests itself: no token (401 ``UNAUTHORIZED``),
  the authorizer's Deny (403 ``ACCESS_DENIED``), stage throttling (429 ``THROTTLED``). Each answers
  in the API's error format (``chalicelib/api/http.py``) with the stage's CORS origin and the
  request id in ``X-Request-Id``, as every answer of the API function does: without the CORS
  header a browser client cannot even read the refusal. ``make package`` writes them into the SAM
  template, ``scripts/deploy.py finish`` puts them on the REST API, and the local stage's gateway
  (``localstage/http_gateway.py``) renders the same ones.
- **Access logs**: one JSON line per request to the stage's access log group
  (``infra.template.access_log_group_name``), with API Gateway's own request id, so a client's
  ``X-Request-Id`` finds its line.
- **The custom domain's record** (``make package``): an alias ``A`` record to the API's domain name,
  which ``chalice package`` writes with its base path mapping (``api_gateway_custom_domain``).
  ``make deploy`` makes all three through the API (``scripts/deploy_edge.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]

REQUEST_ID_HEADER = "X-Request-Id"  # chalicelib/api/http.py sets it on every answer of the API function


@dataclass(frozen=True)
class GatewayResponse:
    """One of API Gateway's own answers, in the API's error format."""

    response_type: str
    status: int
    code: str
    message: str

    def body_template(self) -> str:
        # API Gateway substitutes $context.requestId in a gateway response's template.
        return error_body(self.code, self.message)

    def header_parameters(self, cors_origin: str) -> dict[str, str]:
        """``gatewayresponse.header.*`` parameters: a quoted literal, or a ``context`` variable."""
        return {
            "gatewayresponse.header.Access-Control-Allow-Origin": f"'{cors_origin}'",
            f"gatewayresponse.header.{REQUEST_ID_HEADER}": "context.requestId",
        }


GATEWAY_RESPONSES = (
    GatewayResponse("UNAUTHORIZED", 401, "unauthorized", "A valid bearer token is required"),
    GatewayResponse("ACCESS_DENIED", 403, "forbidden", "The token was refused"),
    GatewayResponse("THROTTLED", 429, "throttled", "Too many requests; retry with backoff"),
)


def error_body(code: str, message: str) -> str:
    """The API's error format (chalicelib/api/http.py), for answers API Gateway gives on its own."""
    return json.dumps({"error": code, "message": message, "details": [], "request_id": "$context.requestId"})


def sam_gateway_responses(cors_origin: str) -> Json:
    """``GatewayResponses`` of an ``AWS::Serverless::Api`` (SAM's shape: headers without the prefix)."""
    return {
        response.response_type: {
            "StatusCode": str(response.status),
            "ResponseParameters": {
                "Headers": {
                    name.removeprefix("gatewayresponse.header."): value
                    for name, value in response.header_parameters(cors_origin).items()
                }
            },
            "ResponseTemplates": {"application/json": response.body_template()},
        }
        for response in GATEWAY_RESPONSES
    }


# API Gateway's $context variables, one JSON object per request (the CLF fields and the ids that tie a
# line to the function's logs and the trace).
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "extendedRequestId": "$context.extendedRequestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "protocol": "$context.protocol",
        "responseLength": "$context.responseLength",
        "integrationLatency": "$context.integrationLatency",
        "authorizerStatus": "$context.authorizer.status",
        "errorType": "$context.error.responseType",
        "xrayTraceId": "$context.xrayTraceId",
    },
    separators=(",", ":"),
)

# Route 53's alias target hosted zone for every CloudFront distribution, so every edge-optimized API.
CLOUDFRONT_HOSTED_ZONE_ID = "Z2FDTNDATAQYW2"


def domain_record(domain_name: str, hosted_zone_id: str, endpoint_type: str, domain_resource: str) -> Json:
    """The Route 53 alias record of ``domain_name`` to the ``AWS::ApiGateway::DomainName`` Chalice made."""
    if endpoint_type == "EDGE":
        target = {
            "DNSName": {"Fn::GetAtt": [domain_resource, "DistributionDomainName"]},
            "HostedZoneId": CLOUDFRONT_HOSTED_ZONE_ID,
        }
    else:
        target = {
            "DNSName": {"Fn::GetAtt": [domain_resource, "RegionalDomainName"]},
            "HostedZoneId": {"Fn::GetAtt": [domain_resource, "RegionalHostedZoneId"]},
        }
    return {
        "Type": "AWS::Route53::RecordSet",
        "Properties": {
            "HostedZoneId": hosted_zone_id,
            "Name": domain_name,
            "Type": "A",
            "AliasTarget": {**target, "EvaluateTargetHealth": False},
        },
    }
