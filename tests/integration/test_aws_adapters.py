"""The AWS adapters against moto, on resources made from the stage's own template."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.adapters.identity import CognitoIdentityProvider
from chalicelib.adapters.signing_keys import SecretsManagerSigningKeys, SigningKeyError
from chalicelib.domain.errors import (
    AuthenticationError,
    ConflictError,
    DependencyUnavailableError,
    ValidationError,
)
from tests.integration.adapter_stage import Stage, provisioned_stage

pytestmark = pytest.mark.integration


@pytest.fixture
def stage(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stage]:
    with provisioned_stage(monkeypatch) as provisioned:
        yield provisioned


PASSWORD = "Sup3r-secret"
KEY_A = "a" * 40
KEY_B = "b" * 40


@pytest.fixture
def identity(stage: Stage) -> CognitoIdentityProvider:
    return CognitoIdentityProvider(
        stage.client("cognito-idp"), stage.outputs["USER_POOL_ID"], stage.outputs["USER_POOL_CLIENT_ID"]
    )


def count_calls(client: Any, operation: str) -> list[str]:
    """Record every call of ``operation`` through a botocore event hook."""
    calls: list[str] = []
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-call.{service}.{operation}", lambda **_: calls.append(operation))
    return calls


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- identity ---------------------------------------------------------------------------------


def test_given_new_email_when_create_user_then_user_is_confirmed_and_can_log_in(
    stage: Stage, identity: CognitoIdentityProvider
) -> None:
    user_id = identity.create_user("ada@example.com", PASSWORD, "Ada")

    user = stage.client("cognito-idp").admin_get_user(
        UserPoolId=stage.outputs["USER_POOL_ID"], Username="ada@example.com"
    )
    attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    assert user["UserStatus"] == "CONFIRMED"
    assert attributes["sub"] == user_id
    assert attributes["email_verified"] == "true"
    assert attributes["name"] == "Ada"
    identity.authenticate("ada@example.com", PASSWORD)  # does not raise


def test_given_an_email_our_check_accepts_but_cognito_refuses_when_creating_then_400_not_500(
    identity: CognitoIdentityProvider,
) -> None:
    # Found by the fuzzer (tests/e2e/test_security_fuzz.py): a "/" in the local part was an unhandled 500.
    with pytest.raises(ValidationError) as refused:
        identity.create_user("mjhtx/g78-@y.7cj0jeel.info", PASSWORD, "Ada")
    assert [d.field for d in refused.value.details] == ["email"]


def test_given_user_when_wrong_password_then_authentication_error(identity: CognitoIdentityProvider) -> None:
    identity.create_user("ada@example.com", PASSWORD, "Ada")

    with pytest.raises(AuthenticationError):
        identity.authenticate("ada@example.com", PASSWORD + "x")


def test_given_no_such_user_when_authenticate_then_authentication_error(identity: CognitoIdentityProvider) -> None:
    with pytest.raises(AuthenticationError):
        identity.authenticate("nobody@example.com", PASSWORD)


def test_given_user_left_in_force_change_password_when_authenticate_then_authentication_error(
    stage: Stage, identity: CognitoIdentityProvider
) -> None:
    # The seed's registration: a temporary password only, so Cognito answers with a challenge.
    stage.client("cognito-idp").admin_create_user(
        UserPoolId=stage.outputs["USER_POOL_ID"],
        Username="seed@example.com",
        TemporaryPassword=PASSWORD,
        MessageAction="SUPPRESS",
    )

    with pytest.raises(AuthenticationError, match="NEW_PASSWORD_REQUIRED"):
        identity.authenticate("seed@example.com", PASSWORD)


def test_given_taken_email_when_create_user_then_conflict(identity: CognitoIdentityProvider) -> None:
    identity.create_user("ada@example.com", PASSWORD, "Ada")

    with pytest.raises(ConflictError):
        identity.create_user("ada@example.com", PASSWORD, "Ada again")


def test_given_weak_password_when_create_user_then_validation_error_and_no_half_created_user(
    stage: Stage, identity: CognitoIdentityProvider
) -> None:
    with pytest.raises(ValidationError) as caught:
        identity.create_user("ada@example.com", "weak", "Ada")

    assert [d.field for d in caught.value.details] == ["password"]
    idp = stage.client("cognito-idp")
    with pytest.raises(idp.exceptions.UserNotFoundException):
        idp.admin_get_user(UserPoolId=stage.outputs["USER_POOL_ID"], Username="ada@example.com")
    # The email is free again.
    assert identity.create_user("ada@example.com", PASSWORD, "Ada")


def test_given_user_when_deleted_twice_then_gone_and_second_delete_is_quiet(
    identity: CognitoIdentityProvider,
) -> None:
    identity.create_user("ada@example.com", PASSWORD, "Ada")

    identity.delete_user("ada@example.com")
    identity.delete_user("ada@example.com")

    with pytest.raises(AuthenticationError):
        identity.authenticate("ada@example.com", PASSWORD)


# -- signing keys -----------------------------------------------------------------------------


def test_given_generated_secret_when_current_then_key_k1_from_secret(stage: Stage) -> None:
    secret_id = stage.outputs["SIGNING_KEY_SECRET_ID"]
    stored = json.loads(stage.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
    keys = SecretsManagerSigningKeys(stage.client("secretsmanager"), secret_id)

    key = keys.current()

    assert key.kid == "k1"
    assert key.secret == stored["key"].encode("utf-8")
    assert len(key.secret) == 64
    assert keys.find("k1") == key


def test_given_forged_kids_when_find_then_secret_read_at_most_once_per_interval(stage: Stage) -> None:
    sm = stage.client("secretsmanager")
    calls = count_calls(sm, "GetSecretValue")
    clock = FakeClock()
    keys = SecretsManagerSigningKeys(sm, stage.outputs["SIGNING_KEY_SECRET_ID"], min_refresh_seconds=30, clock=clock)
    keys.current()
    assert len(calls) == 1

    clock.now += 29
    misses = [keys.find(f"forged-{i}") for i in range(50)]
    assert misses == [None] * 50
    assert len(calls) == 1

    clock.now += 1
    for i in range(50):
        keys.find(f"forged-again-{i}")
    assert len(calls) == 2


def test_given_fresh_cache_when_current_then_no_call_until_cache_expires(stage: Stage) -> None:
    sm = stage.client("secretsmanager")
    calls = count_calls(sm, "GetSecretValue")
    clock = FakeClock()
    keys = SecretsManagerSigningKeys(sm, stage.outputs["SIGNING_KEY_SECRET_ID"], cache_seconds=300, clock=clock)

    for _ in range(10):
        keys.current()
    clock.now += 300
    keys.current()

    assert len(calls) == 2


def test_given_rotated_secret_when_find_new_kid_then_refreshed_and_previous_kid_still_valid(stage: Stage) -> None:
    sm = stage.client("secretsmanager")
    secret_id = stage.outputs["SIGNING_KEY_SECRET_ID"]
    sm.put_secret_value(SecretId=secret_id, SecretString=json.dumps({"kid": "k1", "key": KEY_A}))
    clock = FakeClock()
    keys = SecretsManagerSigningKeys(sm, secret_id, clock=clock)
    assert keys.current().kid == "k1"

    sm.put_secret_value(
        SecretId=secret_id,
        SecretString=json.dumps({"kid": "k2", "key": KEY_B, "previous": [{"kid": "k1", "key": KEY_A}]}),
    )
    clock.now += 30
    rotated = keys.find("k2")

    assert rotated is not None and rotated.secret == KEY_B.encode()
    assert keys.current().kid == "k2"
    old = keys.find("k1")
    assert old is not None and old.secret == KEY_A.encode()


@pytest.mark.parametrize(
    ("secret", "fault"),
    [
        ("not json " + KEY_A, "not valid JSON"),
        (json.dumps({"key": KEY_A}), "'kid'"),
        (json.dumps({"kid": "k1", "key": "short-" + "s3cr3t"}), "at least 32"),
        (json.dumps({"kid": "k1", "key": KEY_A, "previous": {"kid": "k0"}}), "'previous' must be a list"),
        (json.dumps({"kid": "k1", "key": KEY_A, "previous": [{"kid": "k1", "key": KEY_B}]}), "more than once"),
    ],
)
def test_given_malformed_secret_when_first_load_then_signing_key_error_without_key_material(
    stage: Stage, secret: str, fault: str
) -> None:
    sm = stage.client("secretsmanager")
    secret_id = stage.outputs["SIGNING_KEY_SECRET_ID"]
    sm.put_secret_value(SecretId=secret_id, SecretString=secret)
    keys = SecretsManagerSigningKeys(sm, secret_id)

    with pytest.raises(SigningKeyError, match=fault) as caught:
        keys.current()

    assert KEY_A not in str(caught.value) and KEY_B not in str(caught.value) and "s3cr3t" not in str(caught.value)


def test_given_malformed_rotation_when_cache_expires_then_cached_keys_stay_in_use(stage: Stage) -> None:
    sm = stage.client("secretsmanager")
    secret_id = stage.outputs["SIGNING_KEY_SECRET_ID"]
    clock = FakeClock()
    keys = SecretsManagerSigningKeys(sm, secret_id, clock=clock)
    before = keys.current()

    sm.put_secret_value(SecretId=secret_id, SecretString="{broken")
    clock.now += 300

    assert keys.current() == before


def test_given_secrets_manager_outage_when_cache_expires_then_cached_keys_used_and_retried_once_per_interval(
    stage: Stage,
) -> None:
    sm = stage.client("secretsmanager")
    secret_id = stage.outputs["SIGNING_KEY_SECRET_ID"]
    calls = count_calls(sm, "GetSecretValue")
    clock = FakeClock()
    keys = SecretsManagerSigningKeys(sm, secret_id, clock=clock)
    before = keys.current()

    sm.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
    clock.now += 300
    served = [keys.current() for _ in range(20)]

    assert served == [before] * 20
    assert len(calls) == 2
    clock.now += 30
    keys.current()
    assert len(calls) == 3


def test_given_missing_secret_when_first_load_then_dependency_unavailable(stage: Stage) -> None:
    keys = SecretsManagerSigningKeys(stage.client("secretsmanager"), "no-such-secret")

    with pytest.raises(DependencyUnavailableError):
        keys.current()
