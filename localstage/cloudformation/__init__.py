"""The embedded AWS as a deploy target: moto's CloudFormation, filled where it falls short of AWS.

``make deploy STAGE=dev AWS_ENDPOINT_URL=http://127.0.0.1:4566`` runs ``scripts/deploy.py`` unchanged
against the running stage; its first step is a CloudFormation stack of ``infra.template.stage_template``.
moto 5.2.5 alone fails it (a 500 on the event bus ``Ref``) and would otherwise skip the pool, its client,
the secret, the alarms and the queue policy in silence. ``install`` routes every resource type through
one fill each (``FILLS``): a type without one fails the stack naming it; and gives stacks CloudFormation's
semantics (``localstage.cloudformation.stack``): events, rollback, real updates, ordered deletes.

Each fill calls the moto backend the AWS API calls, so what the stack made answers the API as if a
client had made it. Which moto behaviour each one covers: the docstrings of ``data``,
``messaging``, ``identity`` and ``operations`` (this package). The fills read moto's backends by their
private names; ``install`` goes through ``Patches.wrap``, which checks moto's version first, so a moto
that moved them fails the stage at start-up rather than a deploy half-way.
"""

from __future__ import annotations

from localstage.cloudformation import stack as cfn_stack
from localstage.cloudformation.data import BucketFill, TableFill
from localstage.cloudformation.identity import RoleFill, SecretFill, UserPoolClientFill, UserPoolFill
from localstage.cloudformation.messaging import (
    EventBusFill,
    QueueFill,
    QueuePolicyFill,
    RuleFill,
    SubscriptionFill,
    TopicFill,
)
from localstage.cloudformation.model import ResourceFill
from localstage.cloudformation.operations import AlarmFill, DashboardFill, LogGroupFill, StateMachineFill
from localstage.patches import Patches

FILLS: dict[str, type[ResourceFill]] = {
    fill.TYPE: fill
    for fill in (
        TableFill,
        BucketFill,
        QueueFill,
        QueuePolicyFill,
        TopicFill,
        SubscriptionFill,
        EventBusFill,
        RuleFill,
        UserPoolFill,
        UserPoolClientFill,
        SecretFill,
        RoleFill,
        StateMachineFill,
        LogGroupFill,
        AlarmFill,
        DashboardFill,
    )
}


def install(patches: Patches) -> None:
    """Make moto's CloudFormation deploy the stage's template as AWS does; ``patches.undo()`` removes it all."""
    cfn_stack.install(patches, FILLS)
