"""The embedded AWS as a deploy target: ``scripts/deploy.py``'s own steps against moto's CloudFormation
with the local stage's fills (``localstage/cloudformation.py``).

Every resource is checked through the AWS API a client would use, not through moto's internals.
Updates, deletes and failures deploy stages of their own (``qa``, ``rb``) or small templates, so no
test depends on another's order; the ``dev`` stage as deployed, checked read-only, is in
test_localstage_cloudformation_dev.py.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from infra.package import named_outputs
from infra.template import stage_template
from localstage.server import REGION
from scripts.deploy import DeployError, _template_source, deploy_resources, destroy, stack_name
from tests.integration.embedded_cfn import APP, Embedded, EndpointSession, Json, embedded_aws, small, with_template

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def embedded() -> Iterator[Embedded]:
    with embedded_aws() as aws:
        yield aws


# -- a stage's life: update, no-op update, destroy -------------------------------------------------


def _changed(template: Json) -> Json:
    """The qa stage's next version: in-place changes, a replacement, an addition and a removal."""
    changed = copy.deepcopy(template)
    resources = changed["Resources"]
    resources["OrderProcessingQueue"]["Properties"]["VisibilityTimeout"] = 120
    resources["IdempotencyTable"]["Properties"]["TimeToLiveSpecification"]["AttributeName"] = "expires"
    resources["UserPool"]["Properties"]["Policies"]["PasswordPolicy"]["MinimumLength"] = 12
    resources["NotificationTopic"]["Properties"]["DisplayName"] = "Notifications"
    resources["SigningKeySecret"]["Properties"]["Description"] = "rotated by adding a key"
    resources["ReportsBucket"]["Properties"]["CorsConfiguration"] = {
        "CorsRules": [{"AllowedOrigins": ["https://ops.example"], "AllowedMethods": ["GET"]}]
    }
    # A new name replaces the DLQ: its Ref and GetAtt move, so the queue's redrive, the alarm and the output follow.
    resources["OrderProcessingDLQ"]["Properties"]["QueueName"] = f"{APP}-order-processing-dlq-v2-qa"
    resources["EventDeliveryDLQ"]["Properties"]["QueueName"] = f"{APP}-event-delivery-dlq-v2-qa"  # policy, rule follow
    resources["OrderWorkflowLogGroup"]["Properties"]["RetentionInDays"] = 30
    resources["OrderStateMachine"]["Properties"]["TracingConfiguration"] = {"Enabled": False}
    resources["OrderWorkflowRole"]["Properties"]["Policies"].pop()  # the logs-and-traces policy goes
    resources["UserPoolClient"]["Properties"]["ExplicitAuthFlows"] = ["ALLOW_REFRESH_TOKEN_AUTH"]
    resources["AuditQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{APP}-audit-qa"}}
    del resources["AsyncInvokeDLQAlarm"]
    return changed


def test_given_a_deployed_stage_when_updated_then_changes_apply_state_survives_and_destroy_removes_everything(
    embedded: Embedded, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedded.deploy("qa", monkeypatch)
    before = embedded.outputs("qa")
    sqs, idp, sns, secrets = (embedded.client(s) for s in ("sqs", "cognito-idp", "sns", "secretsmanager"))
    sqs.send_message(QueueUrl=before["ORDER_QUEUE_URL"], MessageBody="order-1")
    idp.admin_create_user(UserPoolId=before["USER_POOL_ID"], Username="ada@example.com")
    sns.subscribe(TopicArn=before["NOTIFICATIONS_TOPIC_ARN"], Protocol="email", Endpoint="ops@example.com")
    key = secrets.get_secret_value(SecretId=before["SIGNING_KEY_SECRET_ID"])["SecretString"]

    # WHEN the template changes
    with_template(monkeypatch, _changed)
    embedded.deploy("qa", monkeypatch)

    after = embedded.outputs("qa")
    assert embedded.stack("qa")["StackStatus"] == "UPDATE_COMPLETE"
    # THEN each change applied in place ...
    attributes = sqs.get_queue_attributes(QueueUrl=after["ORDER_QUEUE_URL"], AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "120" and attributes["ApproximateNumberOfMessages"] == "1"
    ttl = embedded.client("dynamodb").describe_time_to_live(TableName=after["IDEMPOTENCY_TABLE"])
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires"
    pool = idp.describe_user_pool(UserPoolId=before["USER_POOL_ID"])["UserPool"]
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] == 12 and pool["EstimatedNumberOfUsers"] == 1
    assert (
        sns.get_topic_attributes(TopicArn=before["NOTIFICATIONS_TOPIC_ARN"])["Attributes"]["DisplayName"]
        == "Notifications"
    )
    assert len(sns.list_subscriptions_by_topic(TopicArn=before["NOTIFICATIONS_TOPIC_ARN"])["Subscriptions"]) == 1
    assert secrets.get_secret_value(SecretId=after["SIGNING_KEY_SECRET_ID"])["SecretString"] == key
    assert embedded.client("s3").get_bucket_cors(Bucket=after["REPORTS_BUCKET"])["CORSRules"][0]["AllowedMethods"] == [
        "GET"
    ]
    machine = embedded.client("stepfunctions").describe_state_machine(stateMachineArn=after["STATE_MACHINE_ARN"])
    assert machine["tracingConfiguration"] == {"enabled": False} and machine["loggingConfiguration"]["level"] == "ALL"
    group = embedded.client("logs").describe_log_groups(
        logGroupNamePrefix=f"/aws/vendedlogs/states/{APP}-order-workflow-qa"
    )
    assert group["logGroups"][0]["retentionInDays"] == 30
    role_policies = embedded.client("iam").list_role_policies(RoleName=f"{APP}-order-workflow-qa")["PolicyNames"]
    assert role_policies == ["invoke-task-functions"]
    client = idp.describe_user_pool_client(UserPoolId=after["USER_POOL_ID"], ClientId=after["USER_POOL_CLIENT_ID"])
    assert client["UserPoolClient"]["ExplicitAuthFlows"] == ["ALLOW_REFRESH_TOKEN_AUTH"]
    assert after["USER_POOL_CLIENT_ID"] == before["USER_POOL_CLIENT_ID"]  # in place: clients keep their id
    # ... the replaced DLQ moved, with everything that names it, and the old one is gone
    new_dlq = f"https://sqs.{REGION}.amazonaws.com/123456789012/{APP}-order-processing-dlq-v2-qa"
    assert after["ORDER_DLQ_URL"] == new_dlq
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"].endswith(
        ":ecommerce-backend-order-processing-dlq-v2-qa"
    )
    queues = sqs.list_queues(QueueNamePrefix=f"{APP}-")["QueueUrls"]
    assert not any(url.endswith(f"{APP}-order-processing-dlq-qa") for url in queues)
    alarm = embedded.client("cloudwatch").describe_alarms(AlarmNames=[f"{APP}-order-processing-dlq-qa"])[
        "MetricAlarms"
    ][0]
    assert alarm["Dimensions"][0]["Value"] == f"{APP}-order-processing-dlq-v2-qa"
    delivery_dlq = sqs.get_queue_url(QueueName=f"{APP}-event-delivery-dlq-v2-qa")["QueueUrl"]
    policy = sqs.get_queue_attributes(QueueUrl=delivery_dlq, AttributeNames=["Policy"])["Attributes"]["Policy"]
    assert f"{APP}-event-delivery-dlq-v2-qa" in json.loads(policy)["Statement"][0]["Resource"][1]
    events = embedded.client("events")
    (target,) = events.list_targets_by_rule(Rule=f"{APP}-notification-events-qa", EventBusName=after["EVENT_BUS_NAME"])[
        "Targets"
    ]
    assert target["DeadLetterConfig"]["Arn"].endswith(f":{APP}-event-delivery-dlq-v2-qa")
    # ... the added resource exists and the removed one is deleted
    assert any(url.endswith(f"{APP}-audit-qa") for url in queues)
    assert (
        embedded.client("cloudwatch").describe_alarms(AlarmNames=[f"{APP}-async-invoke-dlq-qa"])["MetricAlarms"] == []
    )

    # WHEN deployed again unchanged: CloudFormation answers "No updates are to be performed", which deploy accepts
    updates = [e for e in embedded.events("qa") if e["ResourceStatus"] == "UPDATE_IN_PROGRESS"]
    embedded.deploy("qa", monkeypatch)
    assert [e for e in embedded.events("qa") if e["ResourceStatus"] == "UPDATE_IN_PROGRESS"] == updates
    same = _changed(stage_template("qa"))
    same["Outputs"] = named_outputs(same["Outputs"])
    source = _template_source("qa", EndpointSession(embedded), json.dumps(same))  # over 51,200 bytes: by S3
    with pytest.raises(ClientError, match="No updates are to be performed"):
        embedded.client("cloudformation").update_stack(
            StackName=stack_name("qa"), Capabilities=["CAPABILITY_NAMED_IAM"], **source
        )

    # WHEN destroyed (make destroy's step): every resource the stack made is gone
    destroy("qa", EndpointSession(embedded))
    with pytest.raises(ClientError, match="does not exist"):
        embedded.stack("qa")
    _assert_stage_gone(embedded, after)


def _assert_stage_gone(embedded: Embedded, outputs: dict[str, str]) -> None:
    ddb, sqs = embedded.client("dynamodb"), embedded.client("sqs")
    assert not [t for t in ddb.list_tables()["TableNames"] if t.endswith("-qa")]
    assert not [q for q in sqs.list_queues(QueueNamePrefix=APP).get("QueueUrls", []) if q.endswith("-qa")]
    assert not [t for t in embedded.client("sns").list_topics()["Topics"] if t["TopicArn"].endswith("-qa")]
    assert "ecommerce-events-qa" not in [b["Name"] for b in embedded.client("events").list_event_buses()["EventBuses"]]
    assert not [b for b in embedded.client("s3").list_buckets()["Buckets"] if b["Name"].endswith("-qa")]
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        embedded.client("secretsmanager").describe_secret(SecretId=outputs["SIGNING_KEY_SECRET_ID"])
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        embedded.client("cognito-idp").describe_user_pool(UserPoolId=outputs["USER_POOL_ID"])
    with pytest.raises(ClientError, match="NoSuchEntity"):
        embedded.client("iam").get_role(RoleName=f"{APP}-order-workflow-qa")
    assert not [
        m for m in embedded.client("stepfunctions").list_state_machines()["stateMachines"] if m["name"].endswith("-qa")
    ]
    assert not embedded.client("logs").describe_log_groups(
        logGroupNamePrefix=f"/aws/vendedlogs/states/{APP}-order-workflow-qa"
    )["logGroups"]
    cloudwatch = embedded.client("cloudwatch")
    alarms = [
        a["AlarmName"] for page in cloudwatch.get_paginator("describe_alarms").paginate() for a in page["MetricAlarms"]
    ]
    assert not [a for a in alarms if a.endswith("-qa") or "-qa-" in a]
    assert not [d for d in cloudwatch.list_dashboards()["DashboardEntries"] if d["DashboardName"].endswith("-qa")]


# -- failures: what AWS refuses, the stage refuses -------------------------------------------------


def test_given_a_resource_type_without_a_fill_when_deploying_then_the_stack_rolls_back_naming_the_type(
    embedded: Embedded, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "unsupported-first"}}
    pipe = {"Type": "AWS::Pipes::Pipe", "DependsOn": "First", "Properties": {"Name": "p"}}
    with_template(monkeypatch, small({"First": queue, "Pipe": pipe}))

    with pytest.raises(DeployError) as failure:
        embedded.deploy("unsupported", monkeypatch)

    # THEN the deploy names the stack's end, the resource and the type; what was made is rolled back
    assert "ROLLBACK_COMPLETE" in str(failure.value)
    assert "Pipe: resource type AWS::Pipes::Pipe is not supported" in str(failure.value)
    assert "unsupported-first" not in str(embedded.client("sqs").list_queues())
    assert embedded.stack("unsupported").get("Outputs") is None


def test_given_a_property_no_fill_applies_when_deploying_then_the_resource_fails_naming_it(
    embedded: Embedded, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "kms-queue", "KmsMasterKeyId": "alias/aws/sqs"}}
    with_template(monkeypatch, small({"Encrypted": queue}))

    with pytest.raises(DeployError, match="Encrypted: AWS::SQS::Queue property KmsMasterKeyId is not applied"):
        embedded.deploy("property", monkeypatch)


def test_given_a_name_already_taken_when_deploying_then_it_fails_and_the_existing_resource_is_left_alone(
    embedded: Embedded, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = embedded.client("sqs").create_queue(QueueName="taken-by-hand")["QueueUrl"]
    with_template(
        monkeypatch, small({"Taken": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "taken-by-hand"}}})
    )

    with pytest.raises(
        DeployError, match=r"Taken: Resource of type 'AWS::SQS::Queue' with identifier '\S+' already exists"
    ):
        embedded.deploy("taken", monkeypatch)
    assert embedded.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["QueueArn"]
    )  # THEN not rolled away


def test_given_an_update_that_fails_then_it_rolls_back_to_the_previous_state_and_the_stack_stays_usable(
    embedded: Embedded, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue: Json = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "rb-work", "VisibilityTimeout": 30}}
    table: Json = {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {
            "TableName": "rb-table",
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": "k", "AttributeType": "S"},
                {"AttributeName": "g", "AttributeType": "S"},
            ],
            "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "ByG",
                    "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        },
        "DependsOn": "Work",  # updated after the queue, so the queue's change has to be undone
    }
    with_template(monkeypatch, small({"Work": queue, "Table": table}))
    embedded.deploy("rb", monkeypatch)
    broken = copy.deepcopy({"Work": queue, "Table": table})
    broken["Work"]["Properties"]["VisibilityTimeout"] = 90
    broken["Table"]["Properties"]["GlobalSecondaryIndexes"][0]["Projection"] = {"ProjectionType": "KEYS_ONLY"}
    with_template(monkeypatch, small(broken))

    with pytest.raises(DeployError, match="UPDATE_ROLLBACK_COMPLETE: Table: Cannot update GSI's properties"):
        embedded.deploy("rb", monkeypatch)

    url = embedded.client("sqs").get_queue_url(QueueName="rb-work")["QueueUrl"]
    visibility = embedded.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
    assert visibility["Attributes"]["VisibilityTimeout"] == "30"  # THEN the queue's change was rolled back
    fixed = copy.deepcopy(broken)
    fixed["Table"]["Properties"]["GlobalSecondaryIndexes"][0]["Projection"] = {"ProjectionType": "ALL"}
    with_template(monkeypatch, small(fixed))
    embedded.deploy("rb", monkeypatch)  # THEN the stack takes the next update
    assert embedded.stack("rb")["StackStatus"] == "UPDATE_COMPLETE"


def test_given_a_bucket_with_objects_when_destroying_then_the_stack_stays_delete_failed_until_it_is_emptied(
    embedded: Embedded, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "kept-evidence"}}
    topic = {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "kept-evidence-topic"}}
    with_template(monkeypatch, small({"Evidence": bucket, "Topic": topic}))
    embedded.deploy("keep", monkeypatch)
    s3 = embedded.client("s3")
    s3.put_object(Bucket="kept-evidence", Key="report.csv", Body=b"x")

    with pytest.raises(DeployError, match="DELETE_FAILED: Evidence: BucketNotEmpty"):
        destroy("keep", EndpointSession(embedded))

    assert embedded.stack("keep")["StackStatus"] == "DELETE_FAILED"  # THEN the stack is still there, as on AWS
    assert "kept-evidence-topic" not in str(embedded.client("sns").list_topics())  # the rest was deleted
    s3.delete_object(Bucket="kept-evidence", Key="report.csv")
    destroy("keep", EndpointSession(embedded))
    with pytest.raises(ClientError, match="does not exist"):
        embedded.stack("keep")


def test_given_a_named_role_when_creating_without_acknowledging_named_iam_then_aws_refusal_is_given(
    embedded: Embedded,
) -> None:
    role = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": "acknowledged-role",
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []},
        },
    }
    body = json.dumps({"Resources": {"Role": role}})
    cfn = embedded.client("cloudformation")

    for capabilities in ([], ["CAPABILITY_IAM"]):
        with pytest.raises(
            ClientError, match=r"InsufficientCapabilities.*Requires capabilities : \[CAPABILITY_NAMED_IAM\]"
        ):
            cfn.create_stack(StackName="needs-named-iam", TemplateBody=body, Capabilities=capabilities)

    cfn.create_stack(StackName="needs-named-iam", TemplateBody=body, Capabilities=["CAPABILITY_NAMED_IAM"])
    assert embedded.stack("needs-named-iam")["StackStatus"] == "CREATE_COMPLETE"


def test_given_an_update_adding_a_named_role_without_acknowledging_named_iam_then_aws_refusal_is_given(
    embedded: Embedded,
) -> None:
    # GIVEN a stack without IAM resources
    cfn = embedded.client("cloudformation")
    topic = {"Type": "AWS::SNS::Topic"}
    cfn.create_stack(StackName="update-named-iam", TemplateBody=json.dumps({"Resources": {"Topic": topic}}))
    role = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": "update-role",
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []},
        },
    }
    body = json.dumps({"Resources": {"Topic": topic, "Role": role}})
    # WHEN an update adds a named role without CAPABILITY_NAMED_IAM THEN CloudFormation refuses it, as on create
    with pytest.raises(
        ClientError, match=r"InsufficientCapabilities.*Requires capabilities : \[CAPABILITY_NAMED_IAM\]"
    ):
        cfn.update_stack(StackName="update-named-iam", TemplateBody=body)
    assert embedded.stack("update-named-iam")["StackStatus"] == "CREATE_COMPLETE"


def test_given_a_reference_to_a_resource_the_template_lacks_then_creation_is_refused_before_anything_is_made(
    embedded: Embedded,
) -> None:
    queue = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "unresolved-q"}}
    topic = {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Fn::GetAtt": ["Missing", "Arn"]}}}
    body = json.dumps({"Resources": {"Queue": queue, "Topic": topic}})
    with pytest.raises(ClientError, match=r"Unresolved resource dependencies \[Missing\]"):
        embedded.client("cloudformation").create_stack(StackName="unresolved", TemplateBody=body)
    queues = embedded.client("sqs").list_queues(QueueNamePrefix="unresolved-q").get("QueueUrls", [])
    assert queues == []  # nothing was created: AWS validates the template first


def test_given_a_template_over_51200_bytes_inline_then_cloudformation_refuses_it_as_aws_does(
    embedded: Embedded,
) -> None:
    body = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Metadata": {"pad": "x" * 52_000}})
    for call in ("create_stack", "validate_template"):
        with pytest.raises(ClientError, match="Member must have length less than or equal to 51200"):
            getattr(embedded.client("cloudformation"), call)(
                **({"StackName": "too-big"} if call == "create_stack" else {}), TemplateBody=body
            )


def test_given_a_parameter_when_deploying_then_it_reaches_the_outputs_and_only_a_changed_one_updates(
    embedded: Embedded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", embedded.aws.endpoint)
    deploy_resources("demo", embedded.session, ["PaymentWaitSeconds=5"])
    assert embedded.outputs("demo")["PAYMENT_WAIT_SECONDS"] == "5"
    events = len(embedded.client("cloudformation").describe_stack_events(StackName=stack_name("demo"))["StackEvents"])
    # WHEN deployed again with the same value: nothing to do
    deploy_resources("demo", embedded.session, ["PaymentWaitSeconds=5"])
    assert (
        len(embedded.client("cloudformation").describe_stack_events(StackName=stack_name("demo"))["StackEvents"])
        == events
    )
    # WHEN deployed without it: the default is back, as CloudFormation does
    deploy_resources("demo", embedded.session)
    assert embedded.outputs("demo")["PAYMENT_WAIT_SECONDS"] == "300"
    destroy("demo", EndpointSession(embedded))


def test_given_alert_subscribers_when_deploying_then_each_subscribes_and_destroy_unsubscribes(
    embedded: Embedded, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stage with an alerts topic and two subscribers (infra.template.alert_subscriptions)
    topic = {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "alerts-subscribed"}}
    resources = {"AlertsTopic": topic}
    for number, (protocol, endpoint) in enumerate(
        (("email", "oncall@example.com"), ("https", "https://h.example/a")), 1
    ):
        resources[f"AlertsSubscription{number}"] = {
            "Type": "AWS::SNS::Subscription",
            "Properties": {"TopicArn": {"Ref": "AlertsTopic"}, "Protocol": protocol, "Endpoint": endpoint},
        }
    with_template(monkeypatch, small(resources))
    # WHEN it is deployed
    embedded.deploy("subscribed", monkeypatch)
    sns = embedded.client("sns")
    arn = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":alerts-subscribed"))
    # THEN the topic has both subscriptions
    found = {(s["Protocol"], s["Endpoint"]) for s in sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]}
    assert found == {("email", "oncall@example.com"), ("https", "https://h.example/a")}
    # WHEN the stage is destroyed THEN no subscription is left behind
    destroy("subscribed", EndpointSession(embedded))
    assert not [s for s in sns.list_subscriptions()["Subscriptions"] if s["TopicArn"] == arn]
