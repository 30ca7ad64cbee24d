"""IAM's evaluation logic as the local stage applies it (localstage/iam/policy.py), case by case.

Each case is one rule of https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
or of the condition operators page; the last ones show that what the evaluator cannot read never allows.
"""

from __future__ import annotations

from typing import Any

import pytest

from localstage.iam.policy import Request, evaluate, wildcard_match

pytestmark = pytest.mark.unit

ROLE_SESSION = (
    "arn:aws:sts::123456789012:assumed-role/ecommerce-backend-local-jwt_auth/ecommerce-backend-local-jwt_auth"
)
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/ecommerce-backend-users-local"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:notification-events"
RULE = "arn:aws:events:us-east-1:123456789012:rule/ecommerce-events-local/notification-events"


def allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource, **extra}],
    }


def get_item(resource: str = TABLE, **context: Any) -> Request:
    return Request("dynamodb:GetItem", resource, principal_arn=ROLE_SESSION, context=context)


def test_given_no_policy_when_evaluating_then_implicit_deny_in_aws_wording() -> None:
    decision = evaluate(get_item(), {})
    assert not decision.allowed
    assert decision.reason == "no identity-based policy allows the dynamodb:GetItem action"


def test_given_an_allow_on_the_table_then_allowed_and_the_statement_is_named() -> None:
    decision = evaluate(get_item(), {"p": allow("dynamodb:GetItem", TABLE)})
    assert decision.allowed and decision.matched is not None
    assert (decision.matched.policy, decision.matched.index) == ("identity:p", 0)


def test_given_an_allow_on_another_table_then_denied() -> None:
    assert not evaluate(get_item(), {"p": allow("dynamodb:GetItem", TABLE.replace("users", "orders"))}).allowed


def test_given_actions_then_they_match_case_insensitively_and_with_wildcards() -> None:
    assert evaluate(get_item(), {"p": allow("DynamoDB:getitem", TABLE)}).allowed
    assert evaluate(get_item(), {"p": allow("dynamodb:Get*", TABLE)}).allowed
    assert evaluate(get_item(), {"p": allow("dynamodb:?etItem", TABLE)}).allowed
    assert not evaluate(get_item(), {"p": allow("dynamodb:GetItems", TABLE)}).allowed


def test_given_resources_then_they_match_case_sensitively_with_star_and_question_mark() -> None:
    assert evaluate(get_item(TABLE + "/index/EmailIndex"), {"p": allow("dynamodb:GetItem", TABLE + "/index/*")}).allowed
    assert not evaluate(get_item(TABLE.upper()), {"p": allow("dynamodb:GetItem", TABLE)}).allowed
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:signing-key-AbCdEf"
    request = Request("secretsmanager:GetSecretValue", secret, principal_arn=ROLE_SESSION)
    pattern = "arn:aws:secretsmanager:us-east-1:123456789012:secret:signing-key-??????"
    assert evaluate(request, {"p": allow("secretsmanager:GetSecretValue", pattern)}).allowed
    assert not evaluate(
        Request("secretsmanager:GetSecretValue", secret + "x", principal_arn=ROLE_SESSION),
        {"p": allow("secretsmanager:GetSecretValue", pattern)},
    ).allowed


def test_given_an_explicit_deny_anywhere_then_it_wins_over_any_allow() -> None:
    deny = {"Statement": [{"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"}]}
    decision = evaluate(get_item(), {"allow": allow("dynamodb:GetItem", TABLE), "deny": deny})
    assert not decision.allowed and decision.explicit_deny
    assert decision.reason == "with an explicit deny in an identity-based policy"


def test_given_not_action_and_not_resource_then_they_exclude() -> None:
    everything_but_get = {"Statement": [{"Effect": "Allow", "NotAction": "dynamodb:GetItem", "Resource": "*"}]}
    assert not evaluate(get_item(), {"p": everything_but_get}).allowed
    all_but_table = {"Statement": [{"Effect": "Allow", "Action": "dynamodb:GetItem", "NotResource": TABLE}]}
    assert not evaluate(get_item(), {"p": all_but_table}).allowed
    assert evaluate(get_item(TABLE + "x"), {"p": all_but_table}).allowed


def test_given_a_service_principal_then_only_a_resource_policy_naming_it_allows() -> None:
    request = Request("sqs:SendMessage", QUEUE, service="events.amazonaws.com", context={"aws:SourceArn": RULE})
    statement = {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage"}
    queue_policy = {"Statement": [{**statement, "Resource": QUEUE}]}
    assert evaluate(request, None, queue_policy).allowed
    for_sns = {"Statement": [{**statement, "Principal": {"Service": "sns.amazonaws.com"}, "Resource": QUEUE}]}
    decision = evaluate(request, None, for_sns)
    assert not decision.allowed
    assert decision.reason == "no resource-based policy allows the sqs:SendMessage action"


def test_given_a_source_arn_condition_then_only_that_rule_may_send() -> None:
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": QUEUE,
        "Condition": {"ArnEquals": {"aws:SourceArn": RULE}},
    }
    policy = {"Statement": [statement]}

    def from_rule(rule: str) -> Request:
        return Request("sqs:SendMessage", QUEUE, service="events.amazonaws.com", context={"aws:SourceArn": rule})

    assert evaluate(from_rule(RULE), None, policy).allowed
    assert not evaluate(from_rule(RULE.replace("notification", "other")), None, policy).allowed
    # condition keys are case-insensitive
    assert evaluate(
        from_rule(RULE), None, {"Statement": [{**statement, "Condition": {"ArnLike": {"AWS:SourceArn": RULE}}}]}
    ).allowed


def test_given_a_role_arn_in_a_resource_policy_then_its_sessions_match() -> None:
    role = "arn:aws:iam::123456789012:role/ecommerce-backend-local-jwt_auth"
    policy = {
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": role}, "Action": "dynamodb:GetItem", "Resource": TABLE}]
    }
    assert evaluate(get_item(), {}, policy).allowed
    other = {"Statement": [{**policy["Statement"][0], "Principal": {"AWS": role + "x"}}]}
    assert not evaluate(get_item(), {}, other).allowed


@pytest.mark.parametrize(
    ("operator", "expected", "actual", "holds"),
    [
        ("StringEquals", "a", "a", True),
        ("StringEquals", ["x", "a"], "a", True),
        ("StringEquals", "a", "A", False),
        ("StringEqualsIgnoreCase", "a", "A", True),
        ("StringNotEquals", "a", "b", True),
        ("StringNotEquals", "a", "a", False),
        ("StringLike", "ord_*", "ord_1", True),
        ("StringNotLike", "ord_*", "ord_1", False),
        ("ArnLike", "arn:aws:events:*:*:rule/*", RULE, True),
        ("ArnLike", "arn:aws:events:*:rule/*", RULE, False),  # five parts: not an ARN pattern
        ("ArnNotEquals", RULE, RULE, False),
        ("NumericLessThan", "10", "9", True),
        ("NumericLessThan", "10", "10", False),
        ("NumericGreaterThanEquals", "10", "10", True),
        ("NumericEquals", "10", "ten", False),
        ("Bool", "true", "True", True),
    ],
)
def test_given_a_condition_operator_when_evaluated_then_as_aws_defines_it(
    operator: str, expected: Any, actual: str, holds: bool
) -> None:
    policy = {"p": allow("dynamodb:GetItem", TABLE, Condition={operator: {"k:key": expected}})}
    assert evaluate(get_item(**{"k:key": actual}), policy).allowed is holds


def test_given_a_missing_key_then_a_condition_fails_unless_negated_or_if_exists_or_null() -> None:
    def with_condition(condition: dict[str, Any]) -> bool:
        return evaluate(get_item(), {"p": allow("dynamodb:GetItem", TABLE, Condition=condition)}).allowed

    assert not with_condition({"StringEquals": {"k:missing": "a"}})
    assert with_condition({"StringNotEquals": {"k:missing": "a"}})
    assert with_condition({"StringEqualsIfExists": {"k:missing": "a"}})
    assert with_condition({"Null": {"k:missing": "true"}})
    assert not with_condition({"Null": {"k:missing": "false"}})


def test_given_set_qualifiers_then_any_and_all_values_are_tested() -> None:
    def sources(condition: dict[str, Any], values: list[str]) -> bool:
        request = Request("events:PutEvents", "*", principal_arn=ROLE_SESSION, context={"events:source": values})
        return evaluate(request, {"p": allow("events:PutEvents", "*", Condition=condition)}).allowed

    assert sources({"ForAnyValue:StringEquals": {"events:source": "shop"}}, ["shop", "other"])
    assert not sources({"ForAllValues:StringEquals": {"events:source": "shop"}}, ["shop", "other"])
    assert sources({"ForAllValues:StringEquals": {"events:source": ["shop", "other"]}}, ["shop", "other"])


def test_given_an_operator_the_stage_cannot_evaluate_then_an_allow_never_allows() -> None:
    policy = {"p": allow("dynamodb:GetItem", TABLE, Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})}
    decision = evaluate(get_item(**{"aws:SourceIp": "10.1.2.3"}), policy)
    assert not decision.allowed
    assert "could not evaluate" in decision.reason and "IpAddress" in decision.reason


def test_given_an_operator_the_stage_cannot_evaluate_then_a_deny_denies() -> None:
    deny = {
        "Statement": [
            {
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateLessThan": {"aws:CurrentTime": "2020-01-01"}},
            }
        ]
    }
    assert not evaluate(get_item(), {"allow": allow("dynamodb:GetItem", TABLE), "deny": deny}).allowed


def test_given_a_policy_variable_in_a_resource_then_it_never_allows() -> None:
    policy = {"p": allow("dynamodb:GetItem", "arn:aws:dynamodb:*:*:table/${aws:username}")}
    assert not evaluate(get_item(), policy).allowed


def test_wildcards_cross_colons_and_slashes_in_resources() -> None:
    assert wildcard_match(
        "arn:aws:logs:*:*:log-group:/aws/lambda/f:*", "arn:aws:logs:r:a:log-group:/aws/lambda/f:log-stream:x/y"
    )
    assert not wildcard_match(
        "arn:aws:logs:*:*:log-group:/aws/lambda/f:*", "arn:aws:logs:r:a:log-group:/aws/lambda/g:log-stream:x"
    )
