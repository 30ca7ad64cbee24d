"""The repository contract, continued: orders, idempotency records and listing limits, against the
in-memory and the DynamoDB adapters; then what only the DynamoDB adapter shows (throttled batches,
DynamoDB's number normal form).

Users and products are in test_repository_contracts.py; the fixtures are in tests/integration/conftest.py.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest

from chalicelib.adapters.dynamodb import DynamoProductRepository
from chalicelib.adapters.memory import InMemoryOrderRepository
from chalicelib.domain.errors import ConflictError, DependencyUnavailableError, ValidationError
from chalicelib.domain.orders import FailureReason, OrderStatus
from chalicelib.domain.ports import (
    IdempotencyKeyTakenError,
    Page,
)
from tests.integration.repository_support import (
    MotoStage,
    Repositories,
    a_product,
    a_record,
    an_order,
    assert_rejected_token,
    token_of,
    walk_orders,
)

pytestmark = pytest.mark.integration


# -- orders ---------------------------------------------------------------------------------


def test_given_added_order_when_read_then_every_field_round_trips(repos: Repositories) -> None:
    order = an_order("ord_1")
    failed = replace(
        an_order("ord_2"),
        status=OrderStatus.FAILED,
        failure_reason=FailureReason.PAYMENT_FAILED,
        notifications=("order_confirmation", "payment_failed"),
        currency="EUR",
    )
    repos.orders.add(order)
    repos.orders.add(failed)

    stored, stored_failed = repos.orders.get("ord_1"), repos.orders.get("ord_2")

    assert stored == order
    assert stored_failed == failed
    assert stored is not None and stored.failure_reason is None and stored.notifications == ()
    assert [str(line.unit_price) for line in stored.items] == ["12.50", "0.10"]
    assert str(stored.total_amount) == "25.10"
    assert all(type(line.quantity) is int for line in stored.items)
    assert repos.orders.get("ord_missing") is None


def test_given_existing_order_id_when_added_again_then_conflict(repos: Repositories) -> None:
    repos.orders.add(an_order("ord_1"))

    with pytest.raises(ConflictError):
        repos.orders.add(replace(an_order("ord_1"), customer_id="usr_mallory"))
    with pytest.raises(ConflictError):
        repos.orders.add(replace(an_order("ord_1"), customer_id="usr_mallory"), a_record("usr_mallory#k", "ord_1"))

    stored = repos.orders.get("ord_1")
    assert stored is not None and stored.customer_id == "usr_alice"
    assert repos.orders.get_idempotency("usr_mallory#k") is None


@pytest.mark.parametrize(("count", "limit"), [(5, 2), (4, 2), (1, 3)])
def test_given_customer_orders_when_walking_pages_then_newest_first_each_once(
    repos: Repositories, count: int, limit: int
) -> None:
    stamps = [f"2024-05-0{day}T10:00:00.000000Z" for day in range(1, count + 1)]
    for index in (3, 0, 4, 1, 2):  # stored out of order
        if index < count:
            repos.orders.add(an_order(f"ord_{index}", "usr_alice", stamps[index]))
    repos.orders.add(an_order("ord_bob", "usr_bob", "2024-05-03T12:00:00.000000Z"))

    pages = walk_orders(repos.orders, "usr_alice", limit)

    seen = [o.order_id for page in pages for o in page.items]
    assert seen == [f"ord_{i}" for i in reversed(range(count))]
    assert len(pages) == math.ceil(count / limit)
    assert all(len(page.items) == limit for page in pages[:-1])
    assert pages[-1].next_token is None


def test_given_customer_without_orders_when_listing_then_empty_page(repos: Repositories) -> None:
    repos.orders.add(an_order("ord_1", "usr_alice"))

    assert repos.orders.list_for_customer("usr_bob", 10, None) == Page([], None)


def test_given_another_customers_token_when_listing_orders_then_rejected(repos: Repositories) -> None:
    for day in (1, 2, 3):
        repos.orders.add(an_order(f"ord_{day}", "usr_alice", f"2024-05-0{day}T10:00:00.000000Z"))
    alice_token = repos.orders.list_for_customer("usr_alice", 1, None).next_token
    assert alice_token is not None

    with pytest.raises(ValidationError) as error:
        repos.orders.list_for_customer("usr_bob", 1, alice_token)

    assert_rejected_token(error)


@pytest.mark.parametrize(
    "token",
    [
        token_of({"order_id": "ord_1", "customer_id": "usr_alice"}),
        token_of({"order_id": "ord_1", "customer_id": "usr_alice", "created_at": 20240501}),
        token_of({"product_id": "prod_1"}),
        "%%%",
    ],
    ids=["missing-created-at", "number-created-at", "product-token", "not-base64"],
)
def test_given_tampered_token_when_listing_orders_then_rejected(repos: Repositories, token: str) -> None:
    repos.orders.add(an_order("ord_1", "usr_alice"))

    with pytest.raises(ValidationError) as error:
        repos.orders.list_for_customer("usr_alice", 1, token)

    assert_rejected_token(error)


def test_given_idempotency_key_when_added_then_record_is_read_back(repos: Repositories) -> None:
    record = a_record("usr_alice#key-1", "ord_1")

    repos.orders.add(an_order("ord_1"), record)

    assert repos.orders.get_idempotency("usr_alice#key-1") == record
    assert repos.orders.get("ord_1") == an_order("ord_1")
    assert repos.orders.get_idempotency("usr_alice#other") is None


def test_given_taken_idempotency_key_when_adding_second_order_then_refused_and_nothing_written(
    repos: Repositories,
) -> None:
    first = a_record("usr_alice#key-1", "ord_1")
    repos.orders.add(an_order("ord_1", created_at="2024-05-01T10:00:00.000000Z"), first)

    with pytest.raises(IdempotencyKeyTakenError):
        repos.orders.add(an_order("ord_2", created_at="2024-05-02T10:00:00.000000Z"), replace(first, order_id="ord_2"))

    assert repos.orders.get("ord_2") is None
    assert [o.order_id for o in repos.orders.list_for_customer("usr_alice", 10, None).items] == ["ord_1"]
    assert repos.orders.get_idempotency("usr_alice#key-1") == first


def test_given_expired_idempotency_record_when_read_then_absent_and_key_reusable(repos: Repositories) -> None:
    repos.orders.add(an_order("ord_1"), a_record("usr_alice#key-1", "ord_1", expires_in=-60))

    assert repos.orders.get_idempotency("usr_alice#key-1") is None

    fresh = a_record("usr_alice#key-1", "ord_2")
    repos.orders.add(an_order("ord_2"), fresh)
    assert repos.orders.get_idempotency("usr_alice#key-1") == fresh


@pytest.mark.parametrize("limit", [0, -1])
def test_given_non_positive_limit_when_listing_then_value_error(repos: Repositories, limit: int) -> None:
    with pytest.raises(ValueError):
        repos.products.list(None, limit, None)
    with pytest.raises(ValueError):
        repos.orders.list_for_customer("usr_alice", limit, None)


# -- in-memory only: it backs the app's in-memory mode and the benchmark, so it must hold under threads --


def test_given_racing_requests_with_one_key_when_adding_in_memory_then_exactly_one_order_is_stored() -> None:
    repo = InMemoryOrderRepository()

    def place(n: int) -> str:
        try:
            repo.add(
                an_order(f"ord_{n:02d}", created_at=f"2024-05-01T10:00:{n:02d}.000000Z"), a_record("k", f"ord_{n:02d}")
            )
        except IdempotencyKeyTakenError:
            return "taken"
        return "stored"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(place, range(32)))

    record = repo.get_idempotency("k")
    assert sorted(outcomes).count("stored") == 1
    assert record is not None
    assert [o.order_id for o in repo.list_for_customer("usr_alice", 50, None).items] == [record.order_id]


# -- DynamoDB only: behaviour the in-memory store has no reason to show ----------------------


class ThrottlingClient:
    """Passes calls to moto, but reports the first ``throttled`` BatchGetItem keys as unprocessed."""

    def __init__(self, client: Any, throttled_calls: int) -> None:
        self._client = client
        self._throttled_calls = throttled_calls
        self.batch_calls: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((table, request),) = RequestItems.items()
        self.batch_calls.append(len(request["Keys"]))
        if len(self.batch_calls) <= self._throttled_calls:
            keep, later = request["Keys"][:1], request["Keys"][1:]
            response: dict[str, Any] = self._client.batch_get_item(RequestItems={table: {**request, "Keys": keep}})
            response["UnprocessedKeys"] = {table: {**request, "Keys": later}} if later else {}
            return response
        return self._client.batch_get_item(RequestItems=RequestItems)


def test_given_throttled_batch_when_getting_many_then_unprocessed_keys_are_retried(moto_stage: MotoStage) -> None:
    table = moto_stage.outputs["PRODUCTS_TABLE"]
    seed = DynamoProductRepository(moto_stage.client, table)
    for pid in ("prod_a", "prod_b", "prod_c"):
        seed.add(a_product(pid))
    client = ThrottlingClient(moto_stage.client, throttled_calls=2)
    sleeps: list[float] = []

    found = DynamoProductRepository(client, table, sleep=sleeps.append).get_many(["prod_a", "prod_b", "prod_c"])

    assert sorted(found) == ["prod_a", "prod_b", "prod_c"]
    assert client.batch_calls == [3, 2, 1]
    assert len(sleeps) == 2 and sleeps[0] < sleeps[1]


def test_given_batch_that_stays_throttled_when_getting_many_then_dependency_unavailable(
    moto_stage: MotoStage,
) -> None:
    table = moto_stage.outputs["PRODUCTS_TABLE"]
    seed = DynamoProductRepository(moto_stage.client, table)
    for pid in ("prod_a", "prod_b", "prod_c", "prod_d"):
        seed.add(a_product(pid))
    client = ThrottlingClient(moto_stage.client, throttled_calls=99)

    repo = DynamoProductRepository(client, table, sleep=lambda _: None, max_batch_attempts=3)
    with pytest.raises(DependencyUnavailableError):
        repo.get_many(["prod_a", "prod_b", "prod_c", "prod_d"])

    assert client.batch_calls == [4, 3, 2]


def test_given_more_than_a_hundred_ids_when_getting_many_then_batches_hold_at_most_a_hundred(
    moto_stage: MotoStage,
) -> None:
    table = moto_stage.outputs["PRODUCTS_TABLE"]
    client = ThrottlingClient(moto_stage.client, throttled_calls=0)

    DynamoProductRepository(client, table).get_many([f"prod_{i:03d}" for i in range(250)])

    assert client.batch_calls == [100, 100, 50]


def test_given_price_stored_in_dynamodb_normal_form_when_read_then_cents_scale_is_restored(
    moto_stage: MotoStage,
) -> None:
    # Real DynamoDB drops trailing zeros ("19.90" comes back as "19.9"); moto keeps them, so write it that way.
    table = moto_stage.outputs["PRODUCTS_TABLE"]
    DynamoProductRepository(moto_stage.client, table).add(a_product("prod_1"))
    for pid, stored in (("prod_1", "19.9"), ("prod_2", "0.125")):
        moto_stage.client.put_item(
            TableName=table,
            Item={
                "product_id": {"S": pid},
                "name": {"S": "Mug"},
                "category": {"S": "mugs"},
                "price": {"N": stored},
                "stock": {"N": "3"},
            },
        )

    found = DynamoProductRepository(moto_stage.client, table).get_many(["prod_1", "prod_2"])

    assert str(found["prod_1"].price) == "19.90"
    assert str(found["prod_2"].price) == "0.125"  # never rounded: money stays exact
    assert (found["prod_2"].description, found["prod_2"].created_at) == ("", "")
