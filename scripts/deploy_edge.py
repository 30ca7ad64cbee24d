"""``make deploy``'s finish step for the API's edge: gateway responses, access logs, the domain's record.

``chalice deploy`` makes the REST API. What it cannot do, ``scripts/deploy.py finish`` does here,
from the same definitions ``make package`` writes into the SAM template (``infra.gateway``):

- the 401/403/429 gateway responses, in the API's error format with the stage's CORS origin and
  the request id;
- access logs of the stage ``api`` to the log group the resource stack made (``ApiAccessLogGroup``);
- with a ``domain`` in the stage settings, the custom domain name ``api.<stage>.<domain>``, its base
  path mapping ``v1`` and the Route 53 alias record (``ensure_custom_domain``; running it again
  changes nothing), removed again by ``make destroy`` before ``chalice delete``.

API Gateway writes access logs with the account's CloudWatch role (``aws apigateway get-account``),
one per account and region, which this step neither makes nor changes (docs/deploy.md).
"""

from __future__ import annotations

from typing import Any

import boto3

from infra.gateway import ACCESS_LOG_FORMAT, GATEWAY_RESPONSES
from infra.stage_settings import StageSettings
from infra.template import access_log_group_name

Json = dict[str, Any]


class EdgeError(Exception):
    """Something the edge's configuration needs is missing (the access log group)."""


def put_gateway_responses(api: Any, rest_api_id: str, cors_origin: str) -> None:
    for response in GATEWAY_RESPONSES:
        api.put_gateway_response(
            restApiId=rest_api_id,
            responseType=response.response_type,
            statusCode=str(response.status),
            responseParameters=response.header_parameters(cors_origin),
            responseTemplates={"application/json": response.body_template()},
        )


def access_log_operations(stage: str, session: boto3.session.Session) -> list[Json]:
    """``update_stage`` patch operations sending the stage's access logs to its log group."""
    logs = session.client("logs")
    name = access_log_group_name(stage)
    found = [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
    if not found:
        raise EdgeError(
            f"no log group {name} for the API's access logs: the resource stack makes it "
            f"(`python -m scripts.deploy resources --stage {stage}`)"
        )
    arn = str(found[0]["arn"]).removesuffix(":*")  # API Gateway wants the group's ARN without the ":*"
    return [
        {"op": "replace", "path": "/accessLogSettings/destinationArn", "value": arn},
        {"op": "replace", "path": "/accessLogSettings/format", "value": ACCESS_LOG_FORMAT},
    ]


def ensure_custom_domain(
    stage: str, settings: StageSettings, rest_api_id: str, api_stage: str, endpoint_type: str, session: Any
) -> None:
    """The stage's custom domain name, its base path mapping to ``rest_api_id``'s ``api_stage``, and
    its Route 53 alias record: made when missing, corrected when different, left alone otherwise.

    ``make package`` has CloudFormation make the same three (Chalice's ``api_gateway_custom_domain``
    and ``infra.gateway.domain_record``). Here they are made through the API rather than by ``chalice
    deploy``: its update of an existing domain goes through calls (``UpdateDomainName`` on every deploy,
    API Gateway v2 tags of a v1 domain) that would make every redeploy depend on more of API Gateway
    than the domain needs.
    """
    if settings.domain is None:
        return
    api = session.client("apigateway")
    name, certificate = settings.domain.name(stage), settings.domain.certificate_arn
    key = "certificateArn" if endpoint_type == "EDGE" else "regionalCertificateArn"
    base_path = settings.domain.base_path
    try:
        domain = api.get_domain_name(domainName=name)
    except api.exceptions.NotFoundException:
        domain = api.create_domain_name(
            domainName=name,
            endpointConfiguration={"types": [endpoint_type]},
            securityPolicy="TLS_1_2",
            **{key: certificate},
        )
        mappings = []  # a new domain has none (and moto 5.2.5 fails listing a domain that never had one)
    else:
        if domain.get(key) != certificate:  # a renewed or replaced certificate
            patch = [{"op": "replace", "path": f"/{key}", "value": certificate}]
            domain = api.update_domain_name(domainName=name, patchOperations=patch)
        mappings = api.get_base_path_mappings(domainName=name).get("items", [])
    mapped = [m for m in mappings if m["basePath"].strip("/") == base_path]
    if mapped and (mapped[0]["restApiId"], mapped[0].get("stage")) != (rest_api_id, api_stage):
        api.delete_base_path_mapping(domainName=name, basePath=base_path)  # the stage's API was replaced
        mapped = []
    if not mapped:
        api.create_base_path_mapping(domainName=name, basePath=base_path, restApiId=rest_api_id, stage=api_stage)
    edge = endpoint_type == "EDGE"
    target = {
        "HostedZoneId": domain["distributionHostedZoneId" if edge else "regionalHostedZoneId"],
        "DNSName": domain["distributionDomainName" if edge else "regionalDomainName"],
        "EvaluateTargetHealth": False,
    }
    session.client("route53").change_resource_record_sets(
        HostedZoneId=settings.domain.hosted_zone_id,
        ChangeBatch={
            "Comment": f"{name}: the API's custom domain (scripts/deploy_edge.py)",
            "Changes": [{"Action": "UPSERT", "ResourceRecordSet": {"Name": name, "Type": "A", "AliasTarget": target}}],
        },
    )


def remove_custom_domain(stage: str, settings: StageSettings, session: Any) -> None:
    """Remove what ``ensure_custom_domain`` made: the record, then the domain name with its mappings
    (before the REST API goes: API Gateway refuses to delete an API a domain still maps). Absent is no error."""
    if settings.domain is None:
        return
    route53 = session.client("route53")
    name = settings.domain.name(stage)
    zone = settings.domain.hosted_zone_id
    found = route53.list_resource_record_sets(HostedZoneId=zone, StartRecordName=name, StartRecordType="A")
    for record in found["ResourceRecordSets"]:
        if record["Name"].rstrip(".") == name and record["Type"] == "A":
            route53.change_resource_record_sets(
                HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": record}]}
            )
    api = session.client("apigateway")
    try:
        for mapping in api.get_base_path_mappings(domainName=name).get("items", []):
            api.delete_base_path_mapping(domainName=name, basePath=mapping["basePath"])
        api.delete_domain_name(domainName=name)
    except api.exceptions.NotFoundException:
        return
