"""CloudFormation's stack semantics on moto's CloudFormation: failures fail, updates update, deletes delete.

moto 5.2.5 (moto/cloudformation/parsing.py, models.py) differs from AWS where a deploy depends on it:

- a type it has no model for is skipped with a warning, and the stack says ``CREATE_COMPLETE``;
- a resource that raises leaves the stack ``CREATE_IN_PROGRESS`` and answers ``CreateStack`` with a 500:
  no ``CREATE_FAILED``, no rollback, nothing for ``describe_stack_events`` to name;
- ``UpdateStack`` with no parameters never answers "No updates are to be performed";
- an update deletes removed resources first, retries failures four times, and swallows a model without
  an update (the resource is dropped from the stack but left in the account); it updates only
  resources whose template text changed, not those whose ``Ref`` now resolves differently;
- a delete runs in no order and, when one resource cannot go, the stack vanishes from ``describe_stacks``
  anyway; a deleted or rolled-back stack re-creates its resources when its outputs are read again
  (its resource map is lazy);
- ``Capabilities`` are ignored, and a template naming an undefined resource fails half-way.

Here, as on AWS: unsupported types and failed resources give ``CREATE_FAILED`` events with a reason and
a rollback (``ROLLBACK_COMPLETE``); an update applies additions and changes in dependency order, then
deletes what was replaced or removed, and on failure rolls back (``UPDATE_ROLLBACK_COMPLETE``); a delete
goes dependents first and a resource that cannot be deleted leaves the stack ``DELETE_FAILED``; IAM
resources need ``CAPABILITY_IAM`` / ``CAPABILITY_NAMED_IAM``; an unresolvable template is refused up front.
The update and delete themselves are in ``resources``; the events in ``events`` (this package).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.exceptions import CloudFormationError, ValidationError
from moto.cloudformation.models import CloudFormationBackend, Stack
from moto.cloudformation.parsing import ResourceMap
from moto.cloudformation.responses import CloudFormationResponse

from localstage.cloudformation.events import (
    DeletionFailed,
    ResourceFailed,
    UpdateRolledBack,
    describe,
    event,
    failed,
    operating_on,
)
from localstage.cloudformation.graph import check_template
from localstage.cloudformation.model import FillError, ResourceFill, UnsupportedResource
from localstage.cloudformation.resources import close, delete_resources, update_resources
from localstage.patches import Patches

Json = dict[str, Any]


def _resource_class(fills: Mapping[str, type[ResourceFill]]) -> Callable[[Any], Any]:
    def wrap(original: Any) -> Any:
        def resource_class_from_type(resource_type: str) -> type[ResourceFill]:
            return fills.get(resource_type) or UnsupportedResource.for_type(resource_type)

        return resource_class_from_type

    return wrap


def _create_with_events(original: Any) -> Any:
    def parse_and_create_resource(
        logical_id: str, resource_json: Json, resources_map: ResourceMap, account_id: str, region_name: str
    ) -> Any:
        try:
            resource = original(logical_id, resource_json, resources_map, account_id, region_name)
        except ResourceFailed:  # a dependency failed, and said so
            raise
        except Exception as exc:  # whatever the service refused is this resource's CREATE_FAILED reason
            raise failed(logical_id, resource_json.get("Type", ""), exc, "CREATE_FAILED") from exc
        if resource is not None:
            event(logical_id, resource_json["Type"], resource.physical_resource_id, "CREATE_COMPLETE")
        return resource

    return parse_and_create_resource


def _update_with_events(original: Any) -> Any:
    def parse_and_update_resource(
        logical_id: str, resource_json: Json, resources_map: ResourceMap, account_id: str, region_name: str
    ) -> Any:
        try:
            resource = original(logical_id, resource_json, resources_map, account_id, region_name)
        except ResourceFailed:
            raise
        except Exception as exc:  # as for creation: the reason of this resource's UPDATE_FAILED
            raise failed(logical_id, resource_json.get("Type", ""), exc, "UPDATE_FAILED") from exc
        if resource is None:  # moto's answer for a model without an update: never silently keep the old one
            missing = FillError(f"{resource_json.get('Type')} cannot be updated by the local stage's CloudFormation")
            raise failed(logical_id, resource_json.get("Type", ""), missing, "UPDATE_FAILED")
        event(logical_id, resource_json["Type"], resource.physical_resource_id, "UPDATE_COMPLETE")
        return resource

    return parse_and_update_resource


def _create_or_roll_back(original: Any) -> Any:
    def create_resources(self: Stack) -> None:
        with operating_on(self):
            try:
                original(self)
            except ResourceFailed as failure:
                _roll_back_creation(self, f"The following resource(s) failed to create: [{failure.logical_id}]. ")
            except Exception as exc:  # a template error outside any one resource: the stack's own failure
                _roll_back_creation(self, describe(exc))

    return create_resources


def _roll_back_creation(stack: Stack, reason: str) -> None:
    stack.status = "ROLLBACK_IN_PROGRESS"
    _reason(stack, reason + "Rollback requested by user.")
    try:
        delete_resources(stack.resource_map)
    except DeletionFailed as deletion:
        stack.status = "ROLLBACK_FAILED"
        names = ", ".join(f.logical_id for f in deletion.failures)
        _reason(stack, f"The following resource(s) failed to delete: [{names}]. ")
        return
    close(stack)
    stack.status = "ROLLBACK_COMPLETE"
    stack._add_stack_event("ROLLBACK_COMPLETE")


def _reason(stack: Stack, reason: str) -> None:
    """The stack's new status, with its reason, in describe_stacks and as a stack event."""
    # moto's serializer reads StackStatusReason from this attribute; moto itself never sets it.
    stack.stack_status_reason = reason  # type: ignore[attr-defined]
    stack._add_stack_event(stack.status, resource_status_reason=reason)


def _restore_template(stack: Stack, template: Any) -> None:
    # moto's Stack.update takes the new template before its resources change; put the old one back.
    stack.template = template
    stack._parse_template()
    stack.output_map = stack._create_output_map()


def _update_or_roll_back(original: Any) -> Any:
    def update(
        self: Stack, template: str, role_arn: str | None = None, parameters: Json | None = None, tags: Any = None
    ) -> None:
        check_template(Stack.parse_template(template))  # refused before the stack changes, as AWS refuses it
        previous = self.template
        with operating_on(self):
            try:
                original(self, template, role_arn=role_arn, parameters=parameters, tags=tags)
            except UpdateRolledBack as rolled_back:
                _restore_template(self, previous)
                self.status = (
                    "UPDATE_ROLLBACK_COMPLETE" if rolled_back.rollback_failure is None else "UPDATE_ROLLBACK_FAILED"
                )
                _reason(self, f"The following resource(s) failed to update: [{rolled_back.failure.logical_id}]. ")
            except Exception:  # refused before any resource changed (a missing parameter): the stack is as it was
                _restore_template(self, previous)
                raise

    return update


def _delete_or_fail(original: Any) -> Any:
    def delete(self: Stack) -> None:
        with operating_on(self):
            try:
                original(self)
            except DeletionFailed as deletion:
                names = ", ".join(f.logical_id for f in deletion.failures)
                self.status = "DELETE_FAILED"
                _reason(self, f"The following resource(s) failed to delete: [{names}]. ")
                return
        close(self)

    return delete


def _checked_before_creation(original: Any) -> Any:
    def create_stack(self: CloudFormationBackend, name: str, template: str, *args: Any, **kwargs: Any) -> Stack:
        check_template(Stack.parse_template(template))
        return original(self, name, template, *args, **kwargs)

    return create_stack


def _keep_failed_deletions(original: Any) -> Any:
    def delete_stack(self: CloudFormationBackend, name_or_stack_id: str) -> None:
        original(self, name_or_stack_id)
        # moto moves the stack to deleted_stacks whatever happened; on AWS a DELETE_FAILED stack stays.
        for stack_id, stack in list(self.deleted_stacks.items()):
            if stack.status == "DELETE_FAILED":
                self.stacks[stack_id] = self.deleted_stacks.pop(stack_id)

    return delete_stack


def _effective(incoming: list[Json] | None, template: Json, old_stack: Stack) -> dict[str, str]:
    """Each parameter's value for this update, as CloudFormation settles it."""
    given = {p["ParameterKey"]: p for p in incoming or []}
    values = {}
    for name, declared in template.get("Parameters", {}).items():
        passed = given.get(name)
        if passed is not None and passed.get("UsePreviousValue"):
            values[name] = str(old_stack.stack_parameters.get(name))
        elif passed is not None:
            values[name] = str(passed.get("ParameterValue"))
        else:
            values[name] = str(declared.get("Default"))
    return values


def _no_updates_without_parameters(original: Any) -> Any:
    def _validate_different_update(
        self: CloudFormationResponse, incoming_params: list[Json] | None, stack_body: str, old_stack: Stack
    ) -> None:
        original(self, incoming_params, stack_body, old_stack)
        # moto compares only when parameters are passed; AWS compares the template and the parameters'
        # effective values (given, else previous when asked, else the template's default) whatever was passed.
        settled = old_stack.status in ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE")
        if not (settled and stack_body):
            return
        template = Stack.parse_template(stack_body)
        if template == old_stack.template_dict and _effective(incoming_params, template, old_stack) == {
            k: str(v) for k, v in old_stack.stack_parameters.items()
        }:
            raise ValidationError(old_stack.name, message="No updates are to be performed.")

    return _validate_different_update


IAM_TYPES = {  # IAM resource types -> the property that names one (which takes CAPABILITY_NAMED_IAM)
    "AWS::IAM::AccessKey": "",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::Policy": "",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::UserToGroupAddition": "",
}


class InsufficientCapabilitiesError(CloudFormationError):
    code = "InsufficientCapabilitiesException"


def required_capability(template: Json) -> str | None:
    """What AWS asks a template with IAM resources to acknowledge: CAPABILITY_NAMED_IAM for a custom name."""
    iam = [r for r in (template.get("Resources") or {}).values() if r.get("Type") in IAM_TYPES]
    if any(IAM_TYPES[r["Type"]] in (r.get("Properties") or {}) for r in iam if IAM_TYPES[r["Type"]]):
        return "CAPABILITY_NAMED_IAM"
    return "CAPABILITY_IAM" if iam else None


def _capabilities_checked(original: Any) -> Any:
    """moto ignores Capabilities; AWS refuses a stack with IAM resources unless they are acknowledged."""

    def action(self: CloudFormationResponse) -> Any:
        body = self._get_param("TemplateBody")
        if not body and self._get_param("TemplateURL"):
            body = self._get_stack_from_s3_url(self._get_param("TemplateURL"))
        if not body and self._get_bool_param("UsePreviousTemplate", False):
            body = self.cloudformation_backend.get_stack(self._get_param("StackName")).template
        needed = required_capability(Stack.parse_template(body)) if body else None
        given = set(self._get_param("Capabilities", []))
        if needed and needed not in given and not (needed == "CAPABILITY_IAM" and "CAPABILITY_NAMED_IAM" in given):
            raise InsufficientCapabilitiesError(f"Requires capabilities : [{needed}]")
        return original(self)

    return action


TEMPLATE_BODY_LIMIT = 51_200  # bytes CloudFormation takes inline; larger templates go through S3 (TemplateURL)


def _template_size_checked(original: Any) -> Any:
    """moto takes any TemplateBody; CloudFormation refuses one over 51,200 bytes (use TemplateURL)."""

    def action(self: CloudFormationResponse) -> Any:
        body = self._get_param("TemplateBody")
        if body and len(body.encode()) > TEMPLATE_BODY_LIMIT:
            raise ValidationError(
                message="1 validation error detected: Value at 'templateBody' failed to satisfy constraint: "
                f"Member must have length less than or equal to {TEMPLATE_BODY_LIMIT}"
            )
        return original(self)

    return action


def _replaced(replacement: Callable[..., Any]) -> Callable[[Any], Any]:
    """A wrap that replaces moto's method outright: its version retries, swallows and mis-orders (above)."""
    return lambda original: replacement


def install(patches: Patches, fills: Mapping[str, type[ResourceFill]]) -> None:
    """Route every resource type through ``fills`` and give stacks CloudFormation's failure semantics."""
    patches.wrap("moto", parsing, "resource_class_from_type", _resource_class(fills))
    patches.wrap("moto", parsing, "parse_and_create_resource", _create_with_events)
    patches.wrap("moto", parsing, "parse_and_update_resource", _update_with_events)
    patches.wrap("moto", ResourceMap, "update", _replaced(update_resources))
    patches.wrap("moto", ResourceMap, "delete", _replaced(delete_resources))
    patches.wrap("moto", Stack, "create_resources", _create_or_roll_back)
    patches.wrap("moto", Stack, "update", _update_or_roll_back)
    patches.wrap("moto", Stack, "delete", _delete_or_fail)
    patches.wrap("moto", CloudFormationBackend, "create_stack", _checked_before_creation)
    patches.wrap("moto", CloudFormationBackend, "delete_stack", _keep_failed_deletions)
    patches.wrap("moto", CloudFormationResponse, "_validate_different_update", _no_updates_without_parameters)
    patches.wrap("moto", CloudFormationResponse, "create_stack", _capabilities_checked)
    patches.wrap("moto", CloudFormationResponse, "update_stack", _capabilities_checked)
    for action in ("create_stack", "update_stack", "validate_template"):
        patches.wrap("moto", CloudFormationResponse, action, _template_size_checked)
