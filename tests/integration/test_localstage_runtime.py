"""Functions deployed through the Lambda API with their own code run in worker processes, as Lambda runs them.

Against an embedded AWS with IAM enforced, as the stage runs it: each test deploys a small zip built
here (one ``app.py``, several handlers) with ``create_function`` and drives it only through the AWS
APIs, so what is checked is what ``chalice deploy`` followed by real traffic would see.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from localstage.iam import enforcement, principals
from localstage.lambdas import LambdaEmulator
from localstage.moto_lambda import async_invocations, moto_config, uninstall_invoke_hook
from localstage.patches import Patches
from localstage.runtime import DeployedFunctions
from localstage.server import ACCOUNT_ID, REGION, EmbeddedAws
from localstage.sns_delivery import install_sns_hook
from localstage.telemetry import Telemetry
from tests.integration.runtime_stage import APP, POLICY, ROLE, TRUST, Stage, alive, package, runtime_processes
from tests.polling import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stage() -> Iterator[Stage]:
    patches = Patches()
    authorizer = enforcement.Authorizer()
    enforcement.activate(authorizer)
    principals.install(patches)
    aws = EmbeddedAws(port=0, iam=authorizer).start(environ={})
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)

    def client(service: str, **config: Any) -> Any:
        return session.client(service, endpoint_url=aws.endpoint, config=Config(**config) if config else None)

    emulator = LambdaEmulator(config_source=moto_config, telemetry=Telemetry(client("logs"), client("cloudwatch")))
    async_invocations(emulator).delays = (0.2, 0.4)
    install_sns_hook(patches)
    deployed = DeployedFunctions(emulator, aws.endpoint, retry_visibility_s=0).start()
    pids: set[int] = set()
    try:
        iam = client("iam")
        role_arn = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        iam.put_role_policy(RoleName=ROLE, PolicyName="rt-policy", PolicyDocument=json.dumps(POLICY))
        yield Stage(aws, emulator, deployed, authorizer, role_arn, client, pids)
    finally:
        deployed.stop()
        uninstall_invoke_hook(emulator)
        aws.stop()
        patches.undo()
        enforcement.deactivate(authorizer)
    # No zombie and no orphan: every worker the tests saw, and any other, is gone once the runtime stopped.
    assert runtime_processes() == []
    assert [pid for pid in pids if alive(pid)] == []


def test_given_a_deployed_function_when_invoked_then_its_code_answers_as_its_own_role(stage: Stage) -> None:
    name = stage.deploy("rt-echo", "app.echo", Environment={"Variables": {"GREETING": "hello"}})

    response, answer, tail = stage.invoke(name, {"n": 1})

    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert answer["event"] == {"n": 1} and answer["function"] == name and answer["greeting"] == "hello"
    assert 0 < answer["remaining"] <= 10_000
    # Its calls are signed with its role's session (name = the function), and IAM judges them.
    assert answer["identity"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{ROLE}/{name}"
    assert answer["s3"] == "AccessDenied"
    assert f"init of {name} says hello" in tail and 'echo got {"n": 1}' in tail
    assert "START RequestId:" in tail and "END RequestId:" in tail and "REPORT RequestId:" in tail


def test_given_two_invocations_then_the_log_group_has_init_duration_on_the_first_only_written_as_the_role(
    stage: Stage,
) -> None:
    name = stage.deploy("rt-logs", "app.sleepy")

    _, first, _ = stage.invoke(name)
    _, second, _ = stage.invoke(name)

    assert first["pid"] == second["pid"]  # the warm environment was reused
    messages = wait_for(
        lambda: (m := stage.log_messages(name)) and sum(x.startswith("REPORT") for x in m) == 2 and m,
        what="two REPORT lines",
    )
    reports = [m for m in messages if m.startswith("REPORT")]
    assert sum(m.startswith("START") for m in messages) == 2 and sum(m.startswith("END") for m in messages) == 2
    assert "Init Duration:" in reports[0] and "Init Duration:" not in reports[1]
    init_ms = float(reports[0].split("Init Duration: ")[1].split(" ms")[0])
    assert 0 < init_ms < 10_000
    assert f"init of {name} says None" in messages
    used = stage.authorizer.ledger.report()["allowed"]
    assert any(u["principal"] == ROLE and u["action"] == "logs:PutLogEvents" for u in used)
    metrics = stage.client("cloudwatch").list_metrics(
        Namespace="AWS/Lambda", Dimensions=[{"Name": "FunctionName", "Value": name}]
    )["Metrics"]
    assert {"Invocations", "Duration", "Errors", "ConcurrentExecutions"} <= {m["MetricName"] for m in metrics}


def test_given_a_handler_past_its_timeout_then_sandbox_timedout_and_its_process_is_killed(stage: Stage) -> None:
    name = stage.deploy("rt-sleepy", "app.sleepy", Timeout=1)
    _, warm, _ = stage.invoke(name, {"sleep": 0})

    started = time.monotonic()
    response, answer, tail = stage.invoke(name, {"sleep": 5})
    elapsed = time.monotonic() - started

    assert response["FunctionError"] == "Unhandled" and answer["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in answer["errorMessage"] and "Status: timeout" in tail
    assert elapsed < 3
    assert not alive(warm["pid"])
    _, after, tail = stage.invoke(name, {"sleep": 0})
    assert after["pid"] != warm["pid"] and "Init Duration:" in tail  # a new environment


def test_given_reserved_concurrency_of_one_when_a_second_invoke_arrives_then_it_is_throttled(stage: Stage) -> None:
    name = stage.deploy("rt-hold", "app.sleepy")
    stage.client("lambda").put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    first = threading.Thread(target=stage.invoke, args=(name, {"sleep": 2}))
    first.start()
    try:
        busy = lambda: any(worker.busy for worker in stage.deployed.runtime.workers(name))  # noqa: E731
        wait_for(busy, what="the first invocation to reach its environment")
        no_retries = stage.client("lambda", retries={"max_attempts": 1, "mode": "standard"})
        with pytest.raises(no_retries.exceptions.TooManyRequestsException):
            no_retries.invoke(FunctionName=name, Payload=b"{}")
    finally:
        first.join(15)
    _, answer, _ = stage.invoke(name, {"sleep": 0})
    assert "pid" in answer


def test_given_an_sqs_mapping_created_through_the_api_then_it_delivers_and_item_failures_apply_after_an_update(
    stage: Stage,
) -> None:
    sqs = stage.client("sqs")
    suffix = uuid.uuid4().hex[:6]
    dlq_url = sqs.create_queue(QueueName=f"rt-dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    url = sqs.create_queue(QueueName=f"rt-work-{suffix}", Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    name = stage.deploy("rt-batch", "app.batch")
    lam = stage.client("lambda")
    mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=10)
    assert stage.deployed.mapping_settings(mapping["UUID"]) is not None  # applied at once, not at the next tick

    def drained() -> bool:
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return counts["ApproximateNumberOfMessages"] == "0" and counts["ApproximateNumberOfMessagesNotVisible"] == "0"

    def dead_lettered() -> list[str]:
        return [m["Body"] for m in sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages", [])]

    # Without ReportBatchItemFailures the reply is ignored: the whole batch is deleted.
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": "1", "MessageBody": "ok-1"}, {"Id": "2", "MessageBody": "fail-1"}]
    )
    wait_for(lambda: any("fail-1" in m for m in stage.log_messages(name)), what="the first batch")
    wait_for(drained, what="the queue to drain")
    assert dead_lettered() == []
    from moto.sqs.models import sqs_backends

    assert sqs_backends[ACCOUNT_ID][REGION].queues[f"rt-work-{suffix}"].lambda_event_source_mappings == {}

    lam.update_event_source_mapping(UUID=mapping["UUID"], FunctionResponseTypes=["ReportBatchItemFailures"])
    settings = stage.deployed.mapping_settings(mapping["UUID"])
    assert settings is not None and settings.report_batch_item_failures

    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": "1", "MessageBody": "ok-2"}, {"Id": "2", "MessageBody": "fail-2"}]
    )
    assert wait_for(dead_lettered, what="fail-2 in the DLQ") == ["fail-2"]
    wait_for(drained, what="the queue to drain")

    lam.delete_event_source_mapping(UUID=mapping["UUID"])
    assert stage.deployed.mapping_settings(mapping["UUID"]) is None  # its poller stopped at once too


def test_given_an_sns_subscription_when_a_message_is_published_then_the_deployed_function_gets_it(
    stage: Stage,
) -> None:
    name = stage.deploy("rt-notify", "app.notify")
    sns, lam = stage.client("sns"), stage.client("lambda")
    topic = sns.create_topic(Name=f"rt-topic-{uuid.uuid4().hex[:6]}")["TopicArn"]
    function_arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    lam.add_permission(
        FunctionName=name,
        StatementId="sns",
        Action="lambda:InvokeFunction",
        Principal="sns.amazonaws.com",
        SourceArn=topic,
    )
    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=function_arn)
    message = f"hello-{uuid.uuid4().hex[:8]}"

    sns.publish(TopicArn=topic, Message=message)

    wait_for(lambda: f"sns says {message}" in stage.log_messages(name), what="the SNS delivery")


def test_given_an_async_invoke_that_fails_then_it_is_retried_and_sent_to_the_on_failure_destination(
    stage: Stage,
) -> None:
    sqs, lam = stage.client("sqs"), stage.client("lambda")
    url = sqs.create_queue(QueueName=f"rt-failures-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    name = stage.deploy("rt-failing", "app.failing")
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=1, DestinationConfig={"OnFailure": {"Destination": arn}}
    )

    response = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"order": 7}')

    assert response["StatusCode"] == 202
    received = wait_for(lambda: sqs.receive_message(QueueUrl=url).get("Messages"), what="the invocation record")
    record = json.loads(received[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestPayload"] == {"order": 7}
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == "the deployed code failed"


def test_given_new_code_when_update_function_code_then_the_next_invoke_runs_it_in_a_new_environment(
    stage: Stage,
) -> None:
    name = stage.deploy("rt-version", "app.version")
    _, before, _ = stage.invoke(name)

    stage.client("lambda").update_function_code(
        FunctionName=name, ZipFile=package(APP.replace('"version": "v1"', '"version": "v2"'))
    )
    _, after, tail = stage.invoke(name)

    assert (before["version"], after["version"]) == ("v1", "v2")
    assert after["pid"] != before["pid"] and "Init Duration:" in tail
    assert not alive(before["pid"])


def test_given_new_variables_when_update_function_configuration_then_a_new_environment_has_them(
    stage: Stage,
) -> None:
    name = stage.deploy("rt-config", "app.version", Environment={"Variables": {"GREETING": "before"}})
    _, before, _ = stage.invoke(name)

    stage.client("lambda").update_function_configuration(
        FunctionName=name, Environment={"Variables": {"GREETING": "after"}}
    )
    _, after, tail = stage.invoke(name)

    assert (before["greeting"], after["greeting"]) == ("before", "after")
    assert after["pid"] != before["pid"] and "Init Duration:" in tail
    assert not alive(before["pid"])


def test_given_the_deployed_code_then_it_imports_the_runtimes_boto3_but_no_developer_package(stage: Stage) -> None:
    name = stage.deploy("rt-imports", "app.imports")

    _, found, _ = stage.invoke(name)

    assert found == {"boto3": True, "awslambdaric": True, "pytest": False, "moto": False, "chalice": False}


def test_given_a_handler_whose_module_is_missing_then_the_invoke_fails_with_the_runtimes_import_error(
    stage: Stage,
) -> None:
    name = stage.deploy("rt-broken", "missing.handler")

    response, answer, tail = stage.invoke(name)

    assert response["FunctionError"] == "Unhandled"
    assert answer["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'missing'" in answer["errorMessage"]
    assert "[ERROR] Runtime.ImportModuleError" in tail


def test_given_a_deleted_function_then_its_environments_are_stopped(stage: Stage) -> None:
    name = stage.deploy("rt-deleted", "app.sleepy")
    _, answer, _ = stage.invoke(name)

    stage.client("lambda").delete_function(FunctionName=name)

    wait_for(lambda: not alive(answer["pid"]) and name not in stage.deployed.names, what="the environment to stop")
