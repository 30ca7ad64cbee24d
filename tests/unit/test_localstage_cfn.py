"""The CloudFormation fills' pure parts: the dependency graph, template checks, property checks, undo."""

from __future__ import annotations

import pytest
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import Stack
from moto.cloudformation.parsing import ResourceMap

from localstage.cloudformation import FILLS, install
from localstage.cloudformation.data import TableFill
from localstage.cloudformation.graph import check_template, creation_order, dependencies
from localstage.cloudformation.model import Filled, FillError, Where
from localstage.patches import Patches

pytestmark = pytest.mark.unit

RESOURCES = {
    "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "b"}},
    "Dlq": {"Type": "AWS::SQS::Queue"},
    "Queue": {
        "Type": "AWS::SQS::Queue",
        "Properties": {"RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": "Dlq.Arn"}}},
    },
    "Rule": {
        "Type": "AWS::Events::Rule",
        "DependsOn": "Dlq",
        "Properties": {"EventBusName": {"Ref": "Bus"}, "Targets": [{"Arn": {"Fn::GetAtt": ["Queue", "Arn"]}}]},
    },
    "Machine": {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {
            "DefinitionString": {"Fn::Sub": ["${Own} ${Queue.QueueName} ${!Literal} ${AWS::Region}", {"Own": "x"}]},
        },
    },
}


def test_given_refs_getatts_subs_and_depends_on_then_each_resource_depends_on_what_it_names() -> None:
    assert dependencies(RESOURCES) == {
        "Bus": set(),
        "Dlq": set(),
        "Queue": {"Dlq"},
        "Rule": {"Bus", "Dlq", "Queue"},
        "Machine": {"Queue"},  # not its own variable, the escaped literal, nor a pseudo parameter
    }
    order = creation_order(RESOURCES)
    assert order.index("Dlq") < order.index("Queue") < order.index("Rule") and order.index("Bus") < order.index("Rule")


def test_given_a_name_the_template_does_not_define_then_it_is_refused_before_anything_is_made() -> None:
    with pytest.raises(ValidationError, match=r"Unresolved resource dependencies \[Missing\]"):
        check_template({"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"X": {"Ref": "Missing"}}}}})
    cycle = {"A": {"Type": "T", "DependsOn": "B"}, "B": {"Type": "T", "DependsOn": "A"}}
    with pytest.raises(ValidationError, match="Circular dependency between resources"):
        check_template({"Resources": cycle})
    check_template(
        {
            "Parameters": {"Size": {"Type": "Number"}},
            "Resources": {"Q": {"Type": "T", "Properties": {"N": {"Ref": "Size"}}}},
        }
    )


def test_given_a_property_the_fill_does_not_apply_then_the_resource_fails_naming_it() -> None:
    with pytest.raises(FillError, match="AWS::DynamoDB::Table property StreamSpecification is not applied"):
        TableFill.checked({"Properties": {"KeySchema": [], "StreamSpecification": {}}})
    with pytest.raises(FillError, match="required property AttributeDefinitions, BillingMode is missing"):
        TableFill.checked({"Properties": {"KeySchema": []}})


def test_given_a_custom_named_resource_that_needs_replacing_then_the_update_fails_as_on_aws() -> None:
    props = {"TableName": "orders", "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}]}
    props |= {"AttributeDefinitions": [], "BillingMode": "PAY_PER_REQUEST"}
    table = Filled(TableFill, Where("123456789012", "us-east-1"), "orders", props)
    new_key = {**props, "KeySchema": [{"AttributeName": "b", "KeyType": "HASH"}]}
    with pytest.raises(
        FillError, match=r"custom-named resource requires replacing \(KeySchema changed\)\. Rename orders"
    ):
        TableFill.update_from_cloudformation_json(
            table, "generated", {"Properties": new_key}, "123456789012", "us-east-1"
        )


def test_given_the_fills_installed_when_undone_then_moto_cloudformation_is_its_own_again() -> None:
    moto_own = (parsing.resource_class_from_type, parsing.parse_and_create_resource, ResourceMap.update, Stack.delete)
    with Patches() as patches:
        install(patches)
        assert parsing.resource_class_from_type("AWS::SQS::Queue") is FILLS["AWS::SQS::Queue"]
        assert parsing.resource_class_from_type("AWS::Pipes::Pipe").cloudformation_type() == "AWS::Pipes::Pipe"
    assert (
        parsing.resource_class_from_type,
        parsing.parse_and_create_resource,
        ResourceMap.update,
        Stack.delete,
    ) == moto_own
