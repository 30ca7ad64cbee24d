"""The Authorizer's remembered decisions (localstage/iam/enforcement.py, ``Decisions``): a repeated call
is not evaluated again, and a changed role or queue policy applies to the very next call."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localstage.iam import enforcement
from localstage.iam.actions import Target
from localstage.iam.enforcement import Authorizer
from localstage.iam.moto_state import role_session

pytestmark = pytest.mark.unit

ACCOUNT, REGION = "123456789012", "us-east-1"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders"
TRUST = {
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
}


def _policy(*actions: str) -> str:
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": TABLE_ARN}]}
    )


@pytest.fixture
def iam() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        client = session.client("iam")
        arn = client.create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        client.put_role_policy(RoleName="fn", PolicyName="p", PolicyDocument=_policy("dynamodb:GetItem"))
        keys = session.client("sts").assume_role(RoleArn=arn, RoleSessionName="session")["Credentials"]
        found = role_session(keys["AccessKeyId"])
        assert found is not None
        yield client, found


def test_given_the_same_call_again_when_decided_then_it_is_evaluated_once_and_counted_each_time(
    iam: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, session = iam
    evaluated: list[str] = []
    evaluate = enforcement.evaluate

    def counted(request: Any, *rest: Any) -> Any:
        evaluated.append(request.action)
        return evaluate(request, *rest)

    monkeypatch.setattr(enforcement, "evaluate", counted)
    authorizer = Authorizer()
    # WHEN a function makes the same call three times, and another call once
    decisions = [authorizer.decide(session, Target("dynamodb:GetItem", TABLE_ARN)) for _ in range(3)]
    other = authorizer.decide(session, Target("dynamodb:PutItem", TABLE_ARN))
    # THEN each call is decided as before, but evaluated once per distinct call
    assert [d.allowed for d in decisions] == [True, True, True] and not other.allowed
    assert evaluated == ["dynamodb:GetItem", "dynamodb:PutItem"]
    # AND the ledger still counts every allowed use
    (use,) = authorizer.ledger.report()["allowed"]
    assert (use["action"], use["count"]) == ("dynamodb:GetItem", 3)


def test_given_a_remembered_decision_when_the_role_policy_changes_then_the_next_call_is_decided_anew(
    iam: tuple[Any, Any],
) -> None:
    client, session = iam
    authorizer = Authorizer()
    target = Target("dynamodb:GetItem", TABLE_ARN)
    assert authorizer.decide(session, target).allowed
    # WHEN the grant is taken away, then given back
    client.put_role_policy(RoleName="fn", PolicyName="p", PolicyDocument=_policy("dynamodb:PutItem"))
    refused = authorizer.decide(session, target)
    client.put_role_policy(RoleName="fn", PolicyName="p", PolicyDocument=_policy("dynamodb:GetItem"))
    # THEN the call is refused at once, and allowed again at once: as AWS applies a policy change
    assert not refused.allowed and "no identity-based policy allows" in refused.reason
    assert authorizer.decide(session, target).allowed


def test_given_calls_that_differ_only_in_condition_keys_then_each_is_decided_with_its_own(iam: tuple[Any, Any]) -> None:
    client, session = iam
    conditional = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": "*",
                       "Condition": {"StringEquals": {"events:source": "ecommerce.orders"}}}],
    }  # fmt: skip
    client.put_role_policy(RoleName="fn", PolicyName="p", PolicyDocument=json.dumps(conditional))
    authorizer = Authorizer()
    # WHEN the same action goes to the same resource with two sources, each asked twice
    sources = ["ecommerce.orders", "ecommerce.other", "ecommerce.orders", "ecommerce.other"]
    allowed = [
        authorizer.decide(session, Target("events:PutEvents", "*", {"events:source": [source]})).allowed
        for source in sources
    ]
    # THEN the condition decides each, remembered or not
    assert allowed == [True, False, True, False]
