"""What IAM enforcement costs a call to the embedded AWS: the same DynamoDB GetItem, authorised or not.

An embedded AWS with ``IamEnforcement`` in front (as the local stage runs it) and a role holding the
API handler's policy from ``infra/policies.py``. Interleaved rounds time GetItem signed by a session
of that role (parsed, mapped, evaluated against the role's policies and allowed) and by the stage's
own credentials (passed through unevaluated). The difference is what enforcement adds to each call a
function makes; the bar keeps it small beside moto's own cost per call.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import boto3

from bench.figures import Figure, milliseconds, times
from bench.registry import Options
from bench.stats import median, ratio, spread

BAR = 1.25  # an enforced call may take at most 1.25x an unenforced one
CALLS_PER_ROUND = 200


@dataclass(frozen=True)
class IamResult:
    enforced_ms: list[float]
    open_ms: list[float]

    def figures(self) -> list[Figure]:
        enforced, unenforced = median(self.enforced_ms), median(self.open_ms)
        slowdown = ratio(enforced, unenforced)
        low, high = spread(self.enforced_ms)
        return [
            Figure(
                name="IAM enforcement, DynamoDB GetItem per call (embedded AWS)",
                value=milliseconds(enforced),
                baseline=milliseconds(unenforced),
                ratio=times(slowdown),
                bar=f"<= {BAR}x unenforced",
                holds=slowdown <= BAR,
                note=f"enforced rounds {low:.2f} to {high:.2f} ms; {len(self.enforced_ms)} interleaved rounds",
            )
        ]

    def details(self) -> str:
        added = median(self.enforced_ms) - median(self.open_ms)
        return (
            f"Each round times {CALLS_PER_ROUND} GetItem calls from one client. Enforced: signed by a "
            "session of a role with the API handler's policy, so every call is parsed, mapped to "
            "`dynamodb:GetItem` on the table and evaluated. Unenforced: the stage's own credentials, "
            f"passed through. Median added per call: {added:.3f} ms."
        )


def _clients(endpoint: str) -> tuple[Any, Any]:
    """A client as the stage (admin) and one as a session of a role with the API handler's policy."""
    from infra.policies import concrete, policy_document
    from infra.template import stage_template
    from localstage.server import ACCOUNT_ID, REGION

    def session(**keys: str) -> Any:
        return boto3.session.Session(region_name=REGION, **keys)

    admin = session(aws_access_key_id="testing", aws_secret_access_key="testing")
    document = concrete(
        policy_document("api_handler", "local", stage_template("local")),
        "aws",
        REGION,
        ACCOUNT_ID,
        f"arn:aws:cognito-idp:{REGION}:{ACCOUNT_ID}:userpool/bench",
    )
    iam = admin.client("iam", endpoint_url=endpoint)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName="bench-api", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="bench-api", PolicyName="p", PolicyDocument=json.dumps(document))
    keys = admin.client("sts", endpoint_url=endpoint).assume_role(RoleArn=role, RoleSessionName="bench")["Credentials"]
    as_role = session(
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
    )
    return admin.client("dynamodb", endpoint_url=endpoint), as_role.client("dynamodb", endpoint_url=endpoint)


def _round(client: Any, table: str) -> float:
    started = time.perf_counter()
    for _ in range(CALLS_PER_ROUND):
        client.get_item(TableName=table, Key={"user_id": {"S": "bench"}})
    return (time.perf_counter() - started) * 1000 / CALLS_PER_ROUND


def measure_iam(options: Options) -> IamResult:
    from localstage.iam.enforcement import Authorizer
    from localstage.server import EmbeddedAws

    aws = EmbeddedAws(port=0, iam=Authorizer()).start(environ={})
    try:
        admin, as_role = _clients(aws.endpoint)
        table = "ecommerce-backend-users-local"  # a table the API handler's policy grants GetItem on
        admin.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
        )
        _round(as_role, table), _round(admin, table)  # warm both clients and the server
        enforced: list[float] = []
        unenforced: list[float] = []
        for _ in range(options.rounds):
            enforced.append(_round(as_role, table))
            unenforced.append(_round(admin, table))
        return IamResult(enforced, unenforced)
    finally:
        aws.stop()
