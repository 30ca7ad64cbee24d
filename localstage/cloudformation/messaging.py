"""Fills for the stage's messaging: SQS queues and queue policies, SNS topics, the event bus and its rules.

What moto 5.2.5 does with them (moto/sqs, sns, events models):

- ``AWS::SQS::QueuePolicy`` has no model: skipped, so EventBridge is never allowed to send to the queue;
- ``AWS::SQS::Queue``'s update applies only ``VisibilityTimeout`` and ``ReceiveMessageWaitTimeSeconds``;
  a create with an existing name adopts that queue;
- ``AWS::SNS::Topic``'s update deletes the topic and creates it again, dropping every subscription
  (``chalice deploy`` subscribes the app's handlers), and ``Fn::GetAtt TopicArn`` is missing;
- ``AWS::Events::EventBus`` has no ``physical_resource_id``, so ``{"Ref": "EventBus"}`` resolves to the
  model object: a rule's ``EventBusName`` then fails with an AttributeError (a 500 on ``CreateStack``);
  its update deletes the bus, and every rule on it;
- ``AWS::Events::Rule``'s update deletes the rule and makes it again;
- ``AWS::SNS::Subscription`` has no model: the stage's alert subscribers would be skipped.
"""

from __future__ import annotations

import json
from typing import Any

from moto.events.models import EventsBackend, events_backends
from moto.sns.models import SNSBackend, sns_backends
from moto.sqs.models import MAXIMUM_MESSAGE_LENGTH, SQSBackend, sqs_backends

from localstage.cloudformation.model import Filled, FillError, Json, ResourceFill, Where, as_text

# What a queue goes back to when the template stops setting an attribute (the SQS defaults).
QUEUE_DEFAULTS: dict[str, Any] = {
    "DelaySeconds": 0,
    "MaximumMessageSize": MAXIMUM_MESSAGE_LENGTH,
    "MessageRetentionPeriod": 345_600,
    "ReceiveMessageWaitTimeSeconds": 0,
    "RedrivePolicy": "",
    "SqsManagedSseEnabled": True,
    "VisibilityTimeout": 30,
    "ContentBasedDeduplication": False,
}


class QueueFill(ResourceFill):
    TYPE = "AWS::SQS::Queue"
    NAME_PROPERTY = "QueueName"
    PROPERTIES = frozenset(QUEUE_DEFAULTS) | {"QueueName", "FifoQueue"}
    REPLACE_ON = frozenset({"QueueName", "FifoQueue"})
    ATTRIBUTES = frozenset({"Arn", "QueueName", "QueueUrl"})

    @classmethod
    def create(cls, where: Where, name: str, props: Json) -> Filled:
        backend = _sqs(where)
        url = f"https://sqs.{where.region_name}.amazonaws.com/{where.account_id}/{name}"  # what Ref gives on AWS
        if name in backend.queues:
            raise cls.already_exists(url)
        attributes = _queue_attributes(props, set(props) - {"QueueName"})
        queue = backend.create_queue(name, tags=None, **attributes)
        return cls.made(where, url, props, Arn=queue.queue_arn, QueueName=name, QueueUrl=url)

    @classmethod
    def update(cls, resource: Filled, props: Json, changed: frozenset[str]) -> None:
        backend = _sqs(resource.where)
        queue = backend.get_queue(resource.attributes["QueueName"])
        attributes = _queue_attributes(props, changed)
        # moto's _set_attributes resets the policy to empty unless it is passed along: keep the QueuePolicy's.
        attributes["Policy"] = queue.policy
        backend.set_queue_attributes(queue.name, attributes)

    @classmethod
    def delete(cls, resource: Filled) -> None:
        backend = _sqs(resource.where)
        if resource.attributes["QueueName"] in backend.queues:
            backend.delete_queue(resource.attributes["QueueName"])


def _sqs(where: Where) -> SQSBackend:
    return sqs_backends[where.account_id][where.region_name]


def _queue_attributes(props: Json, keys: set[str] | frozenset[str]) -> dict[str, str]:
    """Queue attributes as the SQS API takes them (strings; a policy as JSON text)."""
    attributes: dict[str, str] = {}
    for key in keys & set(QUEUE_DEFAULTS):
        value = props.get(key, QUEUE_DEFAULTS[key])
        if key == "RedrivePolicy":
            attributes[key] = as_text(value) if value else ""
        elif isinstance(value, bool):
            attributes[key] = str(value).lower()
        else:
            attributes[key] = str(value)
    return attributes


class QueuePolicyFill(ResourceFill):
    TYPE = "AWS::SQS::QueuePolicy"
    PROPERTIES = frozenset({"PolicyDocument", "Queues"})
    REQUIRED = PROPERTIES
    ATTRIBUTES = frozenset({"Id"})

    @classmethod
    def create(cls, where: Where, name: str, props: Json) -> Filled:
        _set_policy(_sqs(where), props["Queues"], _policy(props))
        return cls.made(where, name, props, Id=name)

    @classmethod
    def update(cls, resource: Filled, props: Json, changed: frozenset[str]) -> None:
        backend = _sqs(resource.where)
        dropped = [url for url in resource.properties["Queues"] if url not in props["Queues"]]
        _set_policy(backend, dropped, "", missing_ok=True)
        _set_policy(backend, props["Queues"], _policy(props))

    @classmethod
    def delete(cls, resource: Filled) -> None:
        _set_policy(_sqs(resource.where), resource.properties["Queues"], "", missing_ok=True)


def _policy(props: Json) -> str:
    text = as_text(props["PolicyDocument"])
    json.loads(text)  # a malformed document fails here, naming the resource, not in SQS later
    return text


def _set_policy(backend: SQSBackend, urls: list[str], policy: str, missing_ok: bool = False) -> None:
    for url in urls:
        name = url.rstrip("/").rsplit("/", 1)[-1]
        if name not in backend.queues:
            if missing_ok:  # deleting the policy of a queue already gone
                continue
            raise FillError(f"AWS::SQS::QueuePolicy: queue {url} does not exist")
        backend.set_queue_attributes(name, {"Policy": policy})  # "" restores the queue's empty policy


class TopicFill(ResourceFill):
    TYPE = "AWS::SNS::Topic"
    NAME_PROPERTY = "TopicName"
    PROPERTIES = frozenset({"TopicName", "DisplayName"})
    REPLACE_ON = frozenset({"TopicName"})
    ATTRIBUTES = frozenset({"TopicArn", "TopicName"})

    @classmethod
    def create(cls, where: Where, name: str, props: Json) -> Filled:
        backend = _sns(where)
        arn = f"arn:{where.partition}:sns:{where.region_name}:{where.account_id}:{name}"
        if arn in backend.topics:  # moto's create_topic would hand back the existing one
            raise cls.already_exists(arn)
        topic = backend.create_topic(name, {"DisplayName": props["DisplayName"]} if "DisplayName" in props else {})
        return cls.made(where, topic.arn, props, TopicArn=topic.arn, TopicName=name)

    @classmethod
    def update(cls, resource: Filled, props: Json, changed: frozenset[str]) -> None:
        if "DisplayName" in changed:  # in place, so the topic keeps its subscriptions
            _sns(resource.where).set_topic_attribute(
                resource.physical_resource_id, "display_name", props.get("DisplayName", "")
            )

    @classmethod
    def delete(cls, resource: Filled) -> None:
        _sns(resource.where).delete_topic(resource.physical_resource_id)  # absent counts as deleted


class SubscriptionFill(ResourceFill):
    """``AWS::SNS::Subscription``: the stage's alert subscribers. moto 5.2.5 has no model for it."""

    TYPE = "AWS::SNS::Subscription"
    PROPERTIES = frozenset({"TopicArn", "Protocol", "Endpoint"})
    REQUIRED = PROPERTIES
    REPLACE_ON = PROPERTIES  # AWS replaces a subscription whose topic, protocol or endpoint changes

    @classmethod
    def create(cls, where: Where, name: str, props: Json) -> Filled:
        subscription = _sns(where).subscribe(props["TopicArn"], props["Endpoint"], props["Protocol"])
        return cls.made(where, subscription.arn, props)

    @classmethod
    def update(cls, resource: Filled, props: Json, changed: frozenset[str]) -> None:
        return  # every property replaces

    @classmethod
    def delete(cls, resource: Filled) -> None:
        _sns(resource.where).unsubscribe(resource.physical_resource_id)  # absent counts as deleted


def _sns(where: Where) -> SNSBackend:
    return sns_backends[where.account_id][where.region_name]


class EventBusFill(ResourceFill):
    TYPE = "AWS::Events::EventBus"
    NAME_PROPERTY = "Name"
    PROPERTIES = frozenset({"Name", "Description"})
    REQUIRED = frozenset({"Name"})
    REPLACE_ON = frozenset({"Name"})
    ATTRIBUTES = frozenset({"Arn", "Name"})

    @classmethod
    def create(cls, where: Where, name: str, props: Json) -> Filled:
        backend = _events(where)
        if name in backend.event_buses:
            raise cls.already_exists(name)
        bus = backend.create_event_bus(name, description=props.get("Description"))
        return cls.made(where, name, props, Arn=bus.arn, Name=name)  # Ref is the name, as on AWS

    @classmethod
    def update(cls, resource: Filled, props: Json, changed: frozenset[str]) -> None:
        # moto has no UpdateEventBus: the description is the bus model's attribute.
        _events(resource.where).event_buses[resource.physical_resource_id].description = props.get("Description")

    @classmethod
    def delete(cls, resource: Filled) -> None:
        _events(resource.where).delete_event_bus(resource.physical_resource_id)  # absent counts as deleted


def _events(where: Where) -> EventsBackend:
    return events_backends[where.account_id][where.region_name]


TARGET_KEYS = frozenset(
    {
        "Id",
        "Arn",
        "RoleArn",
        "Input",
        "InputPath",
        "InputTransformer",
        "DeadLetterConfig",
        "RetryPolicy",
        "SqsParameters",
    }
)


class RuleFill(ResourceFill):
    TYPE = "AWS::Events::Rule"
    NAME_PROPERTY = "Name"
    PROPERTIES = frozenset(
        {"Name", "Description", "EventBusName", "EventPattern", "ScheduleExpression", "State", "Targets", "RoleArn"}
    )
    REPLACE_ON = frozenset({"Name", "EventBusName"})
    ATTRIBUTES = frozenset({"Arn"})

    @classmethod
    def create(cls, where: Where, name: str, props: Json) -> Filled:
        backend = _events(where)
        bus = backend._get_event_bus(props.get("EventBusName", "default"))  # fails naming a missing bus
        if name in bus.rules:
            raise cls.already_exists(name)
        rule = _put_rule(backend, name, props)
        try:
            _put_targets(backend, name, props, previous=[])
        except Exception:  # nothing half made
            backend.delete_rule(name, bus.name)
            raise
        return cls.made(where, name, props, Arn=rule.arn)  # Ref: the rule's name

    @classmethod
    def update(cls, resource: Filled, props: Json, changed: frozenset[str]) -> None:
        backend = _events(resource.where)
        _put_rule(backend, resource.physical_resource_id, props)  # PutRule keeps the targets
        _put_targets(backend, resource.physical_resource_id, props, previous=resource.properties.get("Targets", []))

    @classmethod
    def delete(cls, resource: Filled) -> None:
        backend = _events(resource.where)
        bus_name = backend._normalize_event_bus_arn(resource.properties.get("EventBusName", "default"))
        bus = backend.event_buses.get(bus_name)
        rule = bus.rules.get(resource.physical_resource_id) if bus else None
        if rule is None:
            return
        backend.remove_targets(rule.name, bus_name, [target["Id"] for target in rule.targets])
        backend.delete_rule(rule.name, bus_name)


def _put_rule(backend: EventsBackend, name: str, props: Json) -> Any:
    pattern = props.get("EventPattern")
    return backend.put_rule(
        name,
        description=props.get("Description"),
        event_bus_arn=props.get("EventBusName", "default"),
        event_pattern=as_text(pattern) if pattern is not None else None,
        role_arn=props.get("RoleArn"),
        scheduled_expression=props.get("ScheduleExpression"),
        state=props.get("State", "ENABLED"),
    )


def _put_targets(backend: EventsBackend, name: str, props: Json, previous: list[Json]) -> None:
    targets = props.get("Targets", [])
    for target in targets:
        unknown = set(target) - TARGET_KEYS
        if unknown:
            raise FillError(f"AWS::Events::Rule target property {', '.join(sorted(unknown))} is not applied")
    bus = props.get("EventBusName", "default")
    dropped = [t["Id"] for t in previous if t["Id"] not in {target["Id"] for target in targets}]
    if dropped:
        backend.remove_targets(name, bus, dropped)
    if targets:
        backend.put_targets(name, bus, [dict(target) for target in targets])
