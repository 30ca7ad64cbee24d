"""``make deploy``'s finish step for the API's edge: gateway responses, access logs, the domain's record.

``chalice deploy`` makes the REST API, and with ``api_gateway_custom_domain`` in the stage's config
(``infra.package.chalice_config``) its custom domain name and base path mapping. What it cannot do,
``scripts/deploy.py finish`` does here, from the same definitions ``make package`` writes into the
SAM template (``infra.gateway``):

- the 401/403/429 gateway responses, in the API's error format with the stage's CORS origin and
  the request id;
- access logs of the stage ``api`` to the log group the resource stack made (``ApiAccessLogGroup``);
- the Route 53 alias record of ``api.<stage>.<domain>`` to the domain name Chalice recorded
  (``UPSERT``: running it again sets the same record).

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
    """Something the edge's configuration needs is missing (a log group, the domain's state)."""


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


def upsert_domain_record(stage: str, settings: StageSettings, domain_state: Json | None, session: Any) -> None:
    """The alias record of the stage's domain to what ``chalice deploy`` recorded for its domain name."""
    if settings.domain is None:
        return
    name = settings.domain.name(stage)
    if domain_state is None or not domain_state.get("alias_domain_name"):
        raise EdgeError(
            f"chalice deploy recorded no custom domain {name}: run `python -m scripts.deploy prepare --stage {stage}` "
            "(it writes api_gateway_custom_domain), then chalice deploy"
        )
    session.client("route53").change_resource_record_sets(
        HostedZoneId=settings.domain.hosted_zone_id,
        ChangeBatch={
            "Comment": f"{name}: the API's custom domain (scripts/deploy_edge.py)",
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": name,
                        "Type": "A",
                        "AliasTarget": {
                            "HostedZoneId": domain_state["hosted_zone_id"],
                            "DNSName": domain_state["alias_domain_name"],
                            "EvaluateTargetHealth": False,
                        },
                    },
                }
            ],
        },
    )


def delete_domain_record(stage: str, settings: StageSettings, session: Any) -> None:
    """Remove the alias record ``upsert_domain_record`` made (``make destroy``); none is no error."""
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
