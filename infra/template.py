"""CloudFormation for one stage: tables, queues, topics, bus, buckets, secret, pool.

Everything a stage needs besides the functions and the API, which Chalice
generates. One definition serves the local stage and a real deployment, so
they cannot drift. Names follow the seed: ``${app}-<thing>-${stage}``.
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.users import PASSWORD_MIN_LENGTH
from infra.observability import observability_resources
from infra.pipeline import REDRIVE_MAX_RECEIVE_COUNT, pipeline_outputs, pipeline_parameters, pipeline_resources
from infra.stage_settings import StageSettings, load_stage_settings

APP = "ecommerce-backend"
EVENT_BUS = "ecommerce-events"
RETENTION_14_DAYS = 1_209_600
UPLOADS_PREFIX = "uploads/"  # chalicelib.domain.uploads.upload_key
# What an operator cannot get back once CloudFormation deletes it: retained on stages with retain_data.
DATA_RESOURCES = ("OrdersTable", "UsersTable", "ProductsTable", "IdempotencyTable", "PaymentsTable", "UserPool")
SECRET_RESOURCES = ("SigningKeySecret",)

Json = dict[str, Any]


def resource_name(thing: str, stage: str, app: str = APP) -> str:
    return f"{app}-{thing}-{stage}"


def _table(
    name: str,
    key: str,
    attrs: dict[str, str],
    indexes: list[tuple[str, str, str | None]],
    ttl: str | None = None,
    keys_only: frozenset[str] = frozenset(),
) -> Json:
    props: Json = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": t} for a, t in attrs.items()],
        "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}],
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
    }
    if indexes:
        props["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index,
                "KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"}]
                + ([{"AttributeName": range_key, "KeyType": "RANGE"}] if range_key else []),
                "Projection": {"ProjectionType": "KEYS_ONLY" if index in keys_only else "ALL"},
            }
            for index, hash_key, range_key in indexes
        ]
    if ttl:
        props["TimeToLiveSpecification"] = {"AttributeName": ttl, "Enabled": True}
    return {"Type": "AWS::DynamoDB::Table", "Properties": props}


def _queue(name: str, dlq_logical_id: str | None = None, visibility: int = 300) -> Json:
    props: Json = {
        "QueueName": name,
        "MessageRetentionPeriod": RETENTION_14_DAYS,
        "VisibilityTimeout": visibility,
        "SqsManagedSseEnabled": True,
    }
    if dlq_logical_id:
        props["RedrivePolicy"] = {
            "deadLetterTargetArn": {"Fn::GetAtt": [dlq_logical_id, "Arn"]},
            "maxReceiveCount": REDRIVE_MAX_RECEIVE_COUNT,
        }
    return {"Type": "AWS::SQS::Queue", "Properties": props}


def stage_template(stage: str, app: str = APP, settings: StageSettings | None = None) -> Json:
    """The stage's resources as a CloudFormation template (a plain dict).

    ``settings`` (default: the stage's, ``infra.stage_settings``) decide what is retained, who is
    alerted, the CORS origin of the uploads bucket and the access logs' retention.
    """
    settings = settings or load_stage_settings(stage)

    def n(thing: str) -> str:
        return resource_name(thing, stage, app)

    resources: Json = {
        # DeadlineIndex: sparse on deadline_at (only orders in flight carry it), keys only: the watchdog's
        # query for orders past their deadline (chalicelib/adapters/deadlines_dynamodb.py).
        "OrdersTable": _table(
            n("orders"),
            "order_id",
            {"order_id": "S", "customer_id": "S", "created_at": "S", "status": "S", "deadline_at": "N"},
            [("CustomerOrdersIndex", "customer_id", "created_at"), ("DeadlineIndex", "status", "deadline_at")],
            keys_only=frozenset({"DeadlineIndex"}),
        ),
        "UsersTable": _table(n("users"), "user_id", {"user_id": "S", "email": "S"}, [("EmailIndex", "email", None)]),
        "ProductsTable": _table(
            n("products"), "product_id", {"product_id": "S", "category": "S"}, [("CategoryIndex", "category", None)]
        ),
        "IdempotencyTable": _table(n("idempotency"), "idempotency_key", {"idempotency_key": "S"}, [], ttl="expires_at"),
        "OrderProcessingDLQ": _queue(n("order-processing-dlq")),
        "OrderProcessingQueue": _queue(n("order-processing"), "OrderProcessingDLQ"),
        "NotificationTopic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": n("notifications"), "DisplayName": "E-commerce Notifications"},
        },
        "AlertsTopic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": n("alerts"), "DisplayName": "E-commerce operational alerts"},
        },
        "EventBus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": f"{EVENT_BUS}-{stage}"}},
        "UploadsBucket": _bucket(n("uploads"), settings.cors_origin, settings.abandoned_upload_days),
        "ReportsBucket": _bucket(n("reports")),
        "SigningKeySecret": {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {
                "Name": n("signing-key"),
                "Description": "HS256 key for the API's access tokens; rotate by adding a key with a new kid",
                # Generated by the service, never written down: {"kid": "k1", "key": "<64 random chars>"}.
                "GenerateSecretString": {
                    "SecretStringTemplate": '{"kid": "k1"}',
                    "GenerateStringKey": "key",
                    "PasswordLength": 64,
                    "ExcludePunctuation": True,
                },
            },
        },
        "UserPool": {
            "Type": "AWS::Cognito::UserPool",
            "Properties": {
                "UserPoolName": n("users"),
                "UsernameAttributes": ["email"],
                "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
                "Policies": {
                    "PasswordPolicy": {
                        "MinimumLength": PASSWORD_MIN_LENGTH,
                        "RequireLowercase": True,
                        "RequireUppercase": True,
                        "RequireNumbers": True,
                        "RequireSymbols": False,
                    }
                },
            },
        },
        "UserPoolClient": {
            "Type": "AWS::Cognito::UserPoolClient",
            "Properties": {
                "ClientName": n("api"),
                "UserPoolId": {"Ref": "UserPool"},
                "GenerateSecret": False,
                "ExplicitAuthFlows": ["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            },
        },
    }
    outputs = {
        # Output key -> environment variable of the functions (chalicelib.config).
        "ORDERS_TABLE": {"Ref": "OrdersTable"},
        "USERS_TABLE": {"Ref": "UsersTable"},
        "PRODUCTS_TABLE": {"Ref": "ProductsTable"},
        "IDEMPOTENCY_TABLE": {"Ref": "IdempotencyTable"},
        "ORDER_QUEUE_URL": {"Ref": "OrderProcessingQueue"},
        "NOTIFICATIONS_TOPIC_ARN": {"Ref": "NotificationTopic"},
        "ALERTS_TOPIC_ARN": {"Ref": "AlertsTopic"},
        "EVENT_BUS_NAME": {"Ref": "EventBus"},
        "UPLOADS_BUCKET": {"Ref": "UploadsBucket"},
        "REPORTS_BUCKET": {"Ref": "ReportsBucket"},
        "SIGNING_KEY_SECRET_ID": {"Ref": "SigningKeySecret"},
        "USER_POOL_ID": {"Ref": "UserPool"},
        "USER_POOL_CLIENT_ID": {"Ref": "UserPoolClient"},
    }
    # The order pipeline (payments, event queues, dead letters, alarms, the workflow): infra/pipeline.py.
    resources.update(pipeline_resources(stage, app))
    outputs.update(pipeline_outputs(stage))
    # The dashboard and alarms (per function, the API's 5xx and p99 latency): infra/observability.py.
    resources.update(observability_resources(stage, app))
    resources.update(alert_subscriptions(settings))
    resources["ApiAccessLogGroup"] = {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {
            "LogGroupName": access_log_group_name(stage, app),
            "RetentionInDays": settings.access_log_retention_days,
        },
    }
    apply_deletion_policies(resources, settings)
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"{app} stage {stage}: data, messaging, identity and storage",
        "Parameters": pipeline_parameters(stage),
        "Resources": resources,
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }


def access_log_group_name(stage: str, app: str = APP) -> str:
    """Where API Gateway writes the stage's access logs (one JSON line per request)."""
    return f"/aws/apigateway/{app}-{stage}-access"


def alert_subscriptions(settings: StageSettings) -> Json:
    """One ``AWS::SNS::Subscription`` to ``AlertsTopic`` per alert e-mail and HTTPS endpoint.

    E-mail and HTTPS subscribers confirm by answering SNS's confirmation message; until then SNS
    delivers them nothing (``PendingConfirmation`` in the console).
    """
    targets = [("email", address) for address in settings.alert_emails]
    targets += [(url.split(":", 1)[0], url) for url in settings.alert_endpoints]
    return {
        f"AlertsSubscription{number}": {
            "Type": "AWS::SNS::Subscription",
            "Properties": {"TopicArn": {"Ref": "AlertsTopic"}, "Protocol": protocol, "Endpoint": endpoint},
        }
        for number, (protocol, endpoint) in enumerate(targets, 1)
    }


def apply_deletion_policies(resources: Json, settings: StageSettings) -> None:
    """An explicit ``DeletionPolicy`` and ``UpdateReplacePolicy`` on every stateful resource.

    Data (tables, the user pool) and the signing key follow the stage's ``retain_data``; on such a
    stage the tables and the pool also refuse deletion through their own APIs. Queues, topics,
    buckets and log groups hold what is at most 14 days old or can be rebuilt, and are deleted with
    the stack on every stage: retaining them would make re-creating the stack fail on their names.
    """
    policy = settings.deletion_policy
    for logical_id, resource in resources.items():
        kind = resource["Type"]
        if logical_id in DATA_RESOURCES or logical_id in SECRET_RESOURCES:
            resource["DeletionPolicy"] = resource["UpdateReplacePolicy"] = policy
            if settings.retain_data and kind == "AWS::DynamoDB::Table":
                resource["Properties"]["DeletionProtectionEnabled"] = True
            if settings.retain_data and kind == "AWS::Cognito::UserPool":
                resource["Properties"]["DeletionProtection"] = "ACTIVE"
        elif kind in ("AWS::SQS::Queue", "AWS::Logs::LogGroup", "AWS::S3::Bucket", "AWS::SNS::Topic"):
            resource["DeletionPolicy"] = resource["UpdateReplacePolicy"] = "Delete"


def _bucket(name: str, cors_origin: str | None = None, expire_days: int | None = None) -> Json:
    props: Json = {
        "BucketName": name,
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        },
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    }
    if cors_origin:
        # So browsers on the stage's origin (the one the API allows) can POST the presigned form.
        props["CorsConfiguration"] = {
            "CorsRules": [
                {"AllowedOrigins": [cors_origin], "AllowedMethods": ["GET", "PUT", "POST"], "AllowedHeaders": ["*"]}
            ]
        }
    if expire_days:
        # Nothing in the stage claims an upload once made (the API only hands out the form): whoever
        # keeps one copies it out. What is left under uploads/ after expire_days is abandoned.
        props["LifecycleConfiguration"] = {
            "Rules": [
                {
                    "Id": "abandoned-uploads",
                    "Status": "Enabled",
                    "Prefix": UPLOADS_PREFIX,
                    "ExpirationInDays": expire_days,
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                }
            ]
        }
    return {"Type": "AWS::S3::Bucket", "Properties": props}
