"""One contract for the repositories, run against the in-memory and the DynamoDB adapters.

The DynamoDB run uses moto in-process with the stage's own template applied, so the
tables, key names and indexes are the ones a deployment gets.
"""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal

import pytest

from chalicelib.domain.catalog import ProductChanges
from chalicelib.domain.errors import ConflictError, NotFoundError, ValidationError
from chalicelib.domain.ports import (
    Page,
)
from tests.integration.repository_support import (
    BAD_TOKENS,
    Repositories,
    a_product,
    a_user,
    assert_rejected_token,
    walk_products,
)

pytestmark = pytest.mark.integration


# -- builders -------------------------------------------------------------------------------


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
