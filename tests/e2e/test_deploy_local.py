"""``make deploy STAGE=dev`` into a running embedded AWS, through the steps it runs against AWS.

A fresh local stage (``make run``) is the deploy target: the resource stack through CloudFormation,
``chalice deploy`` with the real app, ``finish`` and ``outputs``, then ``make admin``, all with
``AWS_ENDPOINT_URL`` pointing at it and nothing else told it is not AWS. One order of each payment
token goes through the deployed REST API (its functions run from the deployed zip, each as its own
role), the deployed configuration is checked, compared with what ``make package`` declares, deployed a
second time as an update, and ``make destroy`` removes it. Everything is written under a temporary
``BUILD``, never the work tree's ``build/`` (where a real deployment keeps chalice's state).
"""

from __future__ import annotations

import json
import os
import subprocess  # runs make, as a user does
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from runbooks.stage_client import OrderNotSettledError, StageClient, order_body
from tests.e2e.conftest import PROJECT_DIR, RunningStage
from tests.e2e.stage_process import separate_stage

pytestmark = pytest.mark.e2e

STAGE = "dev"
APP = "ecommerce-backend"
ADMIN_EMAIL, ADMIN_PASSWORD = "ops@example.com", "Ops-Passw0rd-1"
DEPLOY_TIMEOUT_S = 600
# dev waits 300 s before re-checking a pending payment; a deploy-time parameter shortens it (as for a demo).
PARAMETERS = "PARAMETERS=PaymentWaitSeconds=2"
# The operator's settings (docs/deploy.md, "Per-stage settings"): a custom domain and an on-call address.
DOMAIN, ALERT_EMAIL = "example.com", "oncall@example.com"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0c6b6a5e-1111-2222-3333-444455556666"


@dataclass
class Deployed:
    stage: RunningStage
    build: Path
    outputs: dict[str, str]
    env: dict[str, str]
    deploy_seconds: float
    settings: Path  # the stage settings file make deploy was given
    hosted_zone_id: str

    @property
    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.outputs["api_url"].rstrip("/"), timeout=30)

    def aws(self, service: str) -> Any:
        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        ).client(service, endpoint_url=self.stage.aws_endpoint)


_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


def _make(target: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = ["make", "--no-print-directory", target, f"STAGE={STAGE}", *args]
    done = subprocess.run(
        command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=DEPLOY_TIMEOUT_S, check=False
    )
    assert done.returncode == 0, (
        f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    return done


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """GIVEN a running local stage, dev deployed into it with make deploy, and its first admin."""
    with separate_stage(tmp_path_factory.mktemp("target")) as stage:
        build = tmp_path_factory.mktemp("build")
        # What a user has in a shell: the endpoint, any credentials (the stage's operator key), a region.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCAL_"))}
        env.update(
            {
                "AWS_ENDPOINT_URL": stage.aws_endpoint,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
            }
        )
        # The domain's public hosted zone exists before the stage, as it would in the account.
        route53 = boto3.client("route53", endpoint_url=stage.aws_endpoint, **_CREDENTIALS)
        zone = route53.create_hosted_zone(Name=DOMAIN, CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"]
        settings = build / "dev-settings.json"
        settings.write_text(
            json.dumps(
                {
                    "domain": DOMAIN,
                    "certificate_arn": CERTIFICATE,
                    "hosted_zone_id": zone.rsplit("/", 1)[-1],
                    "alert_emails": [ALERT_EMAIL],
                }
            )
        )
        started = time.monotonic()
        _make("deploy", env, f"BUILD={build}", PARAMETERS, f"SETTINGS={settings}")
        seconds = time.monotonic() - started
        outputs = json.loads((build / STAGE / "stage-outputs.json").read_text())
        _make("admin", env, f"BUILD={build}", f"EMAIL={ADMIN_EMAIL}", f"PASSWORD={ADMIN_PASSWORD}")
        yield Deployed(stage, build, outputs, env, seconds, settings, zone.rsplit("/", 1)[-1])
        _make("destroy", env, f"BUILD={build}", f"SETTINGS={settings}")
        records = route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
        assert not [r for r in records if r["Type"] == "A"], "make destroy left the domain's record"
        apigateway = boto3.client("apigateway", endpoint_url=stage.aws_endpoint, **_CREDENTIALS)
        assert apigateway.get_domain_names().get("items", []) == [], "make destroy left the domain name"


def test_given_dev_deployed_when_ordering_through_its_api_then_each_payment_token_ends_as_the_readme_says(
    deployed: Deployed,
) -> None:
    api = deployed.api
    assert deployed.outputs["api_url"].startswith(f"{deployed.stage.aws_endpoint}/restapis/")
    assert api.get("/health").json() == {"status": "ok"}
    # GIVEN the admin make admin created adds a product, and a customer registers
    client = StageClient(api)
    admin = client.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    product = client.create_product(admin, name="Teapot", category="kitchen", price=19.99, stock=50)
    buyer = client.register("buyer", name="B").headers
    # WHEN one order of each sandbox token goes through the deployed API
    expected = {
        "tok_success": ("COMPLETED", None),
        "tok_declined": ("FAILED", "PAYMENT_FAILED"),
        "tok_pending": ("COMPLETED", None),
        "tok_gateway_timeout": ("COMPLETED", None),
    }
    placed = {token: client.place_order(buyer, order_body(product, token=token)) for token in expected}
    # THEN each ends as the README's table says
    for token, order_id in placed.items():
        try:
            order = client.wait_for_order(buyer, order_id, timeout_s=90, poll_s=0.5)
        except OrderNotSettledError as exc:
            raise AssertionError(f"{token}: {exc}\n{_history(deployed, order_id)}") from None
        assert (order["status"], order.get("failure_reason")) == expected[token], (token, order)


def _history(deployed: Deployed, order_id: str) -> str:
    """The order's execution, event by event: where a stuck order stopped."""
    sfn = deployed.aws("stepfunctions")
    machine = next(
        m for m in sfn.list_state_machines()["stateMachines"] if m["name"] == f"{APP}-order-workflow-{STAGE}"
    )
    execution = f"{machine['stateMachineArn'].replace(':stateMachine:', ':execution:')}:{order_id}"
    try:
        events = sfn.get_execution_history(executionArn=execution)["events"]
    except sfn.exceptions.ExecutionDoesNotExist:
        return f"no execution {execution}"
    return "\n".join(
        f"{e['timestamp']:%H:%M:%S.%f} {e['type']} {json.dumps({k: v for k, v in e.items() if k.endswith('Details')}, default=str)[:300]}"
        for e in events
    )


def test_given_dev_deployed_then_api_gateway_answers_refusals_in_the_apis_error_format(deployed: Deployed) -> None:
    answer = deployed.api.get("/orders")
    assert answer.status_code == 401
    body = answer.json()
    assert (body["error"], body["details"]) == ("unauthorized", [])
    assert body["request_id"] and body["request_id"] != "$context.requestId"
    # with dev's CORS origin and the request id, so a browser client can read and report it
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert answer.headers["X-Request-Id"] == body["request_id"]


def test_given_dev_deployed_with_a_domain_then_api_dev_example_com_maps_v1_to_the_api_and_route53_points_at_it(
    deployed: Deployed,
) -> None:
    apigateway, route53 = deployed.aws("apigateway"), deployed.aws("route53")
    domain = apigateway.get_domain_name(domainName=f"api.{STAGE}.{DOMAIN}")
    assert domain["certificateArn"] == CERTIFICATE and domain["securityPolicy"] == "TLS_1_2"
    [mapping] = apigateway.get_base_path_mappings(domainName=f"api.{STAGE}.{DOMAIN}")["items"]
    rest_api_id = deployed.outputs["api_url"].split("/restapis/")[1].split("/")[0]
    assert (mapping["basePath"].strip("/"), mapping["restApiId"], mapping["stage"]) == ("v1", rest_api_id, "api")
    records = route53.list_resource_record_sets(HostedZoneId=deployed.hosted_zone_id)["ResourceRecordSets"]
    [record] = [r for r in records if r["Type"] == "A"]
    assert record["Name"].rstrip(".") == f"api.{STAGE}.{DOMAIN}"
    alias = record["AliasTarget"]["DNSName"].rstrip(".")
    assert alias in (domain.get("distributionDomainName"), domain.get("regionalDomainName"))


def test_given_dev_deployed_then_alerts_reach_the_on_call_address_and_the_edges_are_narrowed(
    deployed: Deployed,
) -> None:
    sns, sqs, apigateway = deployed.aws("sns"), deployed.aws("sqs"), deployed.aws("apigateway")
    # the on-call address subscribes to the topic every alarm notifies
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=deployed.outputs["ALERTS_TOPIC_ARN"])["Subscriptions"]
    assert ("email", ALERT_EMAIL) in {(s["Protocol"], s["Endpoint"]) for s in subscriptions}
    # EventBridge may send to the notification queue for the stage's rule, in this account, alone
    url = sqs.get_queue_url(QueueName=f"{APP}-notification-events-{STAGE}")["QueueUrl"]
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    [statement] = policy["Statement"]
    assert policy["Version"] == "2012-10-17"
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"].endswith(
        f":rule/ecommerce-events-{STAGE}/{APP}-notification-events-{STAGE}"
    )
    # the API's stage writes access logs to the stage's group
    rest_api_id = deployed.outputs["api_url"].split("/restapis/")[1].split("/")[0]
    access = apigateway.get_stage(restApiId=rest_api_id, stageName="api")["accessLogSettings"]
    assert access["destinationArn"].endswith(f":log-group:/aws/apigateway/{APP}-{STAGE}-access")


def test_given_dev_deployed_then_its_configuration_is_the_one_make_deploy_promises(deployed: Deployed) -> None:
    lam, logs = deployed.aws("lambda"), deployed.aws("logs")
    functions = [
        f["FunctionName"] for f in lam.list_functions()["Functions"] if f["FunctionName"].startswith(f"{APP}-{STAGE}")
    ]
    assert f"{APP}-{STAGE}" in functions and f"{APP}-{STAGE}-jwt_auth" in functions
    # every function that ran wrote to its own log group, with its role (and the API handler's group exists)
    for name in (
        f"{APP}-{STAGE}",
        f"{APP}-{STAGE}-jwt_auth",
        f"{APP}-{STAGE}-process_order",
        f"{APP}-{STAGE}-complete_order",
    ):
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        assert any(e["message"].startswith("REPORT RequestId:") for e in events), name
    # SQS mappings report batch item failures
    mappings = lam.list_event_source_mappings()["EventSourceMappings"]
    mine = [m for m in mappings if f":function:{APP}-{STAGE}-" in m["FunctionArn"]]
    # (the order queue, the pending payments' re-checks, the notification events)
    assert len(mine) == 3 and all(m["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for m in mine)
    # the workflow logs and traces; alarms exist
    sfn = deployed.aws("stepfunctions")
    machine = next(
        m for m in sfn.list_state_machines()["stateMachines"] if m["name"] == f"{APP}-order-workflow-{STAGE}"
    )
    described = sfn.describe_state_machine(stateMachineArn=machine["stateMachineArn"])
    assert described["loggingConfiguration"]["level"] == "ALL" and described["tracingConfiguration"]["enabled"]
    alarms = deployed.aws("cloudwatch").describe_alarms(AlarmNamePrefix=f"{APP}-")["MetricAlarms"]
    assert len([a for a in alarms if a["AlarmName"].endswith(f"-{STAGE}") or f"-{STAGE}-" in a["AlarmName"]]) >= 4


def test_given_dev_deployed_then_it_matches_what_make_package_declares_and_a_second_deploy_is_an_update(
    deployed: Deployed,
) -> None:
    _make("package", deployed.env, f"BUILD={deployed.build}", f"SETTINGS={deployed.settings}")
    sam = deployed.build / STAGE / "out" / "sam.json"
    compare = [
        str(PROJECT_DIR / ".venv" / "bin" / "python"),
        "-m",
        "scripts.compare_stage",
        "--stage",
        STAGE,
        "--sam",
        str(sam),
        "--project",
        str(deployed.build / STAGE / "deploy"),
    ]
    done = subprocess.run(compare, cwd=PROJECT_DIR, env=deployed.env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    # WHEN deployed again unchanged: every step is an update, and the API still answers
    _make("deploy", deployed.env, f"BUILD={deployed.build}", PARAMETERS, f"SETTINGS={deployed.settings}")
    assert deployed.api.get("/health").status_code == 200
