"""The inventory's entries for the deploy path: CloudFormation and API Gateway's control plane.

Part of ``localstage.patch_inventory`` (kept apart to keep each module short): each entry is
``(owner, attribute, why, *proof tests)`` of a moto internal, as ``patch_inventory._moto`` takes them.
"""

from __future__ import annotations

_CFN = "tests/integration/test_localstage_cloudformation.py"
_APIGW = "tests/integration/test_localstage_apigateway.py"
_CFN_MODELS = "moto.cloudformation.models"
_CFN_RESPONSE = "moto.cloudformation.responses.CloudFormationResponse"

DEPLOY_ENTRIES: tuple[tuple[str, ...], ...] = (
    # -- CloudFormation as AWS deploys the stage's template (cloudformation/stack.py) --------------
    (
        "moto.cloudformation.parsing",
        "resource_class_from_type",
        "every resource type through one fill",
        f"{_CFN}::test_given_a_resource_type_without_a_fill_when_deploying_then_the_stack_rolls_back_naming_the_type",
    ),
    (
        "moto.cloudformation.parsing",
        "parse_and_create_resource",
        "CREATE_FAILED naming the resource",
        f"{_CFN}::test_given_a_property_no_fill_applies_when_deploying_then_the_resource_fails_naming_it",
    ),
    (
        "moto.cloudformation.parsing",
        "parse_and_update_resource",
        "UPDATE_FAILED instead of keeping the old resource",
        f"{_CFN}::test_given_an_update_that_fails_then_it_rolls_back_to_the_previous_state_and_the_stack_stays_usable",
    ),
    (
        "moto.cloudformation.parsing.ResourceMap",
        "update",
        "moto's version retries, swallows errors and mis-orders",
        f"{_CFN}::test_given_a_deployed_stage_when_updated_then_changes_apply_state_survives_and_destroy_removes_everything",
    ),
    (
        "moto.cloudformation.parsing.ResourceMap",
        "delete",
        "ordered deletes; a resource that fails to delete is reported, not swallowed",
        f"{_CFN}::test_given_a_bucket_with_objects_when_destroying_then_the_stack_stays_delete_failed_until_it_is_emptied",
    ),
    (
        f"{_CFN_MODELS}.Stack",
        "create_resources",
        "rollback on a failed creation",
        f"{_CFN}::test_given_a_resource_type_without_a_fill_when_deploying_then_the_stack_rolls_back_naming_the_type",
    ),
    (
        f"{_CFN_MODELS}.Stack",
        "update",
        "rollback on a failed update",
        f"{_CFN}::test_given_an_update_that_fails_then_it_rolls_back_to_the_previous_state_and_the_stack_stays_usable",
    ),
    *(
        (
            owner,
            name,
            "a deletion that fails leaves the stack DELETE_FAILED",
            f"{_CFN}::test_given_a_bucket_with_objects_when_destroying_then_the_stack_stays_delete_failed_until_it_is_emptied",
        )
        for owner, name in (
            (f"{_CFN_MODELS}.Stack", "delete"),
            (f"{_CFN_MODELS}.CloudFormationBackend", "delete_stack"),
        )
    ),
    (
        f"{_CFN_MODELS}.CloudFormationBackend",
        "create_stack",
        "the template is checked before anything is created",
        f"{_CFN}::test_given_a_reference_to_a_resource_the_template_lacks_then_creation_is_refused_before_anything_is_made",
    ),
    (
        _CFN_RESPONSE,
        "_validate_different_update",
        "no-op updates refused as AWS compares them",
        f"{_CFN}::test_given_a_parameter_when_deploying_then_it_reaches_the_outputs_and_only_a_changed_one_updates",
    ),
    (
        _CFN_RESPONSE,
        "create_stack",
        "capabilities and the 51,200-byte template body checked as AWS does",
        f"{_CFN}::test_given_a_named_role_when_creating_without_acknowledging_named_iam_then_aws_refusal_is_given",
        f"{_CFN}::test_given_a_template_over_51200_bytes_inline_then_cloudformation_refuses_it_as_aws_does",
    ),
    (
        _CFN_RESPONSE,
        "update_stack",
        "capabilities and the 51,200-byte template body checked as AWS does",
        f"{_CFN}::test_given_an_update_adding_a_named_role_without_acknowledging_named_iam_then_aws_refusal_is_given",
    ),
    (
        _CFN_RESPONSE,
        "validate_template",
        "the 51,200-byte template body",
        f"{_CFN}::test_given_a_template_over_51200_bytes_inline_then_cloudformation_refuses_it_as_aws_does",
    ),
    # -- API Gateway's control plane (apigateway/importer.py, deployments.py) ----------------------
    (
        "moto.apigateway.models.APIGatewayBackend",
        "import_rest_api",
        "Swagger 2.0 imports",
        f"{_APIGW}::test_given_chalices_swagger_when_imported_then_api_gateway_holds_its_resources_methods_and_authorizer",
    ),
    (
        "moto.apigateway.models.APIGatewayBackend",
        "put_rest_api",
        "Swagger 2.0 merge puts",
        f"{_APIGW}::test_given_a_merge_put_then_the_documents_methods_join_the_apis_and_the_others_stay",
    ),
    (
        "moto.apigateway.models.RestAPI",
        "create_deployment",
        "a deployment snapshots what its stage serves",
        f"{_APIGW}::test_given_a_redeploy_with_fewer_routes_then_the_stage_serves_them_from_its_new_deployment_only",
    ),
    (
        "moto.apigateway.responses.APIGatewayResponse",
        "create_deployment",
        "a deployment's tracing setting",
        f"{_APIGW}::test_given_create_deployment_with_tracing_then_the_stage_traces_and_a_later_deployment_keeps_it",
    ),
)
