"""The dev stage deployed to the embedded AWS by ``scripts/deploy.py``, as a client sees it: every resource
checked through the AWS API a client would use, not through moto's internals.

The stage is deployed once for these read-only checks; updates, deletes and failures, which deploy
stages and templates of their own, are in test_localstage_cloudformation.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from chalicelib.domain.users import PASSWORD_MIN_LENGTH
from infra.observability import HANDLERS
from infra.pipeline import REDRIVE_MAX_RECEIVE_COUNT
from infra.template import access_log_group_name, stage_template
from localstage.server import REGION
from scripts.deploy import stack_name
from tests.integration.embedded_cfn import APP, Embedded, embedded_aws

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def embedded() -> Iterator[Embedded]:
    with embedded_aws() as aws:
        yield aws


@pytest.fixture(scope="module")
def dev(embedded: Embedded) -> dict[str, str]:
    """The dev stage deployed once, by scripts/deploy.py; its functions' environment (the stack's outputs)."""
    with pytest.MonkeyPatch.context() as patch:
        embedded.deploy("dev", patch)
    return embedded.outputs("dev")


def test_given_the_dev_stage_deployed_then_the_stack_is_complete_with_every_resource_and_output(
    embedded: Embedded, dev: dict[str, str]
) -> None:
    template = stage_template("dev")
    stack = embedded.stack("dev")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    resources = embedded.client("cloudformation").list_stack_resources(StackName=stack_name("dev"))
    assert {r["LogicalResourceId"] for r in resources["StackResourceSummaries"]} == set(template["Resources"])
    completed = {e["LogicalResourceId"] for e in embedded.events("dev") if e["ResourceStatus"] == "CREATE_COMPLETE"}
    assert set(template["Resources"]) <= completed  # THEN one event per resource, as CloudFormation records
    assert set(dev) == set(template["Outputs"])  # THEN every environment variable, none left out


def test_given_the_dev_stage_deployed_then_each_output_is_what_aws_gives_for_its_ref(dev: dict[str, str]) -> None:
    account = "123456789012"
    assert dev["ORDERS_TABLE"] == f"{APP}-orders-dev"  # a table's Ref: its name
    assert dev["ORDER_QUEUE_URL"] == f"https://sqs.{REGION}.amazonaws.com/{account}/{APP}-order-processing-dev"
    assert dev["NOTIFICATIONS_TOPIC_ARN"] == f"arn:aws:sns:{REGION}:{account}:{APP}-notifications-dev"
    assert dev["EVENT_BUS_NAME"] == "ecommerce-events-dev"  # a bus's Ref: its name
    assert dev["UPLOADS_BUCKET"] == f"{APP}-uploads-dev"
    assert dev["SIGNING_KEY_SECRET_ID"].startswith(
        f"arn:aws:secretsmanager:{REGION}:{account}:secret:{APP}-signing-key-dev-"
    )
    assert dev["USER_POOL_ID"].startswith(f"{REGION}_")  # a pool's Ref: its id
    assert dev["USER_POOL_CLIENT_ID"] and "arn:" not in dev["USER_POOL_CLIENT_ID"]
    assert dev["STATE_MACHINE_ARN"] == f"arn:aws:states:{REGION}:{account}:stateMachine:{APP}-order-workflow-dev"
    assert dev["PAYMENT_WAIT_SECONDS"] == "300"


def test_given_the_dev_stage_deployed_then_tables_have_their_keys_indexes_ttl_recovery_and_encryption(
    embedded: Embedded, dev: dict[str, str]
) -> None:
    ddb = embedded.client("dynamodb")
    for variable in ("ORDERS_TABLE", "USERS_TABLE", "PRODUCTS_TABLE", "IDEMPOTENCY_TABLE", "PAYMENTS_TABLE"):
        table = ddb.describe_table(TableName=dev[variable])["Table"]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert table["SSEDescription"]["Status"] == "ENABLED" and table["SSEDescription"]["SSEType"] == "KMS"
        backups = ddb.describe_continuous_backups(TableName=dev[variable])["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    orders = ddb.describe_table(TableName=dev["ORDERS_TABLE"])["Table"]
    index = orders["GlobalSecondaryIndexes"][0]
    assert index["IndexName"] == "CustomerOrdersIndex"
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["customer_id", "created_at"]
    ttl = ddb.describe_time_to_live(TableName=dev["IDEMPOTENCY_TABLE"])["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    assert (
        ddb.describe_time_to_live(TableName=dev["ORDERS_TABLE"])["TimeToLiveDescription"]["TimeToLiveStatus"]
        == "DISABLED"
    )


def test_given_the_dev_stage_deployed_then_queues_have_their_redrive_attributes_and_eventbridge_policy(
    embedded: Embedded, dev: dict[str, str]
) -> None:
    sqs = embedded.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=dev["ORDER_QUEUE_URL"], AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dev["ORDER_DLQ_URL"], AttributeNames=["QueueArn"])["Attributes"]
    assert redrive == {"deadLetterTargetArn": dlq_arn["QueueArn"], "maxReceiveCount": REDRIVE_MAX_RECEIVE_COUNT}
    assert attributes["VisibilityTimeout"] == "300" and attributes["MessageRetentionPeriod"] == "1209600"
    assert attributes["SqsManagedSseEnabled"] == "true"
    for queue in ("notification-events", "event-delivery-dlq"):  # the QueuePolicy's two queues
        url = sqs.get_queue_url(QueueName=f"{APP}-{queue}-dev")["QueueUrl"]
        policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
        statement = policy["Statement"][0]
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert statement["Action"] == "sqs:SendMessage"
        assert f"arn:aws:sqs:{REGION}:123456789012:{APP}-{queue}-dev" in statement["Resource"]
        # Only the stage's own rule, of this account (confused deputy), in a policy with a Version
        rule = embedded.client("events").describe_rule(
            Name=f"{APP}-notification-events-dev", EventBusName=dev["EVENT_BUS_NAME"]
        )
        assert policy["Version"] == "2012-10-17"
        assert statement["Condition"] == {
            "ArnEquals": {"aws:SourceArn": rule["Arn"]},
            "StringEquals": {"aws:SourceAccount": "123456789012"},
        }


def test_given_the_dev_stage_deployed_then_the_user_pool_and_its_client_are_configured(
    embedded: Embedded, dev: dict[str, str]
) -> None:
    idp = embedded.client("cognito-idp")
    pool = idp.describe_user_pool(UserPoolId=dev["USER_POOL_ID"])["UserPool"]
    assert pool["Name"] == f"{APP}-users-dev"
    assert pool["UsernameAttributes"] == ["email"]
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] == PASSWORD_MIN_LENGTH
    assert pool["Policies"]["PasswordPolicy"]["RequireSymbols"] is False
    client = idp.describe_user_pool_client(UserPoolId=dev["USER_POOL_ID"], ClientId=dev["USER_POOL_CLIENT_ID"])
    assert client["UserPoolClient"]["ClientName"] == f"{APP}-api-dev"
    assert client["UserPoolClient"]["ExplicitAuthFlows"] == [
        "ALLOW_ADMIN_USER_PASSWORD_AUTH",
        "ALLOW_REFRESH_TOKEN_AUTH",
    ]
    assert "ClientSecret" not in client["UserPoolClient"]


def test_given_the_dev_stage_deployed_then_the_signing_key_secret_is_generated_with_its_kid(
    embedded: Embedded, dev: dict[str, str]
) -> None:
    secrets = embedded.client("secretsmanager")
    value = json.loads(secrets.get_secret_value(SecretId=dev["SIGNING_KEY_SECRET_ID"])["SecretString"])
    assert value["kid"] == "k1"
    assert len(value["key"]) == 64 and value["key"].isalnum()  # ExcludePunctuation
    assert secrets.describe_secret(SecretId=f"{APP}-signing-key-dev")["ARN"] == dev["SIGNING_KEY_SECRET_ID"]


def test_given_the_dev_stage_deployed_then_every_alarm_exists_with_its_metric_and_the_alerts_topic(
    embedded: Embedded, dev: dict[str, str]
) -> None:
    cloudwatch = embedded.client("cloudwatch")
    alarms = {
        a["AlarmName"]: a
        for page in cloudwatch.get_paginator("describe_alarms").paginate()
        for a in page["MetricAlarms"]
    }
    expected = [
        r["Properties"]["AlarmName"]
        for r in stage_template("dev")["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    assert sorted(alarms) == sorted(expected) and len(expected) == 3 * len(HANDLERS) + 7  # 5 DLQs, 2 API alarms
    dlq = alarms[f"{APP}-order-processing-dlq-dev"]
    assert dlq["Dimensions"] == [
        {"Name": "QueueName", "Value": f"{APP}-order-processing-dlq-dev"}
    ]  # a GetAtt QueueName
    assert dlq["AlarmActions"] == [dev["ALERTS_TOPIC_ARN"]]  # a Ref to the topic
    assert dlq["Threshold"] == 0 and dlq["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarms[f"{APP}-dev-HighDuration"]["ExtendedStatistic"] == "p99"
    body = json.loads(cloudwatch.get_dashboard(DashboardName=f"{APP}-dev")["DashboardBody"])
    assert {w["properties"]["region"] for w in body["widgets"]} == {REGION}  # Fn::Sub's ${AWS::Region}


def test_given_the_dev_stage_deployed_then_the_workflow_has_its_substituted_definition_role_logs_and_traces(
    embedded: Embedded, dev: dict[str, str]
) -> None:
    machine = embedded.client("stepfunctions").describe_state_machine(stateMachineArn=dev["STATE_MACHINE_ARN"])
    assert "${" not in machine["definition"]  # every DefinitionSubstitutions variable replaced
    assert f"arn:aws:lambda:{REGION}:123456789012:function:{APP}-dev-validate_order" in machine["definition"]
    assert machine["roleArn"] == f"arn:aws:iam::123456789012:role/{APP}-order-workflow-dev"
    group = f"/aws/vendedlogs/states/{APP}-order-workflow-dev"
    destination = machine["loggingConfiguration"]["destinations"][0]["cloudWatchLogsLogGroup"]["logGroupArn"]
    assert destination == f"arn:aws:logs:{REGION}:123456789012:log-group:{group}:*"  # GetAtt Arn, as AWS gives it
    assert machine["loggingConfiguration"]["level"] == "ALL" and machine["tracingConfiguration"] == {"enabled": True}
    groups = embedded.client("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [g["retentionInDays"] for g in groups] == [14]
    iam = embedded.client("iam")
    policy = iam.get_role_policy(RoleName=f"{APP}-order-workflow-dev", PolicyName="invoke-task-functions")
    assert policy["PolicyDocument"]["Statement"][0]["Action"] == "lambda:InvokeFunction"
    trust = iam.get_role(RoleName=f"{APP}-order-workflow-dev")["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "states.amazonaws.com"}


def test_given_the_dev_stage_deployed_then_the_rule_on_the_custom_bus_targets_the_queue_with_its_dead_letters(
    embedded: Embedded, dev: dict[str, str]
) -> None:
    events = embedded.client("events")
    rule = events.describe_rule(Name=f"{APP}-notification-events-dev", EventBusName=dev["EVENT_BUS_NAME"])
    assert rule["EventBusName"] == "ecommerce-events-dev" and rule["State"] == "ENABLED"
    assert "Order Created" in json.loads(rule["EventPattern"])["detail-type"]
    (target,) = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=dev["EVENT_BUS_NAME"])["Targets"]
    assert target["Arn"] == f"arn:aws:sqs:{REGION}:123456789012:{APP}-notification-events-dev"
    assert target["DeadLetterConfig"] == {"Arn": f"arn:aws:sqs:{REGION}:123456789012:{APP}-event-delivery-dlq-dev"}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}


def test_given_the_dev_stage_deployed_then_buckets_block_public_access_encrypt_and_only_uploads_has_cors(
    embedded: Embedded, dev: dict[str, str]
) -> None:
    s3 = embedded.client("s3")
    for bucket in (dev["UPLOADS_BUCKET"], dev["REPORTS_BUCKET"]):
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert set(block.values()) == {True} and len(block) == 4
        rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    (cors,) = s3.get_bucket_cors(Bucket=dev["UPLOADS_BUCKET"])["CORSRules"]
    assert cors["AllowedMethods"] == ["GET", "PUT", "POST"] and cors["AllowedOrigins"] == ["*"]
    with pytest.raises(ClientError, match="NoSuchCORSConfiguration"):
        s3.get_bucket_cors(Bucket=dev["REPORTS_BUCKET"])
    # Abandoned uploads expire after the stage's abandoned_upload_days (30 by default)
    (lifecycle,) = s3.get_bucket_lifecycle_configuration(Bucket=dev["UPLOADS_BUCKET"])["Rules"]
    assert (lifecycle["Filter"]["Prefix"], lifecycle["Expiration"]["Days"], lifecycle["Status"]) == (
        "uploads/",
        30,
        "Enabled",
    )
    assert lifecycle["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1
    # The API's access logs have their group, with a retention
    [group] = embedded.client("logs").describe_log_groups(logGroupNamePrefix=access_log_group_name("dev"))["logGroups"]
    assert group["retentionInDays"] == 14
    sns = embedded.client("sns")
    assert sns.get_topic_attributes(TopicArn=dev["ALERTS_TOPIC_ARN"])["Attributes"]["DisplayName"] == (
        "E-commerce operational alerts"
    )
