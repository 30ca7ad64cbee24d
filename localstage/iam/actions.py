"""What IAM authorises for one API call: the action, the resource ARN and the request's condition keys.

``targets(call)`` maps an API call (service, operation and its API-level parameters, as botocore
names them) to the ``(action, resource, context)`` triples AWS evaluates, following the Service
Authorization Reference (https://docs.aws.amazon.com/service-authorization/latest/reference/):

- most operations are ``<prefix>:<Operation>`` on one resource named by a parameter;
- some act on several: ``TransactWriteItems`` is a ``PutItem``/``UpdateItem``/``DeleteItem``/
  ``ConditionCheckItem`` per item, ``BatchGetItem`` one per table, ``PutEvents`` one per bus;
- some have another action's name: ``lambda:Invoke`` is ``lambda:InvokeFunction``, S3's
  ``ListObjectsV2`` is ``s3:ListBucket``, the ``...Batch`` operations of SQS are their singles.

An operation this module does not know maps to ``<prefix>:<Operation>`` on ``"*"``, which only a
statement with ``Resource: "*"`` allows: unknown calls are never allowed by a grant scoped to a
resource, so the stage errs on the side of refusing (``docs/local-stage.md``, "IAM").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from localstage.iam.policy import ContextValue

Json = dict[str, Any]


@dataclass(frozen=True)
class Call:
    """One API call as IAM sees it: who signed it for which region, and what it asks."""

    service: str  # botocore's service name: "dynamodb", "stepfunctions", "cognito-idp"...
    operation: str  # "GetItem"
    params: Mapping[str, Any]
    region: str
    account: str


@dataclass(frozen=True)
class Target:
    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)


# botocore service name -> IAM action prefix, where they differ
PREFIXES = {"stepfunctions": "states", "cloudwatch": "cloudwatch", "logs": "logs"}
# Operations whose IAM action has another name.
RENAMED = {
    ("lambda", "Invoke"): "InvokeFunction",
    ("lambda", "InvokeAsync"): "InvokeFunction",
    ("sqs", "SendMessageBatch"): "SendMessage",
    ("sqs", "DeleteMessageBatch"): "DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility",
    ("sns", "PublishBatch"): "Publish",
    ("s3", "ListObjectsV2"): "ListBucket",
    ("s3", "ListObjects"): "ListBucket",
    ("s3", "HeadBucket"): "ListBucket",
    ("s3", "HeadObject"): "GetObject",
    ("s3", "CreateMultipartUpload"): "PutObject",
    ("s3", "UploadPart"): "PutObject",
    ("s3", "CompleteMultipartUpload"): "PutObject",
    ("s3", "PostObject"): "PutObject",  # a browser upload with a presigned POST form
    ("stepfunctions", "StartSyncExecution"): "StartSyncExecution",
}


def action_of(service: str, operation: str) -> str:
    return f"{PREFIXES.get(service, service)}:{RENAMED.get((service, operation), operation)}"


def _arn(call: Call, service: str, resource: str) -> str:
    return f"arn:aws:{service}:{call.region}:{call.account}:{resource}"


def _single(call: Call, resource: str, **context: ContextValue) -> list[Target]:
    return [Target(action_of(call.service, call.operation), resource, context)]


# -- per service ------------------------------------------------------------------------------------


def _table_arn(call: Call, table: str) -> str:
    return table if table.startswith("arn:") else _arn(call, "dynamodb", f"table/{table}")


_DYNAMODB_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def _dynamodb(call: Call) -> list[Target]:
    p, op = call.params, call.operation
    if op == "TransactWriteItems":
        return [
            Target(f"dynamodb:{_DYNAMODB_ITEM_ACTIONS[kind]}", _table_arn(call, body["TableName"]))
            for item in p.get("TransactItems", [])
            for kind, body in item.items()
        ]
    if op == "TransactGetItems":
        return [Target("dynamodb:GetItem", _table_arn(call, i["Get"]["TableName"])) for i in p.get("TransactItems", [])]
    if op == "BatchGetItem":
        return [Target("dynamodb:BatchGetItem", _table_arn(call, t)) for t in p.get("RequestItems", {})]
    if op == "BatchWriteItem":
        return [
            Target("dynamodb:PutItem" if "PutRequest" in w else "dynamodb:DeleteItem", _table_arn(call, table))
            for table, writes in p.get("RequestItems", {}).items()
            for w in writes
        ]
    if "TableName" not in p:
        return _single(call, "*")  # ListTables and other account-wide operations
    index = f"/index/{p['IndexName']}" if p.get("IndexName") else ""
    return _single(call, _table_arn(call, p["TableName"]) + index)


def queue_arn_from_url(url: str, region: str) -> str:
    """``http://host/123456789012/name`` (any endpoint) -> ``arn:aws:sqs:<region>:123456789012:name``."""
    account, name = url.rstrip("/").split("/")[-2:]
    return f"arn:aws:sqs:{region}:{account}:{name}"


def _sqs(call: Call) -> list[Target]:
    p = call.params
    if "QueueUrl" in p:
        return _single(call, queue_arn_from_url(p["QueueUrl"], call.region))
    if "QueueName" in p:  # CreateQueue, GetQueueUrl
        owner = p.get("QueueOwnerAWSAccountId") or call.account
        return _single(call, f"arn:aws:sqs:{call.region}:{owner}:{p['QueueName']}")
    return _single(call, "*")


def _sns(call: Call) -> list[Target]:
    arn = call.params.get("TopicArn") or call.params.get("TargetArn")
    return _single(call, arn or "*")


def _events(call: Call) -> list[Target]:
    p = call.params
    if call.operation == "PutEvents":
        by_bus: dict[str, tuple[set[str], set[str]]] = {}
        for entry in p.get("Entries", []):
            bus = str(entry.get("EventBusName") or "default")
            arn = bus if bus.startswith("arn:") else _arn(call, "events", f"event-bus/{bus}")
            sources, types = by_bus.setdefault(arn, (set(), set()))
            sources.add(str(entry.get("Source", "")))
            types.add(str(entry.get("DetailType", "")))
        return [
            Target("events:PutEvents", arn, {"events:source": sorted(s), "events:detail-type": sorted(t)})
            for arn, (s, t) in by_bus.items()
        ]
    if "Rule" in p or ("Name" in p and call.operation.endswith("Rule")):
        bus = str(p.get("EventBusName") or "default")
        name = p.get("Rule") or p["Name"]
        path = f"rule/{name}" if bus == "default" else f"rule/{bus.rsplit('/', 1)[-1]}/{name}"
        return _single(call, _arn(call, "events", path))
    if "EventBusName" in p or "Name" in p:
        bus = str(p.get("EventBusName") or p.get("Name"))
        return _single(call, bus if bus.startswith("arn:") else _arn(call, "events", f"event-bus/{bus}"))
    return _single(call, "*")


def _stepfunctions(call: Call) -> list[Target]:
    p = call.params
    for key in ("stateMachineArn", "executionArn", "activityArn"):
        if key in p:
            return _single(call, p[key])
    return _single(call, "*")


def _cognito(call: Call) -> list[Target]:
    pool = call.params.get("UserPoolId")
    return _single(call, _arn(call, "cognito-idp", f"userpool/{pool}") if pool else "*")


def _secretsmanager(call: Call, secret_arn: Callable[[str], str | None]) -> list[Target]:
    secret = call.params.get("SecretId") or call.params.get("Name")
    if not secret:
        return _single(call, "*")
    arn = (
        secret if secret.startswith("arn:") else secret_arn(secret) or _arn(call, "secretsmanager", f"secret:{secret}")
    )
    return _single(call, arn)


def function_arn(call: Call, name: str, qualifier: str | None = None) -> str:
    """A function's ARN from its name, partial ARN (``123:function:name``) or ARN, with a qualifier."""
    if name.startswith("arn:"):
        base = name
    elif ":function:" in name:
        base = f"arn:aws:lambda:{call.region}:{name}"
    else:
        base = _arn(call, "lambda", f"function:{name}")
    return f"{base}:{qualifier}" if qualifier and base.count(":") == 6 else base


def _lambda(call: Call) -> list[Target]:
    p = call.params
    if "FunctionName" in p:
        return _single(call, function_arn(call, p["FunctionName"], p.get("Qualifier")))
    return _single(call, "*")


def _s3(call: Call) -> list[Target]:
    p = call.params
    bucket, key = p.get("Bucket"), p.get("Key")
    if bucket and key is not None and call.operation not in ("ListObjectsV2", "ListObjects", "HeadBucket"):
        return _single(call, f"arn:aws:s3:::{bucket}/{key}")
    if bucket:
        return _single(call, f"arn:aws:s3:::{bucket}")
    return _single(call, "*")


def _logs(call: Call) -> list[Target]:
    group = call.params.get("logGroupName")
    if not group:
        return _single(call, "*")
    stream = call.params.get("logStreamName")
    resource = f"log-group:{group}:log-stream:{stream}" if stream else f"log-group:{group}:*"
    return _single(call, _arn(call, "logs", resource))


def targets(call: Call, secret_arn: Callable[[str], str | None] = lambda _name: None) -> list[Target]:
    """The ``(action, resource, context)`` triples IAM evaluates for ``call``; all must be allowed.

    ``secret_arn`` resolves a Secrets Manager secret name to its ARN (which ends in six random
    characters that policies match with ``-??????``).
    """
    if call.service == "sts" and call.operation == "GetCallerIdentity":
        return []  # AWS: no permission is needed, and an explicit deny does not apply
    handlers: dict[str, Callable[[Call], list[Target]]] = {
        "dynamodb": _dynamodb,
        "sqs": _sqs,
        "sns": _sns,
        "events": _events,
        "stepfunctions": _stepfunctions,
        "cognito-idp": _cognito,
        "lambda": _lambda,
        "s3": _s3,
        "logs": _logs,
        "secretsmanager": lambda c: _secretsmanager(c, secret_arn),
    }
    handler = handlers.get(call.service)
    return handler(call) if handler else _single(call, "*")
