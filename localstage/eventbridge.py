"""EventBridge rules with Lambda targets, and schedules, delivered to the stage's functions.

moto 5.2.5 matches events against rules (``Rule.send_to_targets``) and delivers
to log groups, archives, SQS and other buses, but raises ``NotImplementedError``
for a Lambda target, which fails the whole ``PutEvents``. ``install_events_hook``
wraps that one method (through ``localstage.patches``): for a rule's targets that are functions an emulator owns
it does what EventBridge does, an asynchronous invoke with the event
(``version``, ``id``, ``detail-type``, ``source``, ``account``, ``time`` in ISO
8601, ``region``, ``resources``, ``detail``), or with the target's ``Input``,
``InputPath`` or ``InputTransformer``; every other target stays moto's.

Also fixed on the way, as AWS behaves: a ``DISABLED`` rule delivers nothing, and
a schedule-only rule (no pattern) does not match ``PutEvents`` (moto's empty
pattern matches everything). With IAM enforced, a delivery to a function or a queue
needs the target's resource policy to allow ``events.amazonaws.com`` for the rule
(``_delivery_refused``); a refused one goes to the target's dead-letter queue.

``Scheduler`` fires schedule rules (any bus, any creator: ``@app.schedule`` or
``events.put_rule(ScheduleExpression=...)``) at their times, with the Scheduled
Event (``source`` ``aws.events``, ``detail-type`` ``Scheduled Event``,
``resources`` = the rule's ARN, ``detail`` ``{}``). To fire one now through the
AWS endpoint, put that same event on the rule's bus (a local shortcut: AWS
reserves ``aws.*`` sources)::

    events.put_events(Entries=[{"Source": "aws.events", "DetailType": "Scheduled Event",
                                "Detail": "{}", "Resources": [rule_arn]}])
"""

from __future__ import annotations

import copy
import json
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Callable

from moto.events.models import Rule, events_backends
from moto.events.utils import EventTemplateParser

from localstage.background import PeriodicWorker
from localstage.iam import enforcement
from localstage.iam.actions import Target
from localstage.moto_lambda import find_function, function_name_from_arn
from localstage.patches import Patches
from localstage.schedules import Schedule, ScheduleError, parse_schedule
from localstage.server import ACCOUNT_ID, REGION
from localstage.xray_moto import request_trace_header

log = logging.getLogger("localstage.events")

SCHEDULED_SOURCE = "aws.events"
SCHEDULED_DETAIL_TYPE = "Scheduled Event"
EVENTS_PRINCIPAL = "events.amazonaws.com"


def iso_time(value: Any) -> str:
    """EventBridge's ``time`` (``2024-05-01T12:00:00Z``) from moto's epoch seconds or a string."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def envelope(event: dict[str, Any]) -> dict[str, Any]:
    """The event as a target receives it: moto's internal fields removed, ``time`` in ISO 8601."""
    shaped = {k: v for k, v in copy.deepcopy(event).items() if k != "ingestion-time"}
    shaped["time"] = iso_time(shaped.get("time", time.time()))
    return shaped


def target_input(target: dict[str, Any], event: dict[str, Any]) -> Any:
    """What the target is invoked with: ``Input``, ``InputPath``, ``InputTransformer`` or the event."""
    if target.get("Input"):
        return json.loads(target["Input"])
    if target.get("InputPath"):
        value: Any = envelope(event)
        for key in target["InputPath"].removeprefix("$").strip(".").split("."):
            value = value.get(key) if key and isinstance(value, dict) else value
        return value
    if target.get("InputTransformer"):
        transformer = target["InputTransformer"]
        shaped = {**envelope(event), "ingestion-time": event.get("ingestion-time", time.time())}
        return EventTemplateParser.parse(transformer.get("InputTemplate"), transformer.get("InputPathsMap", {}), shaped)  # type: ignore[arg-type]
    return envelope(event)


def is_schedule_trigger(event: dict[str, Any], rule_arn: str) -> bool:
    return (
        event.get("source") == SCHEDULED_SOURCE
        and event.get("detail-type") == SCHEDULED_DETAIL_TYPE
        and rule_arn in (event.get("resources") or [])
    )


class _RuleView:
    """A rule with only some of its targets, for moto's own delivery (the rule is left untouched)."""

    def __init__(self, rule: Rule, targets: list[dict[str, Any]]) -> None:
        self._rule = rule
        self.targets = targets

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rule, name)


def _owned(target: dict[str, Any]) -> bool:
    arn = str(target.get("Arn", ""))
    return arn.startswith("arn:aws:lambda:") and find_function(function_name_from_arn(arn)[0]) is not None


def _delivery_refused(rule: Rule, target: dict[str, Any], event: Any) -> bool:
    """Whether IAM refuses EventBridge's delivery to ``target``: the function's or queue's resource policy.

    EventBridge acts as ``events.amazonaws.com`` with ``aws:SourceArn`` = the rule; only the
    target's resource-based policy can allow it (``lambda:AddPermission``, the queue's ``Policy``).
    A refused delivery goes to the target's ``DeadLetterConfig`` queue, if EventBridge may send there.
    """
    authorizer = enforcement.active()
    arn = str(target.get("Arn", ""))
    action = {"lambda": "lambda:InvokeFunction", "sqs": "sqs:SendMessage"}.get(
        arn.split(":")[2] if arn.count(":") > 2 else ""
    )
    if authorizer is None or action is None:
        return False
    decision = authorizer.decide_service(EVENTS_PRINCIPAL, Target(action, arn), rule.arn)
    if decision.allowed:
        return False
    dead_letter = (target.get("DeadLetterConfig") or {}).get("Arn")
    if dead_letter:
        _dead_letter(authorizer, rule, target, event, dead_letter, decision.reason)
    return True


def _dead_letter(
    authorizer: enforcement.Authorizer, rule: Rule, target: dict[str, Any], event: Any, queue_arn: str, reason: str
) -> None:
    """What EventBridge sends to a target's dead-letter queue, with AWS's attributes naming the failure."""
    from moto.sqs.models import sqs_backends

    if not authorizer.decide_service(EVENTS_PRINCIPAL, Target("sqs:SendMessage", queue_arn), rule.arn).allowed:
        return  # the dead letter itself is refused: the event is dropped, as on AWS (logged by the authorizer)
    _, _, _, region, account, name = queue_arn.split(":")
    attributes = {
        "ERROR_CODE": "NO_PERMISSIONS",
        "ERROR_MESSAGE": reason,
        "RULE_ARN": rule.arn,
        "TARGET_ARN": str(target["Arn"]),
    }
    sqs_backends[account][region].send_message(
        queue_name=name,
        message_body=json.dumps(envelope(event)),
        message_attributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )


def _routing(original: Callable[..., Any]) -> Callable[..., Any]:
    def send_to_targets(rule: Rule, event: Any, transform_input: bool = True) -> None:
        rest = _send_to_emulators(rule, event)
        if rest:
            original(_RuleView(rule, rest), event, transform_input)

    return send_to_targets


def _send_to_emulators(rule: Rule, event: Any) -> list[dict[str, Any]]:
    """Deliver to the rule's targets the emulators own; the permitted others, left for moto."""
    if rule.state != "ENABLED":
        return []
    if rule.scheduled_expression and not rule.event_pattern.get_pattern():
        if not is_schedule_trigger(event, rule.arn):
            return []
    elif not rule.event_pattern.matches_event(event):
        return []
    permitted = [t for t in rule.targets if not _delivery_refused(rule, t, event)]
    ours = [t for t in permitted if _owned(t)]
    for target in ours:
        name, qualifier = function_name_from_arn(target["Arn"])
        found = find_function(name)
        if found is None:
            continue
        try:
            found[1].submit(name, target_input(target, event), qualifier, request_trace_header())
        except Exception:  # one bad target must not stop the others, as on AWS; say why
            log.exception("rule %s could not deliver event %s to %s", rule.name, event.get("id"), name)
    return [t for t in permitted if t not in ours]


def install_events_hook(patches: Patches) -> None:
    """Route Lambda targets of rules to the emulators (moto keeps every other target; undone with ``patches``)."""
    patches.wrap("moto", Rule, "send_to_targets", _routing)


def scheduled_event(rule: Rule, fired_at: datetime) -> dict[str, Any]:
    """The Scheduled Event, with ``time`` as moto carries it internally (epoch seconds)."""
    now = time.time()
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": SCHEDULED_DETAIL_TYPE,
        "source": SCHEDULED_SOURCE,
        "account": rule.account_id,
        "time": fired_at.timestamp(),
        "region": rule.region_name,
        "resources": [rule.arn],
        "detail": {},
        "ingestion-time": now,
    }


class Scheduler(PeriodicWorker):
    """Fires the enabled schedule rules of the embedded AWS at their times (a thread ticking each second)."""

    thread_name = "scheduler"

    def __init__(
        self,
        account: str = ACCOUNT_ID,
        region: str = REGION,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        interval_s: float = 1.0,
    ) -> None:
        super().__init__(interval_s)
        self._account, self._region = account, region
        self._clock = clock
        self._due: dict[tuple[str, str], tuple[Schedule, datetime | None]] = {}
        self._invalid: set[tuple[str, str]] = set()

    def _rules(self) -> list[Rule]:
        backend = events_backends[self._account][self._region]
        return [rule for bus in list(backend.event_buses.values()) for rule in list(bus.rules.values())]

    def tick(self, now: datetime | None = None) -> list[str]:
        """Fire every rule that is due at ``now``; returns the ARNs of the rules fired."""
        now = now or self._clock()
        fired: list[str] = []
        for rule in self._rules():
            expression = rule.scheduled_expression
            if not expression or rule.state != "ENABLED":
                continue
            key = (rule.arn, expression)
            if key in self._invalid:
                continue
            if key not in self._due:
                try:
                    schedule = parse_schedule(expression)
                except ScheduleError as exc:
                    log.warning("rule %s will not fire: %s", rule.name, exc)
                    self._invalid.add(key)
                    continue
                self._due[key] = (schedule, schedule.next_after(now))
            schedule, due = self._due[key]
            if due is None or now < due:
                continue
            log.info("schedule %s (%s) fires", rule.name, expression)
            rule.send_to_targets(scheduled_event(rule, due))  # type: ignore[arg-type]
            fired.append(rule.arn)
            following = schedule.next_after(due)
            if following is not None and following <= now:
                following = schedule.next_after(now)  # missed periods are skipped, not replayed
            self._due[key] = (schedule, following)
        return fired
