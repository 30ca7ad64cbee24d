"""SNS subscriptions with the ``lambda`` protocol, delivered to the stage's functions.

moto 5.2.5 delivers a ``lambda`` subscription through
``LambdaBackend.send_sns_message``: a synchronous invoke inside ``Publish``
with a canned event (fixed ``MessageId``, ``TopicArn`` ``arn:aws:sns:EXAMPLE``,
sample ``MessageAttributes``, ``Timestamp`` 1970). ``install_sns_hook`` wraps
``Subscription.publish`` through ``localstage.patches`` (and reads the subscription's private
``_filter_policy_matcher`` and ``_parse_message_structure``, moto's own filtering) so that, for a
function an emulator owns, SNS does what AWS documents (https://docs.aws.amazon.com/sns/latest/dg/sns-lambda-as-subscriber.html):

- the subscription's filter policy and ``MessageStructure=json`` (key
  ``lambda``, else ``default``) apply, through moto's own code;
- the function is invoked asynchronously (``Publish`` returns at once) with
  the SNS event: ``Records[0]`` with ``EventSource`` ``aws:sns``,
  ``EventSubscriptionArn`` and ``Sns`` (``Type``, ``MessageId`` as returned by
  ``Publish``, ``TopicArn``, ``Subject`` or null, ``Message``, ``Timestamp``,
  ``MessageAttributes`` as ``{"Type", "Value"}``, signature fields);
- failures are retried by Lambda's asynchronous path (``localstage.async_invoke``):
  SNS's own delivery retries only apply when Lambda cannot accept the event,
  which does not happen locally.

*Difference*: ``Signature`` is a placeholder; nothing is signed.
Subscriptions to other protocols, and to functions no emulator owns, stay moto's, except that an
``http``/``https`` delivery (moto POSTs inside ``Publish``) runs on its own thread: on AWS the
publisher never waits for, nor fails with, a subscriber's endpoint (an alert hook that is down
must not fail the function publishing an alert). A failed POST is logged; SNS's HTTP retry policy
is not modelled.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any, Callable

from moto.sns.models import Subscription

from localstage.iam import enforcement
from localstage.iam.actions import Target
from localstage.moto_lambda import find_function, function_name_from_arn
from localstage.patches import Patches
from localstage.xray_moto import request_trace_header

log = logging.getLogger("localstage.sns")

UNSIGNED = "TE9DQUwgU1RBR0U6IE5PVCBTSUdORUQ="  # base64 of "LOCAL STAGE: NOT SIGNED"
SNS_PRINCIPAL = "sns.amazonaws.com"


def sns_event(
    subscription_arn: str,
    topic_arn: str,
    message: str,
    message_id: str,
    subject: str | None,
    message_attributes: dict[str, Any] | None,
    published: datetime | None = None,
) -> dict[str, Any]:
    """Lambda's SNS event for one notification."""
    region = topic_arn.split(":")[3]
    timestamp = (published or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message_id,
                    "TopicArn": topic_arn,
                    "Subject": subject,
                    "Message": message,
                    "Timestamp": timestamp,
                    "SignatureVersion": "1",
                    "Signature": UNSIGNED,
                    "SigningCertUrl": f"https://sns.{region}.amazonaws.com/SimpleNotificationService-local.pem",
                    "UnsubscribeUrl": (
                        f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={subscription_arn}"
                    ),
                    "MessageAttributes": message_attributes or {},
                },
            }
        ]
    }


def _delivering(original: Callable[..., Any]) -> Callable[..., Any]:
    def publish(
        subscription: Subscription,
        message: str,
        message_id: str,
        subject: str | None = None,
        message_attributes: dict[str, Any] | None = None,
        group_id: str | None = None,
        deduplication_id: str | None = None,
        message_structure: str | None = None,
    ) -> None:
        # Only Lambda subscriptions of the emulators' functions are ours; SQS, HTTP and the rest keep moto's.
        name, qualifier = (
            function_name_from_arn(subscription.endpoint) if subscription.protocol == "lambda" else ("", None)
        )
        found = find_function(name) if name else None
        if found is None:
            arguments = (
                subscription,
                message,
                message_id,
                subject,
                message_attributes,
                group_id,
                deduplication_id,
                message_structure,
            )
            if subscription.protocol in ("http", "https"):
                # On its own thread: an alert hook that is down must not fail the function's Publish, as on AWS.
                threading.Thread(
                    target=_deliver_http, args=(original, *arguments), name="sns-http", daemon=True
                ).start()
            else:
                original(*arguments)
            return
        _deliver(
            found[1], name, qualifier, subscription, message, message_id, subject, message_attributes, message_structure
        )

    return publish


def _deliver(
    queue: Any,
    name: str,
    qualifier: str | None,
    subscription: Subscription,
    message: str,
    message_id: str,
    subject: str | None,
    message_attributes: dict[str, Any] | None,
    message_structure: str | None,
) -> None:
    matcher = subscription._filter_policy_matcher
    if matcher is not None and not matcher.matches(message_attributes, message):
        return
    if message_structure == "json":
        message = subscription._parse_message_structure(message, "lambda")
    authorizer = enforcement.active()
    if authorizer is not None:
        # SNS invokes as sns.amazonaws.com for the topic: only the function's policy (AddPermission) allows it.
        target = Target("lambda:InvokeFunction", subscription.endpoint)
        if not authorizer.decide_service(SNS_PRINCIPAL, target, subscription.topic.arn).allowed:
            return  # AWS retries, then drops the notification (logged by the authorizer)
    event = sns_event(subscription.arn, subscription.topic.arn, message, message_id, subject, message_attributes)
    queue.submit(name, event, qualifier, request_trace_header())


def _deliver_http(original: Callable[..., Any], subscription: Subscription, *arguments: Any) -> None:
    try:
        original(subscription, *arguments)
    except Exception as exc:  # the endpoint's failure is the subscriber's, never the publisher's
        log.warning("SNS could not deliver to %s: %s", subscription.endpoint, exc)


def install_sns_hook(patches: Patches) -> None:
    """Deliver ``lambda`` subscriptions of the emulators' functions (undone with ``patches``)."""
    patches.wrap("moto", Subscription, "publish", _delivering)
