"""``make deploy``'s own steps (``scripts/deploy.py``) against moto in-process.

``finish`` runs on what ``chalice deploy --stage dev`` leaves behind, built here as chalice builds it
(chalice/deploy/appgraph.py, planner.py, deployer.py): functions under chalice's deploy names, a REST
API named after the app alone with the stage ``api``, SQS mappings created with the function's ARN,
and chalice's state file in a temporary project. Another stage's REST API of the same name sits in
the same account, created first, so that finding the API by name would configure the wrong one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from infra.gateway import ACCESS_LOG_FORMAT
from infra.package import LOG_RETENTION_DAYS
from infra.template import access_log_group_name
from scripts.deploy import finish, main
from tests.integration.deploy_chalice import (
    API_LOG_GROUP,
    APP,
    ASYNC_FUNCTIONS,
    ASYNC_INVOKE_DLQ,
    CHALICE_API_LOG_GROUP,
    QUEUES,
    STAGE,
    ChaliceDeployed,
    chalice_deploy,
    log_groups,
    throttling,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[ChaliceDeployed]:
    with mock_aws():
        yield chalice_deploy(boto3.session.Session(region_name="us-east-1"), tmp_path / "deploy")


# -- finish: what it configures -------------------------------------------------------------------


def test_given_two_stages_apis_of_one_name_when_finishing_dev_then_only_the_api_chalice_recorded_is_configured(
    deployed: ChaliceDeployed,
) -> None:
    finish(STAGE, deployed.session, deployed.project)

    api = deployed.session.client("apigateway")
    assert throttling(api, deployed.rest_api_id) == {"*/*": (25.0, 50, True)}  # dev's, in STAGE_DEPLOYMENTS
    for kind, status in (("UNAUTHORIZED", "401"), ("ACCESS_DENIED", "403"), ("THROTTLED", "429")):
        response = api.get_gateway_response(restApiId=deployed.rest_api_id, responseType=kind)
        assert response["statusCode"] == status
        body = json.loads(response["responseTemplates"]["application/json"])
        assert set(body) == {"error", "message", "details", "request_id"}
        assert body["request_id"] == "$context.requestId"
    assert throttling(api, deployed.other_stage_rest_api_id) == {}, "the other stage's API was configured"


def test_given_a_chalice_deployed_stage_when_finishing_then_the_api_handler_log_group_exists_with_the_package_retention(
    deployed: ChaliceDeployed,
) -> None:
    assert log_groups(deployed.session, API_LOG_GROUP) == []

    finish(STAGE, deployed.session, deployed.project)

    [group] = log_groups(deployed.session, API_LOG_GROUP)
    assert group["retentionInDays"] == LOG_RETENTION_DAYS == 14


def test_given_a_chalice_deployed_stage_when_finishing_then_both_sqs_mappings_report_batch_item_failures(
    deployed: ChaliceDeployed,
) -> None:
    finish(STAGE, deployed.session, deployed.project)

    lam = deployed.session.client("lambda")
    for handler, uuid in deployed.mappings.items():
        mapping = lam.get_event_source_mapping(UUID=uuid)
        assert mapping.get("FunctionResponseTypes") == ["ReportBatchItemFailures"], handler


def test_given_a_chalice_deployed_stage_when_finishing_then_async_functions_fail_into_the_async_invoke_dlq(
    deployed: ChaliceDeployed,
) -> None:
    finish(STAGE, deployed.session, deployed.project)

    dlq_arn = f"arn:aws:sqs:us-east-1:123456789012:{ASYNC_INVOKE_DLQ}"
    lam = deployed.session.client("lambda")
    for function in ASYNC_FUNCTIONS:
        config = lam.get_function_event_invoke_config(FunctionName=function)
        assert config["DestinationConfig"] == {"OnFailure": {"Destination": dlq_arn}}, function
        assert config["MaximumRetryAttempts"] == 2


def test_given_a_chalice_deployed_stage_when_finishing_then_access_logs_and_refusals_carry_cors_and_the_request_id(
    deployed: ChaliceDeployed,
) -> None:
    # GIVEN the stage's access log group (the resource stack's) and the API chalice deploy made
    api = deployed.session.client("apigateway")
    # WHEN finish runs
    finish(STAGE, deployed.session, deployed.project)
    # THEN the stage writes one JSON line per request to that group
    settings = api.get_stage(restApiId=deployed.rest_api_id, stageName="api")["accessLogSettings"]
    assert settings["destinationArn"].endswith(f":log-group:{access_log_group_name(STAGE)}")
    assert settings["format"] == ACCESS_LOG_FORMAT and json.loads(settings["format"])["requestId"]
    # AND the gateway's own refusals carry dev's CORS origin and the request id in X-Request-Id
    for kind in ("UNAUTHORIZED", "ACCESS_DENIED", "THROTTLED"):
        parameters = api.get_gateway_response(restApiId=deployed.rest_api_id, responseType=kind)["responseParameters"]
        assert parameters == {
            "gatewayresponse.header.Access-Control-Allow-Origin": "'*'",
            "gatewayresponse.header.X-Request-Id": "context.requestId",
        }


def _domain_settings(tmp_path: Path) -> tuple[Path, str]:
    """A settings file with a custom domain, and the id of the hosted zone it names."""
    zone = boto3.client("route53", region_name="us-east-1").create_hosted_zone(Name="example.com", CallerReference="t")
    zone_id = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]
    certificate = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
    path = tmp_path / "dev-settings.json"
    path.write_text(json.dumps({"domain": "example.com", "certificate_arn": certificate, "hosted_zone_id": zone_id}))
    return path, zone_id


def test_given_a_custom_domain_when_finishing_then_api_dev_maps_v1_to_the_api_and_route53_points_at_it(
    deployed: ChaliceDeployed, tmp_path: Path
) -> None:
    # GIVEN a domain in the stage settings, its hosted zone, and the API chalice deploy made
    settings, zone_id = _domain_settings(tmp_path)
    api, route53 = deployed.session.client("apigateway"), deployed.session.client("route53")
    # WHEN finish runs, twice (nothing changes the second time)
    for _ in range(2):
        assert main(["finish", "--stage", STAGE, "--project", str(deployed.project), "--settings", str(settings)]) == 0
    # THEN api.dev.example.com exists with the certificate, edge-optimized, TLS 1.2
    domain = api.get_domain_name(domainName="api.dev.example.com")
    assert domain["certificateArn"] == "arn:aws:acm:us-east-1:123456789012:certificate/abc"
    assert domain["securityPolicy"] == "TLS_1_2"
    # AND its base path v1 maps to the stage api of the API chalice deploy recorded, once
    [mapping] = api.get_base_path_mappings(domainName="api.dev.example.com")["items"]
    assert (mapping["basePath"].strip("/"), mapping["restApiId"], mapping["stage"]) == (
        "v1",
        deployed.rest_api_id,
        "api",
    )
    # AND the zone has one alias A record of the name to the domain's distribution
    records = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    [record] = [r for r in records if r["Type"] == "A"]
    assert record["Name"].rstrip(".") == "api.dev.example.com"
    assert record["AliasTarget"]["DNSName"].rstrip(".") == domain["distributionDomainName"]
    assert record["AliasTarget"]["HostedZoneId"] == domain["distributionHostedZoneId"]
    # WHEN make destroy unmaps it (before chalice delete), twice: nothing left is no error
    for _ in range(2):
        assert main(["unmap", "--stage", STAGE, "--settings", str(settings)]) == 0
    # THEN the record and the domain are gone
    assert not [
        r for r in route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"] if r["Type"] == "A"
    ]
    with pytest.raises(ClientError, match="NotFound"):
        api.get_domain_name(domainName="api.dev.example.com")


def test_given_no_domain_when_finishing_then_no_domain_name_or_record_is_made(deployed: ChaliceDeployed) -> None:
    finish(STAGE, deployed.session, deployed.project)
    assert deployed.session.client("apigateway").get_domain_names().get("items", []) == []


def test_given_a_finished_stage_when_finishing_again_then_it_succeeds_and_the_configuration_is_unchanged(
    deployed: ChaliceDeployed,
) -> None:
    lam, api = deployed.session.client("lambda"), deployed.session.client("apigateway")

    def configuration() -> tuple[Any, ...]:
        return (
            log_groups(deployed.session, API_LOG_GROUP)[0]["retentionInDays"],
            [lam.get_event_source_mapping(UUID=u).get("FunctionResponseTypes") for u in deployed.mappings.values()],
            [lam.get_function_event_invoke_config(FunctionName=f)["DestinationConfig"] for f in ASYNC_FUNCTIONS],
            api.get_stage(restApiId=deployed.rest_api_id, stageName="api")["methodSettings"],
            api.get_gateway_response(restApiId=deployed.rest_api_id, responseType="THROTTLED")["responseTemplates"],
        )

    assert main(["finish", "--stage", STAGE, "--project", str(deployed.project)]) == 0
    first = configuration()
    assert main(["finish", "--stage", STAGE, "--project", str(deployed.project)]) == 0

    assert configuration() == first
    assert len(log_groups(deployed.session, API_LOG_GROUP)) == 1


def test_given_the_group_an_earlier_chalice_deploy_made_under_the_chalice_name_when_finishing_then_it_is_deleted(
    deployed: ChaliceDeployed,
) -> None:
    logs = deployed.session.client("logs")
    logs.create_log_group(logGroupName=CHALICE_API_LOG_GROUP)  # made by a chalice deploy before prepare stopped it

    finish(STAGE, deployed.session, deployed.project)

    assert log_groups(deployed.session, CHALICE_API_LOG_GROUP) == []


def test_given_chalice_state_still_records_the_misnamed_group_when_finishing_then_it_is_kept_for_chalice_to_release(
    deployed: ChaliceDeployed, capsys: pytest.CaptureFixture[str]
) -> None:
    # Deleting it now would make chalice's next deploy fail: it drops the retention of groups it forgets.
    deployed.session.client("logs").create_log_group(logGroupName=CHALICE_API_LOG_GROUP)
    deployed.state["resources"].append(
        {"name": "api_handler-log-group", "resource_type": "log_group", "log_group_name": CHALICE_API_LOG_GROUP}
    )
    deployed.write_state()

    finish(STAGE, deployed.session, deployed.project)

    assert len(log_groups(deployed.session, CHALICE_API_LOG_GROUP)) == 1
    assert f"kept {CHALICE_API_LOG_GROUP}" in capsys.readouterr().err


# -- finish: what it cannot find --------------------------------------------------------------------


def _delete_mapping(deployed: ChaliceDeployed) -> None:
    deployed.session.client("lambda").delete_event_source_mapping(UUID=deployed.mappings["process_order"])


def _map_queue_to_another_function(deployed: ChaliceDeployed) -> None:
    """The queue still has a mapping, but to another function: it does not count."""
    lam = deployed.session.client("lambda")
    queue_arn = lam.get_event_source_mapping(UUID=deployed.mappings["process_order"])["EventSourceArn"]
    lam.delete_event_source_mapping(UUID=deployed.mappings["process_order"])
    lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=deployed.function_arns["send_notification"])


def _delete_state_file(deployed: ChaliceDeployed) -> None:
    deployed.state_file.unlink()


def _delete_rest_api(deployed: ChaliceDeployed) -> None:
    deployed.session.client("apigateway").delete_rest_api(restApiId=deployed.rest_api_id)


def _delete_async_function(deployed: ChaliceDeployed) -> None:
    deployed.session.client("lambda").delete_function(FunctionName=ASYNC_FUNCTIONS[1])


def _delete_async_invoke_dlq(deployed: ChaliceDeployed) -> None:
    sqs = deployed.session.client("sqs")
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=ASYNC_INVOKE_DLQ)["QueueUrl"])


BROKEN: dict[str, tuple[Callable[[ChaliceDeployed], None], Callable[[ChaliceDeployed], list[str]]]] = {
    "mapping deleted": (_delete_mapping, lambda d: [QUEUES["process_order"], f"{APP}-{STAGE}-process_order"]),
    "mapping to another function": (
        _map_queue_to_another_function,
        lambda d: [QUEUES["process_order"], f"{APP}-{STAGE}-process_order"],
    ),
    "mapping missing from chalice state": (
        lambda d: d.drop_from_state("route_notification_events-sqs-event-source"),
        lambda d: ["SQS event source", f"{APP}-{STAGE}-route_notification_events", str(d.state_file)],
    ),
    "no state file": (_delete_state_file, lambda d: [str(d.state_file), "chalice deploy"]),
    "REST API missing from chalice state": (
        lambda d: d.drop_from_state("rest_api"),
        lambda d: ["REST API", str(d.state_file)],
    ),
    "REST API deleted": (_delete_rest_api, lambda d: ["REST API", d.rest_api_id]),
    "async function deleted": (_delete_async_function, lambda d: [ASYNC_FUNCTIONS[1]]),
    "async-invoke DLQ deleted": (_delete_async_invoke_dlq, lambda d: [ASYNC_INVOKE_DLQ, f"{APP}-{STAGE}-resources"]),
}


@pytest.mark.parametrize("broken", list(BROKEN))
def test_given_a_stage_missing_something_when_finishing_then_it_exits_1_naming_what_is_missing(
    deployed: ChaliceDeployed, broken: str, capsys: pytest.CaptureFixture[str]
) -> None:
    breaks, named = BROKEN[broken]
    breaks(deployed)

    status = main(["finish", "--stage", STAGE, "--project", str(deployed.project)])

    message = capsys.readouterr().err
    assert status == 1
    assert message.startswith(f"finish --stage {STAGE}: ") and "Traceback" not in message
    for fragment in named(deployed):
        assert fragment in message
