"""The order pipeline's resources: payments table, event queues, dead letters, alarms, the workflow.

``pipeline_resources`` is merged into the stage template (``infra.template``), so the
local stage and a deployment create the same things. ``deployment_patch`` is the
fragment ``make package`` deep-merges into the template ``chalice package`` writes:
what Chalice cannot express, i.e. ``ReportBatchItemFailures`` on the SQS event
sources (without it Lambda deletes a batch's failed messages along with the good
ones) and an on-failure destination for every asynchronously invoked function.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalice.utils import to_cfn_resource_name

from chalicelib.config import MAX_RECEIVES, PIPELINE_EVENTS

Json = dict[str, Any]

STATE_MACHINE_FILE = Path(__file__).resolve().parent.parent / "statemachine.json"
PAYMENT_WAIT_SECONDS = {"local": 1}  # every other stage waits the seed's 300 s
DEFAULT_PAYMENT_WAIT_SECONDS = 300
LOG_RETENTION_DAYS = 14  # the seed's log groups: the functions' and the workflow's
# The queues' ``maxReceiveCount``: one receive more than the consumers give a message, the backstop.
# SQS's redrive records no reason; with one receive in hand, a handler that crashed or timed out on
# its last receive gets another and dead-letters the message itself, with the reason.
REDRIVE_MAX_RECEIVE_COUNT = MAX_RECEIVES + 1

# Step Functions delivers execution logs through CloudWatch Logs' vended-logs APIs, which have no
# resource-level permissions, and writes X-Ray segments: its documented policy for both.
WORKFLOW_LOG_DELIVERY_ACTIONS = [
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
]
WORKFLOW_TRACING_ACTIONS = [
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
]

# statemachine.json's substitution variables -> the ``@app.lambda_function`` they name.
TASK_FUNCTIONS = {
    f"{to_cfn_resource_name(name)}FunctionArn": name
    for name in (
        "validate_order",
        "check_inventory",
        "process_payment",
        "check_payment_status",
        "await_payment",
        "reserve_inventory",
        "send_confirmation",
        "schedule_shipping",
        "complete_order",
        "reject_order",
        "notify_out_of_stock",
        "handle_payment_failure",
        "refund_payment",
        "compensate_order",
    )
}
# Handlers on SQS that answer ``batchItemFailures``; handlers Lambda invokes asynchronously.
PARTIAL_BATCH_HANDLERS = ("process_order", "recheck_payment", "route_notification_events")
# Express: the saga runs for seconds, billed per execution and 100 ms, not per state transition; the
# payment wait happens outside it (services/payment_rechecks.py). docs/architecture.md says why.
WORKFLOW_TYPE = "EXPRESS"
ASYNC_HANDLERS = ("send_notification", "handle_workflow_event")


def function_arn(function_name: str) -> Json:
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:lambda:${{AWS::Region}}:${{AWS::AccountId}}:function:{function_name}"}


def payment_wait_seconds(stage: str) -> int:
    return PAYMENT_WAIT_SECONDS.get(stage, DEFAULT_PAYMENT_WAIT_SECONDS)


def pipeline_parameters(stage: str) -> Json:
    """The stage's deploy-time settings: the payment wait, the stage's default unless set at deploy.

    ``make deploy STAGE=dev PARAMETERS="PaymentWaitSeconds=5"`` (or ``--parameter-overrides`` for the
    packaged template) shortens it for a demo; the re-check queue's per-message delay caps it at 900 s.
    """
    return {
        "PaymentWaitSeconds": {
            "Type": "Number",
            "Default": payment_wait_seconds(stage),
            "MinValue": 1,
            "MaxValue": 900,  # SQS's longest message delay
            "Description": "Seconds a pending payment waits (outside the workflow) before its next status check",
        }
    }


def _dlq_alarm(name: str, queue_logical_id: str) -> Json:
    """Any message in a dead-letter queue pages the operations topic."""
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": name,
            "AlarmDescription": f"Messages are waiting in {queue_logical_id}: something failed three times",
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_logical_id, "QueueName"]}}],
            "Statistic": "Maximum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": "AlertsTopic"}],
        },
    }


def _queue(name: str, dlq: str | None = None) -> Json:
    props: Json = {
        "QueueName": name,
        "MessageRetentionPeriod": 1_209_600,
        "VisibilityTimeout": 300,
        "SqsManagedSseEnabled": True,
    }
    if dlq:
        props["RedrivePolicy"] = {
            "deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]},
            "maxReceiveCount": REDRIVE_MAX_RECEIVE_COUNT,
        }
    return {"Type": "AWS::SQS::Queue", "Properties": props}


def _events_may_send(rule: str, *queues: str) -> Json:
    """The queues' policy: EventBridge may send, for ``rule`` of this account only.

    Without the ``aws:SourceArn``/``aws:SourceAccount`` conditions any rule of any account could send
    (the confused-deputy case AWS's EventBridge guide warns of).
    """
    statement = {
        "Sid": "RuleDeliversToQueue",
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": [{"Fn::GetAtt": [q, "Arn"]} for q in queues],
        "Condition": {
            "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule, "Arn"]}},
            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        },
    }
    return {
        "Type": "AWS::SQS::QueuePolicy",
        "Properties": {
            "Queues": [{"Ref": q} for q in queues],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [statement]},
        },
    }


def pipeline_resources(stage: str, app: str) -> Json:
    """Resources appended to the stage template; they refer to ``AlertsTopic`` and ``EventBus`` defined before them."""

    def n(thing: str) -> str:
        return f"{app}-{thing}-{stage}"

    arns = {var: function_arn(f"{app}-{stage}-{handler}") for var, handler in TASK_FUNCTIONS.items()}
    return {
        "PaymentsTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "TableName": n("payments"),
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "order_id", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "order_id", "KeyType": "HASH"}],
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "SSESpecification": {"SSEEnabled": True},
            },
        },
        "NotificationEventsDLQ": _queue(n("notification-events-dlq")),
        # Pending payments wait here (a per-message delay of PAYMENT_WAIT_SECONDS), outside the workflow.
        "PaymentRechecksDLQ": _queue(n("payment-rechecks-dlq")),
        "PaymentRechecksQueue": _queue(n("payment-rechecks"), "PaymentRechecksDLQ"),
        "NotificationEventsQueue": _queue(n("notification-events"), "NotificationEventsDLQ"),
        "EventDeliveryDLQ": _queue(n("event-delivery-dlq")),
        "AsyncInvokeDLQ": _queue(n("async-invoke-dlq")),
        "NotificationEventsRule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Name": n("notification-events"),
                "Description": "Order pipeline events the notification service reacts to",
                "EventBusName": {"Ref": "EventBus"},
                "EventPattern": {"detail-type": list(PIPELINE_EVENTS)},
                "State": "ENABLED",
                "Targets": [
                    {
                        "Id": "notification-events",
                        "Arn": {"Fn::GetAtt": ["NotificationEventsQueue", "Arn"]},
                        "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["EventDeliveryDLQ", "Arn"]}},
                        "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
                    }
                ],
            },
        },
        # After the rule: its ARN is the policy's condition (the local provisioner creates in this order).
        "NotificationEventsQueuePolicy": _events_may_send(
            "NotificationEventsRule", "NotificationEventsQueue", "EventDeliveryDLQ"
        ),
        "OrderWorkflowRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": n("order-workflow"),
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "states.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            # Only this stage's machine, by its ARN as text (a GetAtt would be a cycle).
                            "Condition": {
                                "ArnLike": {
                                    "aws:SourceArn": {
                                        "Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
                                        f":stateMachine:{n('order-workflow')}"
                                    }
                                },
                                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                            },
                        }
                    ],
                },
                "Policies": [
                    {
                        "PolicyName": "invoke-task-functions",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": list(arns.values())}
                            ],
                        },
                    },
                    {
                        "PolicyName": "logs-and-traces",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {"Effect": "Allow", "Action": WORKFLOW_LOG_DELIVERY_ACTIONS, "Resource": "*"},
                                {"Effect": "Allow", "Action": WORKFLOW_TRACING_ACTIONS, "Resource": "*"},
                            ],
                        },
                    },
                ],
            },
        },
        # Every execution logged and traced, on every path: the local stage, make package and make deploy all
        # create the workflow from here. Express keeps no history elsewhere: the log is how an execution is
        # inspected (runbooks/workflow.py). Without its data: the states and errors are enough, and a
        # quarter of the bytes (task outputs carry amounts, and would carry whatever a task returns later).
        "OrderWorkflowLogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": f"/aws/vendedlogs/states/{app}-order-workflow-{stage}",
                "RetentionInDays": LOG_RETENTION_DAYS,
            },
        },
        "OrderStateMachine": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "StateMachineName": n("order-workflow"),
                "StateMachineType": WORKFLOW_TYPE,
                "DefinitionString": STATE_MACHINE_FILE.read_text(),
                "DefinitionSubstitutions": arns,
                "RoleArn": {"Fn::GetAtt": ["OrderWorkflowRole", "Arn"]},
                "LoggingConfiguration": {
                    "Level": "ALL",
                    "IncludeExecutionData": False,
                    "Destinations": [
                        {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": ["OrderWorkflowLogGroup", "Arn"]}}}
                    ],
                },
                "TracingConfiguration": {"Enabled": True},
            },
        },
        "OrderProcessingDLQAlarm": _dlq_alarm(n("order-processing-dlq"), "OrderProcessingDLQ"),
        "NotificationEventsDLQAlarm": _dlq_alarm(n("notification-events-dlq"), "NotificationEventsDLQ"),
        "PaymentRechecksDLQAlarm": _dlq_alarm(n("payment-rechecks-dlq"), "PaymentRechecksDLQ"),
        "EventDeliveryDLQAlarm": _dlq_alarm(n("event-delivery-dlq"), "EventDeliveryDLQ"),
        "AsyncInvokeDLQAlarm": _dlq_alarm(n("async-invoke-dlq"), "AsyncInvokeDLQ"),
    }


def pipeline_outputs(stage: str) -> Json:
    """Output key -> value, each an environment variable of the functions (``chalicelib.config``)."""
    return {
        "PAYMENTS_TABLE": {"Ref": "PaymentsTable"},
        "STATE_MACHINE_ARN": {"Ref": "OrderStateMachine"},
        "ORDER_DLQ_URL": {"Ref": "OrderProcessingDLQ"},
        "NOTIFICATION_EVENTS_DLQ_URL": {"Ref": "NotificationEventsDLQ"},
        "PAYMENT_WAIT_SECONDS": {"Ref": "PaymentWaitSeconds"},
        "PAYMENT_RECHECK_QUEUE_URL": {"Ref": "PaymentRechecksQueue"},
        "PAYMENT_RECHECK_DLQ_URL": {"Ref": "PaymentRechecksDLQ"},
    }


def deployment_patch() -> Json:
    """What ``make package`` deep-merges into ``chalice package``'s SAM template (resources by Chalice's names)."""
    resources: Json = {}
    for handler in PARTIAL_BATCH_HANDLERS:
        function = to_cfn_resource_name(handler)
        event = to_cfn_resource_name(f"{handler}-sqs-event-source")
        resources[function] = {
            "Properties": {"Events": {event: {"Properties": {"FunctionResponseTypes": ["ReportBatchItemFailures"]}}}}
        }
    for handler in ASYNC_HANDLERS:
        resources[f"{to_cfn_resource_name(handler)}AsyncConfig"] = {
            "Type": "AWS::Lambda::EventInvokeConfig",
            "Properties": {
                "FunctionName": {"Ref": to_cfn_resource_name(handler)},
                "Qualifier": "$LATEST",
                "MaximumRetryAttempts": 2,
                "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": ["AsyncInvokeDLQ", "Arn"]}}},
            },
        }
    return {"Resources": resources}


def definition(substitutions: dict[str, str]) -> str:
    """statemachine.json with its ``${...}`` variables replaced, as CloudFormation's DefinitionSubstitutions do."""
    text = STATE_MACHINE_FILE.read_text()
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    json.loads(text)  # fail here, not in Step Functions, if a value broke the JSON
    return text


def async_invoke_config(handler: str) -> Json | None:
    """The ``EventInvokeConfig`` the deployment gives ``handler`` (retries, on-failure destination), if any.

    The local stage applies it too, so a failed asynchronous event is dead-lettered there as deployed.
    """
    config: Json | None = deployment_patch()["Resources"].get(f"{to_cfn_resource_name(handler)}AsyncConfig")
    return config["Properties"] if config else None


def reports_batch_item_failures(handler: str) -> bool:
    """Whether the deployment gives ``handler``'s SQS event source ``ReportBatchItemFailures``.

    The local stage's SQS poller should read this rather than assume it, so a
    handler that the deployment does not configure behaves locally as on AWS.
    """
    function = to_cfn_resource_name(handler)
    events = deployment_patch()["Resources"].get(function, {}).get("Properties", {}).get("Events", {})
    return any(
        "ReportBatchItemFailures" in event.get("Properties", {}).get("FunctionResponseTypes", [])
        for event in events.values()
    )
