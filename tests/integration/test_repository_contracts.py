"""One contract for the repositories, run against the in-memory and the DynamoDB adapters.

The DynamoDB run uses moto in-process with the stage's own template applied, so the
tables, key names and indexes are the ones a deployment gets.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.adapters.dynamodb import DynamoOrderRepository, DynamoProductRepository, DynamoUserRepository
from chalicelib.adapters.memory import InMemoryOrderRepository, InMemoryProductRepository, InMemoryUserRepository
from chalicelib.domain.catalog import Product, ProductChanges
from chalicelib.domain.errors import ConflictError, DependencyUnavailableError, NotFoundError, ValidationError
from chalicelib.domain.orders import FailureReason, Order, OrderLine, OrderStatus, ShippingAddress
from chalicelib.domain.ports import (
    IdempotencyKeyTakenError,
    IdempotencyRecord,
    OrderRepository,
    Page,
    ProductRepository,
    UserRepository,
)
from chalicelib.domain.users import UserProfile
from infra.template import stage_template
from localstage.provision import Provisioner

pytestmark = pytest.mark.integration

REGION = "us-east-1"


@dataclass
class Repositories:
    users: UserRepository
    products: ProductRepository
    orders: OrderRepository


@dataclass
class MotoStage:
    client: Any
    outputs: dict[str, str]


def _tables_only(template: dict[str, Any]) -> dict[str, Any]:
    """The stage's DynamoDB tables and the outputs naming them: what the repositories use, as the stage
    declares it (the whole stage, a user pool and 66 alarms included, took about 1.3 s per test)."""
    tables = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::DynamoDB::Table"}
    outputs = {k: o for k, o in template["Outputs"].items() if o["Value"] in ({"Ref": t} for t in tables)}
    return {"Resources": tables, "Outputs": outputs}


@pytest.fixture
def moto_stage(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoStage]:
    """GIVEN the test stage's tables, provisioned from the template inside moto."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        outputs = Provisioner(session).apply(_tables_only(stage_template("test"))).outputs
        yield MotoStage(session.client("dynamodb"), outputs)


@pytest.fixture(params=["memory", "dynamodb"])
def repos(request: pytest.FixtureRequest) -> Repositories:
    if request.param == "memory":
        return Repositories(InMemoryUserRepository(), InMemoryProductRepository(), InMemoryOrderRepository())
    stage: MotoStage = request.getfixturevalue("moto_stage")
    out = stage.outputs
    return Repositories(
        DynamoUserRepository(stage.client, out["USERS_TABLE"]),
        DynamoProductRepository(stage.client, out["PRODUCTS_TABLE"], sleep=lambda _: None),
        DynamoOrderRepository(stage.client, out["ORDERS_TABLE"], out["IDEMPOTENCY_TABLE"]),
    )


# -- builders -------------------------------------------------------------------------------


def a_user(user_id: str = "usr_1", email: str = "ada@example.com") -> UserProfile:
    return UserProfile(
        user_id=user_id,
        email=email,
        name="Ada Lovelace",
        created_at="2024-05-01T10:00:00.000000Z",
        roles=("user",),
        preferences={"notifications": True, "marketing_emails": False, "digest": {"day": 3}},
    )


def a_product(product_id: str, category: str = "mugs", price: str = "19.90", stock: int = 5) -> Product:
    return Product(
        product_id=product_id,
        name=f"Product {product_id}",
        category=category,
        price=Decimal(price),
        stock=stock,
        description="Stoneware, 350 ml",
        created_at="2024-05-01T10:00:00.000000Z",
        updated_at="2024-05-01T10:00:00.000000Z",
    )


def an_order(order_id: str, customer_id: str = "usr_alice", created_at: str = "2024-05-01T10:00:00.000000Z") -> Order:
    return Order(
        order_id=order_id,
        customer_id=customer_id,
        items=(
            OrderLine("prod_mug", "Mug", 2, Decimal("12.50")),
            OrderLine("prod_tea", "Green tea", 1, Decimal("0.10")),
        ),
        shipping_address=ShippingAddress("Ada Lovelace", "1 Analytical Way", "London", "N1 9GU", "GB"),
        payment_token="tok_success",
        total_amount=Decimal("25.10"),
        created_at=created_at,
        updated_at=created_at,
        correlation_id=f"corr-{order_id}",
    )


def a_record(key: str, order_id: str, expires_in: int = 3600) -> IdempotencyRecord:
    return IdempotencyRecord(key, "fingerprint-1", order_id, int(time.time()) + expires_in)


def token_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def walk_products(repo: ProductRepository, category: str | None, limit: int) -> list[Page[Product]]:
    pages = [repo.list(category, limit, None)]
    while pages[-1].next_token is not None:
        assert len(pages) < 100, "pagination does not terminate"
        pages.append(repo.list(category, limit, pages[-1].next_token))
    return pages


def walk_orders(repo: OrderRepository, customer_id: str, limit: int) -> list[Page[Order]]:
    pages = [repo.list_for_customer(customer_id, limit, None)]
    while pages[-1].next_token is not None:
        assert len(pages) < 100, "pagination does not terminate"
        pages.append(repo.list_for_customer(customer_id, limit, pages[-1].next_token))
    return pages


def assert_rejected_token(error: pytest.ExceptionInfo[ValidationError]) -> None:
    assert [detail.field for detail in error.value.details] == ["next_token"]


# -- users ----------------------------------------------------------------------------------


def test_given_added_user_when_read_by_id_and_email_then_profile_round_trips(repos: Repositories) -> None:
    user = a_user()
    repos.users.add(user)

    by_id = repos.users.get("usr_1")
    by_email = repos.users.get_by_email("ada@example.com")

    assert by_id == user
    assert by_email == user
    assert by_id is not None and by_id.roles == ("user",)
    assert by_id.preferences == {"notifications": True, "marketing_emails": False, "digest": {"day": 3}}
    assert type(by_id.preferences["digest"]["day"]) is int


def test_given_unknown_user_when_read_then_none(repos: Repositories) -> None:
    repos.users.add(a_user())

    assert repos.users.get("usr_missing") is None
    assert repos.users.get_by_email("nobody@example.com") is None


def test_given_existing_user_id_when_added_again_then_conflict_and_original_kept(repos: Repositories) -> None:
    repos.users.add(a_user())

    with pytest.raises(ConflictError):
        repos.users.add(replace(a_user(email="other@example.com"), name="Impostor"))

    stored = repos.users.get("usr_1")
    assert stored is not None and stored.name == "Ada Lovelace"
    assert repos.users.get_by_email("other@example.com") is None


def test_given_taken_email_when_another_user_is_added_then_conflict(repos: Repositories) -> None:
    repos.users.add(a_user())

    with pytest.raises(ConflictError):
        repos.users.add(a_user(user_id="usr_2"))

    assert repos.users.get("usr_2") is None


def test_given_stored_user_when_saved_with_admin_role_then_new_roles_are_read_back(repos: Repositories) -> None:
    repos.users.add(a_user())

    repos.users.save(a_user().with_role("admin"))

    stored = repos.users.get_by_email("ada@example.com")
    assert stored is not None and stored.roles == ("admin", "user")
    assert stored.is_admin


# -- products -------------------------------------------------------------------------------


def test_given_added_product_when_read_then_price_is_exact_decimal_and_stock_int(repos: Repositories) -> None:
    product = a_product("prod_1", price="19.90", stock=7)
    repos.products.add(product)

    stored = repos.products.get("prod_1")

    assert stored == product
    assert stored is not None
    assert isinstance(stored.price, Decimal) and str(stored.price) == "19.90"
    assert type(stored.stock) is int and stored.stock == 7
    assert repos.products.get("prod_missing") is None


def test_given_existing_product_when_added_again_then_conflict_and_original_kept(repos: Repositories) -> None:
    repos.products.add(a_product("prod_1", price="19.90"))

    with pytest.raises(ConflictError):
        repos.products.add(a_product("prod_1", price="1.00"))

    stored = repos.products.get("prod_1")
    assert stored is not None and stored.price == Decimal("19.90")


def test_given_missing_product_when_saved_then_not_found_and_nothing_written(repos: Repositories) -> None:
    with pytest.raises(NotFoundError):
        repos.products.update("prod_gone", ProductChanges(stock=1), "t1")

    assert repos.products.get("prod_gone") is None


def test_given_product_when_saved_in_new_category_then_listings_follow(repos: Repositories) -> None:
    repos.products.add(a_product("prod_1", category="mugs", price="19.90"))

    repos.products.update("prod_1", ProductChanges(category="teapots", price=Decimal("24.99"), stock=2), "t1")

    stored = repos.products.get("prod_1")
    assert stored is not None and (stored.category, stored.price, stored.stock) == ("teapots", Decimal("24.99"), 2)
    assert repos.products.list("mugs", 10, None).items == []
    assert [p.product_id for p in repos.products.list("teapots", 10, None).items] == ["prod_1"]


def test_given_stock_changed_by_another_writer_when_editing_the_description_then_stock_is_kept(
    repos: Repositories,
) -> None:
    repos.products.add(a_product("prod_1", stock=5))
    repos.products.update("prod_1", ProductChanges(stock=2), "t1")  # e.g. the workflow taking a hold

    edited = repos.products.update("prod_1", ProductChanges(description="now in blue"), "t2")

    assert (edited.stock, edited.description, edited.updated_at) == (2, "now in blue", "t2")
    assert repos.products.get("prod_1") == edited


def test_given_two_categories_when_listing_one_or_all_then_only_matching_products(repos: Repositories) -> None:
    for pid in ("prod_a", "prod_b", "prod_c"):
        repos.products.add(a_product(pid, category="mugs"))
    for pid in ("prod_x", "prod_y"):
        repos.products.add(a_product(pid, category="books"))

    mugs = repos.products.list("mugs", 10, None)
    everything = repos.products.list(None, 10, None)
    nothing = repos.products.list("lamps", 10, None)

    assert sorted(p.product_id for p in mugs.items) == ["prod_a", "prod_b", "prod_c"]
    assert sorted(p.product_id for p in everything.items) == ["prod_a", "prod_b", "prod_c", "prod_x", "prod_y"]
    assert (mugs.next_token, everything.next_token) == (None, None)
    assert nothing == Page([], None)


@pytest.mark.parametrize("category", [None, "mugs"])
@pytest.mark.parametrize(("count", "limit"), [(7, 3), (6, 3), (3, 3), (2, 5), (1, 1)])
def test_given_products_when_walking_pages_then_each_seen_once_and_last_page_has_no_token(
    repos: Repositories, category: str | None, count: int, limit: int
) -> None:
    expected = [f"prod_{i:03d}" for i in range(count)]
    for pid in expected:
        repos.products.add(a_product(pid, category="mugs"))
    repos.products.add(a_product("prod_other", category="books"))
    if category is None:
        expected.append("prod_other")

    pages = walk_products(repos.products, category, limit)

    seen = [p.product_id for page in pages for p in page.items]
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen))
    assert len(pages) == math.ceil(len(expected) / limit)
    assert all(len(page.items) == limit for page in pages[:-1])
    assert 1 <= len(pages[-1].items) <= limit
    assert pages[-1].next_token is None


def test_given_no_products_when_listing_then_empty_page_without_token(repos: Repositories) -> None:
    assert repos.products.list(None, 5, None) == Page([], None)
    assert repos.products.list("mugs", 5, None) == Page([], None)


BAD_TOKENS = [
    pytest.param("not a token!", id="not-base64"),
    pytest.param("x" * 5000, id="too-long"),
    pytest.param("abcde", id="bad-base64-length"),
    pytest.param(base64.urlsafe_b64encode(b"\xff\xfe").decode(), id="not-utf8"),
    pytest.param(token_of("product_id")[:-2] + "__", id="truncated"),
    pytest.param(token_of(["prod_1"]), id="json-list"),
    pytest.param(token_of({}), id="empty-key"),
    pytest.param(token_of({"product_id": 5}), id="number-value"),
    pytest.param(token_of({"product_id": ""}), id="empty-value"),
    pytest.param(token_of({"product_id": {"S": "prod_1"}}), id="raw-dynamodb-value"),
    pytest.param(token_of({"product_id": "prod_1", "extra": "x"}), id="extra-attribute"),
    pytest.param(token_of({"order_id": "ord_1"}), id="other-table-key"),
    pytest.param(base64.urlsafe_b64encode(b"[" * 1500).decode().rstrip("="), id="deeply-nested"),
]


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_given_tampered_token_when_listing_all_products_then_rejected_on_next_token(
    repos: Repositories, token: str
) -> None:
    repos.products.add(a_product("prod_1"))

    with pytest.raises(ValidationError) as error:
        repos.products.list(None, 2, token)

    assert_rejected_token(error)


def test_given_token_from_one_listing_when_used_on_another_then_rejected(repos: Repositories) -> None:
    for pid in ("prod_1", "prod_2", "prod_3"):
        repos.products.add(a_product(pid, category="mugs"))
    category_token = repos.products.list("mugs", 1, None).next_token
    all_token = repos.products.list(None, 1, None).next_token
    assert category_token is not None and all_token is not None

    for category, token in ((None, category_token), ("books", category_token), ("mugs", all_token)):
        with pytest.raises(ValidationError) as error:
            repos.products.list(category, 1, token)
        assert_rejected_token(error)


def test_given_existing_and_missing_ids_when_getting_many_then_only_existing_are_returned(repos: Repositories) -> None:
    repos.products.add(a_product("prod_a", price="3.05"))
    repos.products.add(a_product("prod_b", price="1200.00"))

    found = repos.products.get_many(["prod_a", "prod_missing", "prod_b", "prod_a"])

    assert found == {"prod_a": a_product("prod_a", price="3.05"), "prod_b": a_product("prod_b", price="1200.00")}
    assert str(found["prod_b"].price) == "1200.00"
    assert repos.products.get_many([]) == {}


def test_given_more_than_a_hundred_ids_when_getting_many_then_all_existing_are_returned(repos: Repositories) -> None:
    ids = [f"prod_{i:03d}" for i in range(130)]
    for i, pid in enumerate(ids):
        repos.products.add(a_product(pid, price=f"{i}.{i % 100:02d}"))

    found = repos.products.get_many([*ids, "prod_missing_1", "prod_missing_2"])

    assert sorted(found) == ids
    assert found["prod_129"].price == Decimal("129.29")
    assert found["prod_000"].price == Decimal("0.00")


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
