"""The shape every CloudFormation fill has: one resource type, the properties it applies, its Ref and GetAtt.

moto's CloudFormation calls a model class for each resource (``create_from_cloudformation_json``,
``update_from_cloudformation_json``, ``delete_from_cloudformation_json``) and reads ``Ref`` and
``Fn::GetAtt`` from what ``create`` returned. ``ResourceFill`` is that class for the local stage. It is
deliberately not a subclass of moto's ``CloudFormationModel``: moto finds its models through
``CloudFormationModel.__subclasses__()``, so a subclass would be live as soon as this module is imported,
with nothing to undo. Fills are registered only by ``localstage.cloudformation.install``.

What a fill promises, and moto's own models do not:

- every property it is given is applied, or the resource fails naming it (``PROPERTIES``);
- a change to a property AWS replaces the resource for (``REPLACE_ON``) replaces it, and the old one is
  deleted only once the whole update succeeded (by ``localstage.cloudformation.resources``); a custom-named resource
  that needs replacing fails, as on AWS;
- a named resource that already exists makes the creation fail: a stack never adopts (and later
  deletes) something it did not create;
- ``Ref`` and each ``GetAtt`` attribute give what AWS gives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

Json = dict[str, Any]


class FillError(Exception):
    """A resource cannot be created, updated or deleted as the template asks; the message says why."""


@dataclass(frozen=True)
class Where:
    """The account and region a resource lives in (moto's backends are keyed by both)."""

    account_id: str
    region_name: str

    @property
    def partition(self) -> str:
        from moto.utilities.utils import get_partition

        return str(get_partition(self.region_name))


@dataclass(eq=False)
class Filled:
    """A resource a fill made: what moto's CloudFormation keeps per logical id.

    ``logical_resource_id`` and ``cf_resource_type`` are set by moto after ``create`` (parsing.py).
    """

    fill: type[ResourceFill]
    where: Where
    physical_resource_id: str
    properties: Json
    attributes: Json = field(default_factory=dict)
    logical_resource_id: str = ""
    cf_resource_type: str = ""

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name not in self.fill.ATTRIBUTES:
            # moto turns this one into AWS's "does not support attribute type ... in Fn::GetAtt".
            raise UnformattedGetAttTemplateException()
        if attribute_name not in self.attributes:  # e.g. a client's ClientSecret when it has none
            raise FillError(f"{self.fill.TYPE} {self.physical_resource_id} has no {attribute_name}")
        return self.attributes[attribute_name]

    def is_created(self) -> bool:
        return True

    def delete(self, account_id: str, region_name: str) -> None:
        self.fill.delete(self)


class ResourceFill:
    """One resource type as moto's CloudFormation calls it. Subclasses set the class variables and
    implement ``create``, ``update`` (in place) and ``delete``."""

    TYPE: ClassVar[str]
    NAME_PROPERTY: ClassVar[str] = ""  # the property naming the resource, "" if it has none
    PROPERTIES: ClassVar[frozenset[str]] = frozenset()  # every property the fill applies
    REQUIRED: ClassVar[frozenset[str]] = frozenset()
    REPLACE_ON: ClassVar[frozenset[str]] = frozenset()  # AWS's "Update requires: Replacement"
    ATTRIBUTES: ClassVar[frozenset[str]] = frozenset()  # Fn::GetAtt

    # -- what moto's CloudFormation calls (moto/cloudformation/parsing.py) -------------------

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME_PROPERTY

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Json, account_id: str, region_name: str, **kwargs: Any
    ) -> Filled:
        props = cls.checked(cloudformation_json)
        name = str(props.get(cls.NAME_PROPERTY, resource_name)) if cls.NAME_PROPERTY else resource_name
        return cls.create(Where(account_id, region_name), name, props)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Filled,
        new_resource_name: str,
        cloudformation_json: Json,
        account_id: str,
        region_name: str,
    ) -> Filled:
        props = cls.checked(cloudformation_json)
        old = original_resource.properties
        changed = frozenset(key for key in old.keys() | props.keys() if old.get(key) != props.get(key))
        if not changed & cls.REPLACE_ON:
            cls.update(original_resource, props, changed)
            original_resource.properties = props
            return original_resource
        name_kept = cls.NAME_PROPERTY in props and props[cls.NAME_PROPERTY] == old.get(cls.NAME_PROPERTY)
        if name_kept:
            raise FillError(
                f"CloudFormation cannot update a stack when a custom-named resource requires replacing "
                f"({', '.join(sorted(changed & cls.REPLACE_ON))} changed). Rename "
                f"{props[cls.NAME_PROPERTY]} and update the stack again."
            )
        # The new one is made now; cloudformation.resources deletes the old one once the update succeeded.
        name = str(props.get(cls.NAME_PROPERTY, new_resource_name)) if cls.NAME_PROPERTY else new_resource_name
        return cls.create(original_resource.where, name, props)

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Json, account_id: str, region_name: str
    ) -> None:
        # moto only falls back to this when a resource has no delete(); a Filled always has one, so
        # reaching it means moto's path changed: fail rather than leave the resource behind unsaid.
        raise FillError(f"{cls.TYPE} {resource_name}: deleted without its resource; cloudformation.resources deletes")

    # -- what each fill implements ------------------------------------------------------------

    @classmethod
    def create(cls, where: Where, name: str, props: Json) -> Filled:
        raise NotImplementedError

    @classmethod
    def update(cls, resource: Filled, props: Json, changed: frozenset[str]) -> None:
        """Apply ``changed`` (none of them in ``REPLACE_ON``) to ``resource`` in place."""
        raise NotImplementedError

    @classmethod
    def delete(cls, resource: Filled) -> None:
        raise NotImplementedError

    @classmethod
    def restore(cls, resource: Filled) -> None:
        """Put ``resource`` back as its recorded properties say, after an update of it failed part-way
        (the update's rollback). Every setting is applied again, so it must be safe to repeat."""
        cls.update(resource, resource.properties, cls.PROPERTIES - cls.REPLACE_ON)

    # -- helpers --------------------------------------------------------------------------------

    @classmethod
    def checked(cls, cloudformation_json: Json) -> Json:
        """The resource's properties, refused if it has one the fill would not apply or lacks a required one."""
        props = dict(cloudformation_json.get("Properties") or {})
        unknown = sorted(set(props) - cls.PROPERTIES)
        if unknown:
            raise FillError(
                f"{cls.TYPE} property {', '.join(unknown)} is not applied by the local stage's CloudFormation "
                f"(it applies {', '.join(sorted(cls.PROPERTIES))}); add it to the fill in localstage/cloudformation/"
            )
        missing = sorted(cls.REQUIRED - set(props))
        if missing:
            raise FillError(f"{cls.TYPE}: required property {', '.join(missing)} is missing")
        return props

    @classmethod
    def made(cls, where: Where, physical_id: str, props: Json, **attributes: Any) -> Filled:
        return Filled(cls, where, physical_id, props, attributes)

    @classmethod
    def already_exists(cls, identifier: str) -> FillError:
        # CloudFormation's own words when a named resource is taken.
        return FillError(f"Resource of type '{cls.TYPE}' with identifier '{identifier}' already exists.")


class UnsupportedResource(ResourceFill):
    """What a type without a fill resolves to: its creation fails naming the type, never a silent skip."""

    @classmethod
    def for_type(cls, resource_type: str) -> type[ResourceFill]:
        return type("Unsupported", (cls,), {"TYPE": resource_type})

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True  # let the creation say what is wrong, rather than a GetAtt in the outputs

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Json, account_id: str, region_name: str, **kwargs: Any
    ) -> Filled:
        raise FillError(
            f"resource type {cls.TYPE} is not supported by the local stage's CloudFormation "
            "(moto 5.2.5 with the fills in localstage/cloudformation.py)"
        )


def as_text(document: Any) -> str:
    """A policy or JSON document as the APIs take it: CloudFormation accepts an object or a string."""
    return document if isinstance(document, str) else json.dumps(document)


def flag(value: Any) -> bool:
    """A CloudFormation boolean: true, "true" or "True" (templates and their JSON round trips vary)."""
    return value is True or str(value).lower() == "true"
