"""The in-memory adapters: the same promises as the AWS ones, without AWS."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from chalicelib.adapters.dispatch import RecordingDispatcher, to_json
from chalicelib.adapters.identity import InMemoryIdentityProvider
from chalicelib.adapters.signing_keys import (
    SigningKeyError,
    StaticSigningKeys,
    generate_signing_keys,
    parse_secret,
)
from chalicelib.adapters.uploads import InMemoryUploadSigner, decode_policy
from chalicelib.domain.errors import (
    AuthenticationError,
    ConflictError,
    DependencyUnavailableError,
    ValidationError,
)
from chalicelib.domain.orders import Order, OrderLine, ShippingAddress
from chalicelib.domain.ports import SigningKey

pytestmark = pytest.mark.unit

PASSWORD = "Sup3r-secret"
# Low scrypt cost: these tests check behaviour, not hashing strength.
FAST = 2**4


@pytest.fixture
def identity() -> InMemoryIdentityProvider:
    return InMemoryIdentityProvider(scrypt_n=FAST)


def make_order(order_id: str = "ord_1") -> Order:
    return Order(
        order_id=order_id,
        customer_id="user-1",
        items=(OrderLine("prod-1", "Mug", 2, Decimal("12.50")),),
        shipping_address=ShippingAddress("Ada", "12 St James's Sq", "London", "SW1Y 4JH", "GB"),
        payment_token="tok_success",
        total_amount=Decimal("25.00"),
        created_at="2024-01-01T00:00:00.000000Z",
        updated_at="2024-01-01T00:00:00.000000Z",
    )


# -- identity ---------------------------------------------------------------------------------


def test_given_new_user_when_authenticate_with_right_password_then_accepted(
    identity: InMemoryIdentityProvider,
) -> None:
    user_id = identity.create_user("ada@example.com", PASSWORD, "Ada")

    identity.authenticate("ada@example.com", PASSWORD)  # does not raise
    assert user_id and user_id != "ada@example.com"


def test_given_two_users_when_created_then_distinct_ids(identity: InMemoryIdentityProvider) -> None:
    assert identity.create_user("a@example.com", PASSWORD, "A") != identity.create_user("b@example.com", PASSWORD, "B")


@pytest.mark.parametrize(
    ("email", "password"), [("ada@example.com", PASSWORD + "x"), ("ada@example.com", ""), ("bob@example.com", PASSWORD)]
)
def test_given_user_when_wrong_password_or_unknown_email_then_authentication_error(
    identity: InMemoryIdentityProvider, email: str, password: str
) -> None:
    identity.create_user("ada@example.com", PASSWORD, "Ada")

    with pytest.raises(AuthenticationError):
        identity.authenticate(email, password)


def test_given_taken_email_when_create_user_then_conflict(identity: InMemoryIdentityProvider) -> None:
    identity.create_user("ada@example.com", PASSWORD, "Ada")

    with pytest.raises(ConflictError):
        identity.create_user("ada@example.com", "An0ther-pass", "Ada again")
    identity.authenticate("ada@example.com", PASSWORD)  # the first password still holds


def test_given_weak_password_when_create_user_then_validation_error_on_password(
    identity: InMemoryIdentityProvider,
) -> None:
    with pytest.raises(ValidationError) as caught:
        identity.create_user("ada@example.com", "weak", "Ada")

    assert [d.field for d in caught.value.details] == ["password"]
    with pytest.raises(AuthenticationError):
        identity.authenticate("ada@example.com", "weak")


def test_given_user_when_deleted_then_cannot_log_in_and_email_is_free_again(
    identity: InMemoryIdentityProvider,
) -> None:
    identity.create_user("ada@example.com", PASSWORD, "Ada")

    identity.delete_user("ada@example.com")
    identity.delete_user("ada@example.com")  # already gone: no error

    with pytest.raises(AuthenticationError):
        identity.authenticate("ada@example.com", PASSWORD)
    identity.create_user("ada@example.com", PASSWORD, "Ada")


def test_given_same_password_for_two_users_when_stored_then_hashes_differ(identity: InMemoryIdentityProvider) -> None:
    identity.create_user("a@example.com", PASSWORD, "A")
    identity.create_user("b@example.com", PASSWORD, "B")

    stored = list(identity._users.values())
    assert stored[0][1] != stored[1][1]  # salts
    assert stored[0][2] != stored[1][2]  # hashes
    assert all(PASSWORD.encode() not in entry[2] for entry in stored)


def test_given_concurrent_registrations_of_one_email_when_created_then_exactly_one_wins(
    identity: InMemoryIdentityProvider,
) -> None:
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def register() -> None:
        barrier.wait()
        try:
            identity.create_user("race@example.com", PASSWORD, "Racer")
            outcomes.append("created")
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=register) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["conflict"] * 7 + ["created"]


# -- signing keys -----------------------------------------------------------------------------


def test_given_static_keys_when_current_and_find_then_first_is_current_and_all_are_found() -> None:
    new, old = SigningKey("k2", b"n" * 32), SigningKey("k1", b"o" * 32)
    keys = StaticSigningKeys([new, old])

    assert keys.current() == new
    assert keys.find("k1") == old
    assert keys.find("k3") is None


@pytest.mark.parametrize("given", [[], [SigningKey("k1", b"a" * 32), SigningKey("k1", b"b" * 32)]])
def test_given_no_keys_or_duplicate_kids_when_static_keys_built_then_signing_key_error(
    given: list[SigningKey],
) -> None:
    with pytest.raises(SigningKeyError):
        StaticSigningKeys(given)


def test_given_two_generations_when_generate_signing_keys_then_random_strong_keys() -> None:
    first, second = generate_signing_keys().current(), generate_signing_keys().current()

    assert first.kid != second.kid
    assert first.secret != second.secret
    assert len(first.secret) >= 32
    assert generate_signing_keys().find(first.kid) is None


def test_given_secret_with_previous_when_parsed_then_current_first_then_previous() -> None:
    keys = parse_secret(
        '{"kid": "k2", "key": "' + "n" * 40 + '", "previous": [{"kid": "k1", "key": "' + "o" * 40 + '"}]}'
    )

    assert keys == [SigningKey("k2", b"n" * 40), SigningKey("k1", b"o" * 40)]


@pytest.mark.parametrize(
    "secret", ['["k1"]', '{"kid": "k1"}', '{"kid": "", "key": "' + "x" * 40 + '"}', '{"kid": "k1", "key": 12345}']
)
def test_given_malformed_secret_when_parsed_then_signing_key_error(secret: str) -> None:
    with pytest.raises(SigningKeyError):
        parse_secret(secret)


# -- dispatch ---------------------------------------------------------------------------------


def test_given_recording_dispatcher_when_order_placed_then_order_recorded() -> None:
    dispatcher = RecordingDispatcher()

    dispatcher.order_placed(make_order("ord_1"))
    dispatcher.order_placed(make_order("ord_2"))

    assert [o.order_id for o in dispatcher.orders] == ["ord_1", "ord_2"]


def test_given_fail_next_two_when_three_orders_placed_then_two_fail_and_third_is_recorded() -> None:
    dispatcher = RecordingDispatcher()
    dispatcher.fail_next = 2

    for order_id in ("ord_1", "ord_2"):
        with pytest.raises(DependencyUnavailableError, match="Idempotency-Key"):
            dispatcher.order_placed(make_order(order_id))
    dispatcher.order_placed(make_order("ord_3"))

    assert [o.order_id for o in dispatcher.orders] == ["ord_3"]
    assert dispatcher.fail_next == 0


def test_given_decimals_when_to_json_then_json_numbers_and_other_types_refused() -> None:
    assert to_json({"a": Decimal("12.50"), "b": Decimal("3"), "c": [Decimal("0.1")]}) == '{"a":12.5,"b":3,"c":[0.1]}'
    with pytest.raises(TypeError):
        to_json({"when": datetime(2024, 1, 1, tzinfo=UTC)})


# -- uploads ----------------------------------------------------------------------------------


def fixed_clock() -> datetime:
    return datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def test_given_in_memory_signer_when_presign_then_policy_pins_type_size_key_and_expiry() -> None:
    signer = InMemoryUploadSigner(bucket="local-uploads", base_url="http://localhost:8000/_uploads", clock=fixed_clock)

    form = signer.presign("uploads/u1/upl_1/cat.png", "image/png", 1024, 900)

    assert form["url"] == "http://localhost:8000/_uploads/local-uploads"
    policy = decode_policy(form)
    assert policy["expiration"] == "2024-05-01T12:15:00Z"
    assert policy["conditions"] == [
        {"Content-Type": "image/png"},
        ["content-length-range", 1, 1024],
        {"bucket": "local-uploads"},
        {"key": "uploads/u1/upl_1/cat.png"},
    ]
    fields = form["fields"]
    assert isinstance(fields, dict)
    assert set(fields) == {
        "Content-Type",
        "key",
        "policy",
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-signature",
    }
    assert fields["key"] == "uploads/u1/upl_1/cat.png"
    assert fields["Content-Type"] == "image/png"


def test_given_same_inputs_and_clock_when_presigned_twice_then_identical_forms() -> None:
    signer = InMemoryUploadSigner(clock=fixed_clock)

    first = signer.presign("k", "application/pdf", 10, 60)
    second = signer.presign("k", "application/pdf", 10, 60)
    other = signer.presign("k", "application/pdf", 11, 60)

    assert first == second
    assert other != first
