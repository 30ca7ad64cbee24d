"""``make package STAGE=prod`` with an operator's settings: a custom domain and alert subscribers.

The committed prod configuration (retained data, the shop's CORS origin) with a settings file laid over
it, as docs/deploy.md's example prod configuration does. Checked on the SAM template and on the
CloudFormation it expands to (``infra.checks``), which is what the stack holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.checks import cfn_lint, write_cloudformation
from infra.package import package
from infra.stage_settings import load_stage_settings
from infra.template import DATA_RESOURCES

pytestmark = pytest.mark.integration

CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0c6b6a5e-1111-2222-3333-444455556666"
SETTINGS = {
    "domain": "example.com",
    "certificate_arn": CERTIFICATE,
    "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
    "alert_emails": ["oncall@example.com", "lead@example.com"],
    "alert_endpoints": ["https://hooks.example.com/alerts"],
}
ORIGIN = load_stage_settings("prod", env={}).cors_origin


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any], list[Path]]:
    """(sam.json, its CloudFormation, both paths) of prod packaged with SETTINGS."""
    build = tmp_path_factory.mktemp("build-prod")
    settings = build / "prod-settings.json"
    settings.write_text(json.dumps(SETTINGS))
    sam_path = package("prod", build, settings)
    cloudformation = write_cloudformation(sam_path)
    return json.loads(sam_path.read_text()), json.loads(cloudformation.read_text()), [sam_path, cloudformation]


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def test_given_a_domain_then_prod_has_its_domain_name_base_path_v1_and_route53_record(prod: Any) -> None:
    # GIVEN prod packaged with domain example.com, its certificate and hosted zone
    _, cloudformation, _ = prod
    # THEN API Gateway serves api.prod.example.com with the certificate, TLS 1.2
    [domain] = _of_type(cloudformation, "AWS::ApiGateway::DomainName").values()
    assert domain["Properties"]["DomainName"] == "api.prod.example.com"
    assert domain["Properties"]["CertificateArn"] == CERTIFICATE
    assert domain["Properties"]["SecurityPolicy"] == "TLS_1_2"
    # AND maps base path v1 to the API's stage
    [mapping] = _of_type(cloudformation, "AWS::ApiGateway::BasePathMapping").values()
    assert mapping["Properties"]["BasePath"] == "v1" and mapping["Properties"]["RestApiId"] == {"Ref": "RestAPI"}
    assert mapping["Properties"]["Stage"] == "api"
    # AND Route 53 points the name at it (edge-optimized: the distribution, CloudFront's zone)
    [record] = _of_type(cloudformation, "AWS::Route53::RecordSet").values()
    assert record["Properties"]["HostedZoneId"] == SETTINGS["hosted_zone_id"]
    assert (record["Properties"]["Name"], record["Properties"]["Type"]) == ("api.prod.example.com", "A")
    target = record["Properties"]["AliasTarget"]
    assert target["DNSName"] == {"Fn::GetAtt": ["ApiGatewayCustomDomain", "DistributionDomainName"]}
    assert target["HostedZoneId"] == "Z2FDTNDATAQYW2"


def test_given_alert_subscribers_then_each_subscribes_to_the_alerts_topic_every_alarm_notifies(prod: Any) -> None:
    _, cloudformation, _ = prod
    subscriptions = sorted(
        (s["Properties"]["Protocol"], s["Properties"]["Endpoint"])
        for s in _of_type(cloudformation, "AWS::SNS::Subscription").values()
        if s["Properties"]["TopicArn"] == {"Ref": "AlertsTopic"}
    )
    assert subscriptions == [
        ("email", "lead@example.com"),
        ("email", "oncall@example.com"),
        ("https", "https://hooks.example.com/alerts"),
    ]
    alarms = _of_type(cloudformation, "AWS::CloudWatch::Alarm").values()
    assert alarms and all(a["Properties"]["AlarmActions"] == [{"Ref": "AlertsTopic"}] for a in alarms)


def test_given_prod_then_its_data_is_retained_protected_and_recoverable(prod: Any) -> None:
    _, cloudformation, _ = prod
    resources = cloudformation["Resources"]
    for name in (*DATA_RESOURCES, "SigningKeySecret"):
        assert resources[name]["DeletionPolicy"] == resources[name]["UpdateReplacePolicy"] == "Retain", name
    for name, table in _of_type(cloudformation, "AWS::DynamoDB::Table").items():
        assert table["Properties"]["DeletionProtectionEnabled"] is True, name
        assert table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, name
    assert resources["UserPool"]["Properties"]["DeletionProtection"] == "ACTIVE"


def _policy_documents(value: Any) -> Iterator[dict[str, Any]]:
    """Every IAM policy document in a template (role policies, trust policies, resource policies)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in ("PolicyDocument", "AssumeRolePolicyDocument") and isinstance(inner, dict):
                yield inner
            yield from _policy_documents(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _policy_documents(inner)


def test_given_prod_then_every_policy_has_a_version_and_every_service_principal_is_pinned_to_its_source(
    prod: Any,
) -> None:
    _, cloudformation, _ = prod
    documents = list(_policy_documents(cloudformation["Resources"]))
    assert len(documents) > 20 and all(d.get("Version") == "2012-10-17" for d in documents)
    # Resource policies that admit a service: only for a source of this stage, in this account
    for policy in _of_type(cloudformation, "AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert "Service" in statement["Principal"]
            assert set(statement["Condition"]) == {"ArnEquals", "StringEquals"}
            assert "aws:SourceArn" in statement["Condition"]["ArnEquals"]
            assert "aws:SourceAccount" in statement["Condition"]["StringEquals"]
    # Lambda's permissions for API Gateway, SNS, EventBridge and the scheduler name their source ARN
    permissions = _of_type(cloudformation, "AWS::Lambda::Permission")
    assert permissions and all("SourceArn" in p["Properties"] for p in permissions.values()), permissions
    # The workflow's role: Step Functions may assume it for this stage's machine only
    [trust] = _of_type(cloudformation, "AWS::IAM::Role")["OrderWorkflowRole"]["Properties"]["AssumeRolePolicyDocument"][
        "Statement"
    ]
    assert trust["Condition"]["ArnLike"]["aws:SourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
        ":stateMachine:ecommerce-backend-order-workflow-prod"
    }


def test_given_prod_then_browsers_are_admitted_from_the_shop_alone_on_the_api_and_the_uploads_bucket(
    prod: Any,
) -> None:
    sam, cloudformation, _ = prod
    assert ORIGIN.startswith("https://")
    bucket = cloudformation["Resources"]["UploadsBucket"]["Properties"]
    assert [rule["AllowedOrigins"] for rule in bucket["CorsConfiguration"]["CorsRules"]] == [[ORIGIN]]
    # The gateway's own refusals carry the same origin, and the request id (SAM writes them into the API's body)
    body = cloudformation["Resources"]["RestAPI"]["Properties"]["Body"]
    responses = body["x-amazon-apigateway-gateway-responses"]
    assert set(responses) == {"UNAUTHORIZED", "ACCESS_DENIED", "THROTTLED"}
    for response in responses.values():
        parameters = response["responseParameters"]
        assert parameters["gatewayresponse.header.Access-Control-Allow-Origin"] == f"'{ORIGIN}'"
        assert parameters["gatewayresponse.header.X-Request-Id"] == "context.requestId"
    # And the API function answers with it (chalicelib reads CORS_ALLOW_ORIGIN)
    environment = sam["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert environment["CORS_ALLOW_ORIGIN"] == ORIGIN


def test_given_prod_then_abandoned_uploads_expire_and_the_api_logs_each_request_to_a_kept_log_group(
    prod: Any,
) -> None:
    _, cloudformation, _ = prod
    [rule] = cloudformation["Resources"]["UploadsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["Prefix"] == "uploads/" and rule["ExpirationInDays"] >= 1 and rule["Status"] == "Enabled"
    [stage] = _of_type(cloudformation, "AWS::ApiGateway::Stage").values()
    access = stage["Properties"]["AccessLogSetting"]
    assert access["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert json.loads(access["Format"])["requestId"] == "$context.requestId"
    group = cloudformation["Resources"]["ApiAccessLogGroup"]["Properties"]
    assert group["RetentionInDays"] == 90  # prod's access_log_retention_days


def test_given_prod_with_its_domain_and_subscribers_then_cfn_lint_finds_nothing(prod: Any) -> None:
    # cfn-lint 1.x, informational rules on, on the SAM template and the CloudFormation
    _, _, paths = prod
    findings = cfn_lint(paths)
    assert not findings, "\n".join(map(str, findings))
