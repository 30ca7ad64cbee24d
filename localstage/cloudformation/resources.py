"""moto's ``ResourceMap.update`` and ``delete`` as CloudFormation runs them.

An update adds and changes resources in dependency order (a resource whose ``Ref`` now resolves
differently counts as changed), then deletes what was replaced or removed; a failure rolls the whole
update back. A delete goes dependents first; a resource that cannot go keeps what it depends on, and
the stack ends ``DELETE_FAILED`` naming it. moto 5.2.5's versions delete removed resources first,
retry failures four times, drop a resource whose model has no update, and delete in no order.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.models import Stack
from moto.cloudformation.parsing import OutputMap, ResourceMap

from localstage.cloudformation.events import (
    DeletionFailed,
    ResourceFailed,
    UpdateRolledBack,
    current_stack,
    event,
    failed,
)
from localstage.cloudformation.graph import check_template, creation_order, depended_on, dependencies
from localstage.cloudformation.model import Filled, FillError

Json = dict[str, Any]


def _delete_resource(resources: ResourceMap, logical_id: str, resource: Filled) -> None:
    try:
        resource.delete(resources._account_id, resources._region_name)
    except Exception as exc:  # any failure of the service is this resource's DELETE_FAILED reason
        raise failed(logical_id, resource.cf_resource_type, exc, "DELETE_FAILED") from exc
    event(logical_id, resource.cf_resource_type, resource.physical_resource_id, "DELETE_COMPLETE")


def _changed(resources: ResourceMap, logical_id: str, current: Any) -> bool:
    """Whether the resource's properties, resolved now, differ from those it has (a Ref may have moved)."""
    resource_json = resources._resource_json_map[logical_id]
    if resource_json["Type"] != current.cf_resource_type:
        raise failed(
            logical_id,
            current.cf_resource_type,
            FillError(
                f"Update of resource type is not permitted ({current.cf_resource_type} -> {resource_json['Type']})"
            ),
            "UPDATE_FAILED",
        )
    try:
        resolved = parsing.clean_json(resource_json.get("Properties") or {}, resources)
    except ResourceFailed:  # a resource it names failed to be created, and said so
        raise
    except Exception as exc:  # an attribute it asks for does not exist: this resource's failure, rolled back
        raise failed(logical_id, resource_json["Type"], exc, "UPDATE_FAILED") from exc
    return bool(resolved != current.properties)


@dataclass
class _Saved:
    """What a resource map was before an update, to roll back to."""

    template: Json
    resources: Json
    parameters: Json

    @classmethod
    def of(cls, resources: ResourceMap) -> _Saved:
        return cls(resources._template, resources._resource_json_map, resources.input_parameters)

    def restore(self, resources: ResourceMap) -> None:
        resources._template = self.template
        resources.input_parameters = self.parameters
        resources.load_mapping()
        resources.load_parameters()
        resources.load_conditions()
        resources._resource_json_map = self.resources


@dataclass
class _Progress:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    replaced: list[tuple[str, Filled]] = field(default_factory=list)  # logical id, the resource replaced
    attempted: str | None = None  # the resource being updated when the update failed


def update_resources(resources: ResourceMap, template: Json, parameters: Json | None = None) -> None:
    """moto's ``ResourceMap.update``, as CloudFormation orders it: add and change in dependency order,
    then delete what was replaced or removed; a failure rolls everything back."""
    check_template(template)
    saved = _Saved.of(resources)
    order = creation_order(template["Resources"])
    resources._template = template
    if parameters:
        resources.input_parameters = parameters
    try:
        resources.load_mapping()
        resources.load_parameters()
        resources.load_conditions()
    except Exception:  # a template error: nothing changed yet, put the map back as it was and say so
        saved.restore(resources)
        raise
    resources._resource_json_map = template["Resources"]
    progress = _Progress()
    try:
        _apply(resources, order, progress)
    except ResourceFailed as failure:
        stack = current_stack()
        if stack is not None:  # the stack's rollback starts before its resources' rollback events
            stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
            reason = f"The following resource(s) failed to update: [{failure.logical_id}]. "
            stack._add_stack_event(stack.status, resource_status_reason=reason)
        raise UpdateRolledBack(failure, _roll_back(resources, saved, progress)) from failure
    _clean_up(resources, saved, progress)


def _apply(resources: ResourceMap, order: list[str], progress: _Progress) -> None:
    for logical_id in order:
        current = resources._parsed_resources.get(logical_id)
        if current is None:
            if resources[logical_id] is not None:  # created now (its condition may leave it out)
                progress.created.append(logical_id)
            continue
        if not _changed(resources, logical_id, current):
            continue
        progress.attempted = logical_id
        new = parsing.parse_and_update_resource(
            logical_id,
            resources._resource_json_map[logical_id],
            resources,
            account_id=resources._account_id,
            region_name=resources._region_name,
        )
        progress.attempted = None
        resources._parsed_resources[logical_id] = new
        if new is current:
            progress.updated.append(logical_id)
        else:
            progress.replaced.append((logical_id, current))


def _roll_back(resources: ResourceMap, saved: _Saved, progress: _Progress) -> ResourceFailed | None:
    """Undo an update newest first; the first failure of the rollback itself is returned."""
    saved.restore(resources)
    try:
        if progress.attempted is not None:  # it may have applied part of its change before failing
            current = resources._parsed_resources[progress.attempted]
            current.fill.restore(current)
        for logical_id, old in reversed(progress.replaced):
            new = resources._parsed_resources[logical_id]
            resources._parsed_resources[logical_id] = old
            _delete_resource(resources, logical_id, new)
        for logical_id in reversed(progress.updated):
            resources._parsed_resources[logical_id] = parsing.parse_and_update_resource(
                logical_id,
                saved.resources[logical_id],
                resources,
                account_id=resources._account_id,
                region_name=resources._region_name,
            )
        for logical_id in reversed(progress.created):
            _delete_resource(resources, logical_id, resources._parsed_resources.pop(logical_id))
    except ResourceFailed as failure:
        return failure
    except Exception as exc:  # restoring the attempted resource: the service's refusal is the reason
        assert progress.attempted is not None
        return failed(progress.attempted, saved.resources[progress.attempted]["Type"], exc, "UPDATE_FAILED")
    return None


def _clean_up(resources: ResourceMap, saved: _Saved, progress: _Progress) -> None:
    """After a successful update: replaced and removed resources go. As on AWS, one that cannot be
    deleted is reported (DELETE_FAILED) and left behind, and the update still completes."""
    for logical_id, old in progress.replaced:
        with contextlib.suppress(ResourceFailed):  # reported by its event; AWS completes the update
            _delete_resource(resources, logical_id, old)
    for logical_id in reversed(creation_order(saved.resources)):
        if logical_id in resources._resource_json_map:
            continue
        resource = resources._parsed_resources.pop(logical_id, None)
        if resource is None:
            continue
        if saved.resources[logical_id].get("DeletionPolicy") == "Retain":
            event(logical_id, resource.cf_resource_type, resource.physical_resource_id, "DELETE_SKIPPED")
            continue
        with contextlib.suppress(ResourceFailed):  # reported by its event, as above
            _delete_resource(resources, logical_id, resource)


def delete_resources(resources: ResourceMap) -> None:
    """moto's ``ResourceMap.delete``, dependents first; what a failed resource needs is kept for it."""
    templates = resources._resource_json_map
    graph = dependencies(templates)
    failures: list[ResourceFailed] = []
    kept: set[str] = set()
    for logical_id in reversed(creation_order(templates)):
        resource = resources._parsed_resources.get(logical_id)
        if resource is None or logical_id in kept:
            continue
        if templates[logical_id].get("DeletionPolicy") == "Retain":
            event(logical_id, resource.cf_resource_type, resource.physical_resource_id, "DELETE_SKIPPED")
            resources._parsed_resources.pop(logical_id)
            continue
        try:
            _delete_resource(resources, logical_id, resource)
        except ResourceFailed as failure:
            failures.append(failure)
            kept |= depended_on(graph, logical_id)
            continue
        resources._parsed_resources.pop(logical_id)
    if failures:
        raise DeletionFailed(failures)


def close(stack: Stack) -> None:
    """A rolled-back or deleted stack has no resources or outputs left to evaluate (moto's lazy map
    would otherwise create its resources again when something reads its outputs)."""
    stack.resource_map._resource_json_map = {}
    stack.output_map = OutputMap(stack.resource_map, {"Outputs": {}}, stack.stack_id)
