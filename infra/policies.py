"""One IAM policy per function, least privilege, from one table of what each function's code calls.

``FUNCTION_GRANTS`` says, per Chalice function name, which actions it may take on which of the
stage's resources (logical ids of ``infra.template.stage_template``). The table mirrors the
adapters: ``chalicelib/adapters/*`` make the calls, ``chalicelib/bootstrap.py`` decides which
function builds which adapter. ``tests/integration/test_package.py`` runs the handlers against
moto, records every AWS call per function and fails if a call is not granted here, so the table
cannot silently fall behind the code.

Resources are rendered as ``Fn::Sub`` strings built from the template's own physical names,
(``arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/<TableName>``), so one
rendering serves ``chalice package`` (CloudFormation substitutes) and ``chalice deploy``
(``concrete`` substitutes the account and region). ``Resource: "*"`` appears only where the
service has no resource-level permissions: X-Ray, CloudWatch metric reads, ``lambda:ListFunctions``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from infra import pipeline
from infra.template import APP

Json = dict[str, Any]

ANY = "*"  # only for the actions listed in WILDCARD_ONLY_ACTIONS
OWN_LOG_GROUP = "@log-group"  # the function's own /aws/lambda/<name> log group
STAGE_FUNCTIONS = "@functions"  # every function of the stage (the cost optimizer reads their settings)

# Actions that IAM cannot scope to a resource: "*" is what the service requires, not a shortcut.
WILDCARD_ONLY_ACTIONS = frozenset(
    {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "cloudwatch:GetMetricData",
        "lambda:ListFunctions",
    }
)


@dataclass(frozen=True)
class Grant:
    """``actions`` on ``resources``: logical ids, optionally with a suffix (``OrdersTable/index/*``)."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]


def _grant(actions: str, *resources: str) -> Grant:
    return Grant(tuple(actions.split()), resources)


# -- what each adapter calls (chalicelib/adapters) ---------------------------------------------------
# Index ARNs carry only Query: it is the one action these adapters run against an index.

_USERS = (  # DynamoUserRepository: conditional put, get by id, query by email
    _grant("dynamodb:GetItem dynamodb:PutItem", "UsersTable"),
    _grant("dynamodb:Query", "UsersTable/index/EmailIndex"),
)
_CATALOG = (  # DynamoProductRepository: puts, field-by-field updates, scan for "all", batch get for pricing
    _grant(
        "dynamodb:GetItem dynamodb:PutItem dynamodb:UpdateItem dynamodb:Scan dynamodb:BatchGetItem", "ProductsTable"
    ),
    _grant("dynamodb:Query", "ProductsTable/index/CategoryIndex"),
)
_ORDERS = (  # DynamoOrderRepository: order + idempotency record in one TransactWriteItems (= PutItem per item)
    _grant("dynamodb:GetItem dynamodb:PutItem", "OrdersTable", "IdempotencyTable"),
    _grant("dynamodb:Query", "OrdersTable/index/CustomerOrdersIndex"),
)
_IDENTITY = (  # CognitoIdentityProvider: register (and undo a half-made user), log in, read sub
    _grant(
        "cognito-idp:AdminCreateUser cognito-idp:AdminSetUserPassword cognito-idp:AdminInitiateAuth "
        "cognito-idp:AdminDeleteUser cognito-idp:AdminGetUser",
        "UserPool",
    ),
)
_SIGNING_KEYS = _grant("secretsmanager:GetSecretValue", "SigningKeySecret")  # SecretsManagerSigningKeys
_DISPATCH = (  # AwsOrderDispatcher: the work, the announcement, the confirmation
    _grant("sqs:SendMessage", "OrderProcessingQueue"),
    _grant("events:PutEvents", "EventBus"),
    _grant("sns:Publish", "NotificationTopic"),
)
_UPLOADS = _grant("s3:PutObject", "UploadsBucket/*")  # a presigned POST acts with the signer's permissions

# The order pipeline, by building block (adapters/pipeline_dynamodb.py, inventory_dynamodb.py, payments.py):
_READ_ORDER = _grant("dynamodb:GetItem", "OrdersTable")  # OrderProgress.get
_ORDER_PROGRESS = _grant("dynamodb:GetItem dynamodb:UpdateItem", "OrdersTable")  # .advance, .record_notification
_STOCK = _grant("dynamodb:UpdateItem", "ProductsTable")  # hold / release: stock counts, in one transaction
# charge, check, refund: conditional updates, and a read of the winner's outcome after a lost race
_PAYMENT = _grant("dynamodb:GetItem dynamodb:UpdateItem", "PaymentsTable")
_ANNOUNCE = _grant("events:PutEvents", "EventBus")
_NOTIFY = _grant("sns:Publish", "NotificationTopic")
# Holds and releases mark the order (UpdateItem) and read the mark back after a failed condition (GetItem).
_HOLD = (_STOCK, _ORDER_PROGRESS)
_FAIL = (_ORDER_PROGRESS, _ANNOUNCE)  # Compensations._fail: move to FAILED, announce it

# Each task of statemachine.json gets what its step does (services/workflow.py, services/compensation.py),
# not the union of all steps: ValidateOrder cannot move stock or payments.
TASK_GRANTS: dict[str, tuple[Grant, ...]] = {
    "validate_order": (_READ_ORDER,),
    "check_inventory": (_READ_ORDER, *_HOLD, _ANNOUNCE),
    "process_payment": (_READ_ORDER, _PAYMENT, _ANNOUNCE),
    "check_payment_status": (_READ_ORDER, _PAYMENT, _ANNOUNCE),
    # schedules the re-check, and first moves the order's deadline past it (DynamoOrderDeadlines.extend)
    "await_payment": (_grant("sqs:SendMessage", "PaymentRechecksQueue"), _grant("dynamodb:UpdateItem", "OrdersTable")),
    "reserve_inventory": (_grant("dynamodb:UpdateItem", "OrdersTable"),),  # commit: one conditional update
    "send_confirmation": (_READ_ORDER, _NOTIFY),
    "schedule_shipping": (_READ_ORDER,),
    "complete_order": _FAIL,  # the same calls: move the order (to COMPLETED) and announce it
    "reject_order": _FAIL,
    "notify_out_of_stock": (_READ_ORDER, *_FAIL),
    "handle_payment_failure": (_READ_ORDER, _PAYMENT, *_HOLD, *_FAIL),  # voids a pending payment
    "refund_payment": (_READ_ORDER, _PAYMENT, *_HOLD, *_FAIL),
    "compensate_order": (_READ_ORDER, _PAYMENT, *_HOLD, *_FAIL),
}
# Lambda's event source mapping polls with the function's role (SAM adds nothing when a role is given).
_CONSUMES_ORDERS = _grant("sqs:ReceiveMessage sqs:DeleteMessage sqs:GetQueueAttributes", "OrderProcessingQueue")
_CONSUMES_EVENTS = _grant("sqs:ReceiveMessage sqs:DeleteMessage sqs:GetQueueAttributes", "NotificationEventsQueue")
# The on-failure destination of an asynchronously invoked function is written with the function's role.
_ASYNC_DESTINATION = _grant("sqs:SendMessage", "AsyncInvokeDLQ")

# The workflow's task handlers, as statemachine.json names them (one list, in infra/pipeline.py).
TASK_FUNCTIONS = tuple(pipeline.TASK_FUNCTIONS.values())

FUNCTION_GRANTS: dict[str, tuple[Grant, ...]] = {
    "api_handler": (*_USERS, *_CATALOG, *_ORDERS, *_IDENTITY, _SIGNING_KEYS, *_DISPATCH, _UPLOADS),
    # The authorizer verifies the token, then reads the caller's record (a deleted account is refused,
    # roles are the current ones): services.authentication.Authenticator.principal.
    "jwt_auth": (_SIGNING_KEYS, _grant("dynamodb:GetItem", "UsersTable")),
    **TASK_GRANTS,
    "process_order": (
        _ORDER_PROGRESS,
        _CONSUMES_ORDERS,
        _grant("states:StartExecution", "OrderStateMachine"),
        _grant("sqs:SendMessage", "OrderProcessingDLQ"),  # SqsDeadLetters, with the failure's reason
    ),
    # The re-check consumer: reads the order, claims the round on the payment, starts the workflow at the
    # status check; gives up on an order (compensate_order's calls) only when its message is dead-lettered.
    "recheck_payment": (
        *TASK_GRANTS["compensate_order"],
        _grant("sqs:ReceiveMessage sqs:DeleteMessage sqs:GetQueueAttributes", "PaymentRechecksQueue"),
        _grant("states:StartExecution", "OrderStateMachine"),
        _grant("sqs:SendMessage", "PaymentRechecksDLQ"),
    ),
    "route_notification_events": (
        _CONSUMES_EVENTS,
        _NOTIFY,
        _grant("sqs:SendMessage", "NotificationEventsDLQ"),
    ),
    "send_notification": (_ORDER_PROGRESS, _ASYNC_DESTINATION),
    # The workflow monitor compensates a failed execution (compensate_order's calls) and pages operations.
    "handle_workflow_event": (
        *TASK_GRANTS["compensate_order"],
        _grant("sns:Publish", "AlertsTopic"),
        _ASYNC_DESTINATION,
    ),
    # The Express workflow's watchdog: finds orders past their deadline in the sparse index, claims each
    # (a conditional UpdateItem), compensates it as compensate_order does, alerts operations, settles it.
    "sweep_stalled_orders": (
        *TASK_GRANTS["compensate_order"],
        _grant("dynamodb:Query", "OrdersTable/index/DeadlineIndex"),
        _grant("sns:Publish", "AlertsTopic"),
    ),
    # The observability helper's scheduled optimizer: reads the functions' settings (all, or the ones the
    # event names) and metrics, reads memory-tuning results, writes its report. ListFunctions and
    # GetMetricData have no resource-level permissions.
    "cost_optimizer": (
        _grant("lambda:ListFunctions cloudwatch:GetMetricData", ANY),
        _grant("lambda:GetFunctionConfiguration", STAGE_FUNCTIONS),
        _grant("s3:PutObject s3:GetObject", "ReportsBucket/*"),
        _grant("s3:ListBucket", "ReportsBucket"),
    ),
}

# Which property of a resource carries its physical name, and the ARN that name makes.
_ARN_FORMATS: dict[str, tuple[str, str]] = {
    "AWS::DynamoDB::Table": ("TableName", "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/{}"),
    "AWS::SQS::Queue": ("QueueName", "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:{}"),
    "AWS::SNS::Topic": ("TopicName", "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:{}"),
    "AWS::Events::EventBus": ("Name", "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/{}"),
    "AWS::S3::Bucket": ("BucketName", "arn:${AWS::Partition}:s3:::{}"),
    # Secrets Manager appends six random characters to the name in the ARN.
    "AWS::SecretsManager::Secret": (
        "Name",
        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:{}-??????",
    ),
    "AWS::StepFunctions::StateMachine": (
        "StateMachineName",
        "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:{}",
    ),
}
# The pool's id is made by Cognito, so its ARN is known only to CloudFormation (or from the outputs).
USER_POOL_ARN = "${UserPool.Arn}"


class PolicyError(Exception):
    """The grants name a resource the stage template does not define, or cannot be rendered."""


def function_name(function: str, stage: str, app: str = APP) -> str:
    """The deployed name, as ``chalice deploy`` names it (the API handler is just ``<app>-<stage>``)."""
    return f"{app}-{stage}" if function == "api_handler" else f"{app}-{stage}-{function}"


def resource_arn(reference: str, resources: Mapping[str, Json], function: str, stage: str) -> str:
    """The ``Fn::Sub`` text of the ARN ``reference`` designates (``ProductsTable/index/*`` etc.)."""
    if reference == ANY:
        return ANY
    if reference == OWN_LOG_GROUP:
        name = function_name(function, stage)
        return f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:/aws/lambda/{name}:*"
    if reference == STAGE_FUNCTIONS:
        prefix = function_name("api_handler", stage)
        return f"arn:${{AWS::Partition}}:lambda:${{AWS::Region}}:${{AWS::AccountId}}:function:{prefix}*"
    logical_id, _, suffix = reference.partition("/")
    resource = resources.get(logical_id)
    if resource is None:
        raise PolicyError(f"{function}: {logical_id} is not a resource of stage {stage}")
    if resource["Type"] == "AWS::Cognito::UserPool":
        arn = USER_POOL_ARN
    else:
        try:
            name_property, arn_format = _ARN_FORMATS[resource["Type"]]
        except KeyError:
            raise PolicyError(f"{function}: no ARN format for {resource['Type']} ({logical_id})") from None
        arn = arn_format.replace("{}", str(resource["Properties"][name_property]))
    return f"{arn}/{suffix}" if suffix else arn


def grants(function: str, xray: bool) -> tuple[Grant, ...]:
    """Everything ``function`` may do: its table entry, its own logs, and X-Ray when tracing is on.

    Merged: each (action, resource) pair once, and resources that share their actions in one grant.
    """
    own = FUNCTION_GRANTS[function] + (_grant("logs:CreateLogStream logs:PutLogEvents", OWN_LOG_GROUP),)
    if xray:
        own += (_grant("xray:PutTraceSegments xray:PutTelemetryRecords", ANY),)
    return _merged(own)


def _merged(table: tuple[Grant, ...]) -> tuple[Grant, ...]:
    by_resource: dict[str, list[str]] = {}
    for grant in table:
        for resource in grant.resources:
            actions = by_resource.setdefault(resource, [])
            actions += [a for a in grant.actions if a not in actions]
    by_actions: dict[tuple[str, ...], list[str]] = {}
    for resource, actions in by_resource.items():
        by_actions.setdefault(tuple(sorted(actions)), []).append(resource)
    return tuple(Grant(actions, tuple(resources)) for actions, resources in by_actions.items())


def policy_document(function: str, stage: str, template: Json, xray: bool = True) -> Json:
    """The function's policy with ``{"Fn::Sub": ...}`` resources, for the packaged template."""
    statements = []
    for grant in grants(function, xray):
        arns = [resource_arn(r, template["Resources"], function, stage) for r in grant.resources]
        if ANY in arns and not set(grant.actions) <= WILDCARD_ONLY_ACTIONS:
            raise PolicyError(f"{function}: Resource '*' for {grant.actions}, which can be scoped")
        resource: Any = ANY if arns == [ANY] else [{"Fn::Sub": arn} for arn in arns]
        statements.append({"Effect": "Allow", "Action": sorted(grant.actions), "Resource": resource})
    return {"Version": "2012-10-17", "Statement": statements}


def concrete(document: Json, partition: str, region: str, account: str, user_pool_arn: str) -> Json:
    """``document`` with its ``Fn::Sub`` resources substituted, for ``chalice deploy`` and for tests."""
    values = {
        "${AWS::Partition}": partition,
        "${AWS::Region}": region,
        "${AWS::AccountId}": account,
        USER_POOL_ARN: user_pool_arn,
    }

    def render(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
            text = str(value["Fn::Sub"])
            for variable, replacement in values.items():
                text = text.replace(variable, replacement)
            if "${" in text:
                raise PolicyError(f"unresolved variable in {text}")
            return text
        if isinstance(value, list):
            return [render(v) for v in value]
        return value

    return {
        "Version": document["Version"],
        "Statement": [{**s, "Resource": render(s["Resource"])} for s in document["Statement"]],
    }


def referenced_resources(function: str) -> set[str]:
    """The template's logical ids ``function`` acts on: its environment carries exactly these."""
    found = {r.partition("/")[0] for g in FUNCTION_GRANTS[function] for r in g.resources}
    return found - {ANY, OWN_LOG_GROUP, STAGE_FUNCTIONS}


def functions_in(names: Iterable[str]) -> list[str]:
    """The functions of the table that the app defines (``cost_optimizer`` may not exist yet)."""
    known = set(names)
    return [f for f in FUNCTION_GRANTS if f in known]
