"""IAM for the local stage: one role per function from ``infra.policies``, the drill, the switches.

- ``IamOptions``: ``LOCAL_IAM`` (``on``, the default, or ``off``) and ``LOCAL_IAM_REVOKE``
  (``<function>:<action>[,...]``, e.g. ``jwt_auth:dynamodb:GetItem``): the stage starts with those
  grants removed, so an operator can watch what a missing permission does.
- ``function_policies``: each function's policy, exactly the document ``make package`` writes for it
  (``infra.policies.policy_document``), with the stage's account, region and pool substituted.
- ``FunctionRoles``: creates the roles as ``chalice deploy`` names them (``<app>-<stage>-<function>``,
  trusted by ``lambda.amazonaws.com``) and assumes each once, session name = function name, as Lambda
  does; the emulator signs each invocation's calls with them (``principals.acting_as``).
- ``install_workflow_principal``: Step Functions tasks run as their state machine's role.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from infra.policies import concrete, policy_document
from localstage.iam.principals import Acting, acting_as, assume
from localstage.patches import Patches

Json = dict[str, Any]

IAM = "LOCAL_IAM"
REVOKE = "LOCAL_IAM_REVOKE"
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


class IamConfigError(ValueError):
    """``LOCAL_IAM`` or ``LOCAL_IAM_REVOKE`` is malformed, or names a grant that does not exist."""


@dataclass(frozen=True)
class Revocation:
    function: str  # Chalice's name: "jwt_auth", "api_handler"
    action: str  # "dynamodb:GetItem"

    def __str__(self) -> str:
        return f"{self.function}:{self.action}"


@dataclass(frozen=True)
class IamOptions:
    enforce: bool = True
    revoke: tuple[Revocation, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IamOptions:
        mode = (env.get(IAM) or "on").strip().lower()
        if mode not in ("on", "off"):
            raise IamConfigError(f"{IAM} must be 'on' or 'off', got {env.get(IAM)!r}")
        revoke = tuple(parse_revocation(item) for item in (env.get(REVOKE) or "").split(",") if item.strip())
        if revoke and mode == "off":
            raise IamConfigError(f"{REVOKE} needs IAM enforced: unset {IAM}=off")
        return cls(mode == "on", revoke)

    def banner(self) -> str:
        if not self.enforce:
            return f"off ({IAM}=off): every call is allowed, unlike AWS"
        revoked = f"; revoked: {', '.join(map(str, self.revoke))}" if self.revoke else ""
        return f"enforced, one role per function (infra/policies.py){revoked}"


def parse_revocation(item: str) -> Revocation:
    function, _, action = item.strip().partition(":")
    if not function or ":" not in action:
        raise IamConfigError(
            f"{REVOKE} takes <function>:<service>:<Action>, e.g. jwt_auth:dynamodb:GetItem; got {item!r}"
        )
    return Revocation(function, action)


def function_policies(
    functions: Iterable[str], stage: str, template: Json, xray: bool, region: str, account: str, pool_id: str
) -> dict[str, Json]:
    """Each function's policy document as ``make package`` emits it, made concrete for this stage."""
    pool_arn = f"arn:aws:cognito-idp:{region}:{account}:userpool/{pool_id}"
    return {f: concrete(policy_document(f, stage, template, xray), "aws", region, account, pool_arn) for f in functions}


def revoked(policies: Mapping[str, Json], revocations: Iterable[Revocation]) -> dict[str, Json]:
    """``policies`` without the revoked actions (statements left empty are dropped)."""
    result = {name: json.loads(json.dumps(doc)) for name, doc in policies.items()}
    for revocation in revocations:
        document = result.get(revocation.function)
        if document is None:
            raise IamConfigError(
                f"{REVOKE}: no function {revocation.function!r}; the stage has {', '.join(sorted(result))}"
            )
        found = False
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            kept = [a for a in actions if a.lower() != revocation.action.lower()]
            found = found or len(kept) < len(actions)
            statement["Action"] = kept
        if not found:
            granted = sorted({a for s in document["Statement"] for a in s["Action"]})
            raise IamConfigError(
                f"{REVOKE}: {revocation.function} is not granted {revocation.action}; it has {', '.join(granted)}"
            )
        document["Statement"] = [s for s in document["Statement"] if s["Action"]]
    return result


def role_name(app: str, stage: str, function: str) -> str:
    """``chalice deploy``'s name for a function's own role (``autogen_policy`` off)."""
    return f"{app}-{stage}-{function}"


@dataclass
class FunctionRoles:
    """The functions' roles in the embedded IAM and a session of each (deployed name -> ``Acting``)."""

    arns: dict[str, str]  # deployed function name -> role ARN
    sessions: dict[str, Acting]

    @classmethod
    def create(
        cls, iam: Any, sts: Any, names: Mapping[str, str], policies: Mapping[str, Json], app: str, stage: str
    ) -> FunctionRoles:
        """``names``: deployed function name -> Chalice name. Idempotent (an existing role gets the policy)."""
        arns: dict[str, str] = {}
        sessions: dict[str, Acting] = {}
        for deployed, function in names.items():
            name = role_name(app, stage, function)
            try:
                arn = str(iam.get_role(RoleName=name)["Role"]["Arn"])
            except iam.exceptions.NoSuchEntityException:
                arn = str(
                    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"]["Arn"]
                )
            iam.put_role_policy(
                RoleName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policies[function])
            )
            arns[deployed] = arn
            sessions[deployed] = assume(sts, arn, deployed)
        return cls(arns, sessions)


class WorkflowSessions:
    """A session of each state machine's role, assumed on first use (Step Functions' own credentials)."""

    def __init__(self, sts_factory: Callable[[], Any]) -> None:
        self._sts_factory = sts_factory
        self._sessions: dict[str, Acting] = {}
        self._lock = threading.Lock()

    def of(self, role_arn: str, state_machine: str) -> Acting:
        with self._lock:
            if role_arn not in self._sessions:
                self._sessions[role_arn] = assume(self._sts_factory(), role_arn, state_machine.rsplit(":", 1)[-1])
            return self._sessions[role_arn]


def _as_execution_role(sessions: WorkflowSessions) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        def eval_execution(self: Any, env: Any) -> Any:
            context = env.states.context_object.context_object_data
            role = context["Execution"].get("RoleArn")
            if not role:
                return original(self, env)
            with acting_as(sessions.of(role, context["StateMachine"]["Id"])):
                return original(self, env)

        return eval_execution

    return wrap


def install_workflow_principal(patches: Patches, sessions: WorkflowSessions) -> None:
    """Run every Task state's calls (a Lambda invoke, a service integration) as the execution's role.

    moto's interpreter signs them with fixed keys (``boto_client.boto_client_for``); a task's
    ``_eval_execution`` is where the execution (and so its role) is known, on whatever thread the
    interpreter runs it (Parallel branches and timeouts use threads of their own).
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
        StateTaskService,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda

    for task_class in (StateTaskLambda, StateTaskService):
        patches.wrap("moto", task_class, "_eval_execution", _as_execution_role(sessions))
