"""The drift check between make package and make deploy (scripts/compare_stage.py), on small templates."""

from __future__ import annotations

import pytest

from scripts.compare_stage import Resolver, declared, differences

pytestmark = pytest.mark.unit

REGION, ACCOUNT = "us-east-1", "123456789012"
TEMPLATE = {
    "Resources": {
        "OrdersTable": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "orders-dev"}},
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "work-dev"}},
        "Worker": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "FunctionName": "app-dev-worker",
                "MemorySize": 512,
                "Timeout": 30,
                "Runtime": "python3.11",
                "Handler": "app.worker",
                "Tracing": "Active",
                "Role": {"Fn::GetAtt": ["WorkerRole", "Arn"]},
                "Environment": {"Variables": {"ORDERS_TABLE": {"Ref": "OrdersTable"}, "STAGE": "dev"}},
                "Events": {
                    "Work": {
                        "Type": "SQS",
                        "Properties": {
                            "Queue": {"Fn::GetAtt": ["Queue", "Arn"]},
                            "BatchSize": 10,
                            "FunctionResponseTypes": ["ReportBatchItemFailures"],
                        },
                    }
                },
            },
        },
        "WorkerRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Policies": [
                    {
                        "PolicyDocument": {
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": ["dynamodb:GetItem"],
                                    "Resource": [
                                        {
                                            "Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/orders-dev"
                                        }
                                    ],
                                }
                            ]
                        }
                    }
                ]
            },
        },
        "WorkerLogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": {"Fn::Sub": "/aws/lambda/${Worker}"}, "RetentionInDays": 14},
        },
    }
}


def test_given_a_template_then_intrinsics_resolve_to_the_deployed_names_and_arns() -> None:
    want = declared(TEMPLATE, Resolver(TEMPLATE, {"OrdersTable": "orders-dev"}, REGION, ACCOUNT))
    assert want["function app-dev-worker: environment ORDERS_TABLE"] == "orders-dev"
    assert want["function app-dev-worker: environment STAGE"] == "dev"
    assert want["function app-dev-worker: role policy"] == [
        f"Allow dynamodb:GetItem on arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders-dev"
    ]
    mapping = want[f"function app-dev-worker: mapping from arn:aws:sqs:{REGION}:{ACCOUNT}:work-dev"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert want["log group /aws/lambda/app-dev-worker: retention"] == 14


def test_given_a_deployed_stage_that_differs_then_each_difference_is_named_unless_accepted() -> None:
    want = declared(TEMPLATE, Resolver(TEMPLATE, {"OrdersTable": "orders-dev"}, REGION, ACCOUNT))
    have = {**want, "function app-dev-worker: Tracing": "PassThrough"}
    have.pop(f"function app-dev-worker: mapping from arn:aws:sqs:{REGION}:{ACCOUNT}:work-dev")
    found = differences(want, have, accepted={})
    assert found[0] == "function app-dev-worker: Tracing: make package declares 'Active', the stage has 'PassThrough'"
    assert "mapping from" in found[1] and "the stage has None" in found[1]
    assert differences(want, have, accepted={"function app-dev-worker: *": "why"}) == []
    assert differences(want, dict(want), accepted={}) == []
    # AND a setting only the stage has is a difference too
    extra = {**want, "function app-dev-worker: environment DEBUG": "1"}
    assert differences(want, extra, accepted={}) == [
        "function app-dev-worker: environment DEBUG: the stage has '1', make package declares nothing"
    ]
