"""Access control, input limits and idempotency under concurrency, over HTTP on the running local stage.

These tests order the seeded products instead of adding their own: other tests of the session
stage count the catalog.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.conftest import RunningStage
from tests.e2e.support import ADDRESS, StageShop

pytestmark = pytest.mark.e2e

MAX_BODY_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def shop(local_stage: RunningStage) -> StageShop:
    return StageShop(local_stage)


@pytest.fixture(scope="module")
def product(shop: StageShop) -> str:
    """A seeded product with stock to spare."""
    items = shop.http.get("/products", params={"limit": 100}).json()["items"]
    return str(max(items, key=lambda p: p["stock"])["product_id"])


def _order_body(product_id: str, quantity: object = 1) -> dict[str, object]:
    return {
        "items": [{"product_id": product_id, "quantity": quantity}],
        "shipping_address": ADDRESS,
        "payment_method": {"type": "card", "token": "tok_success"},
    }


def _fields(response: httpx.Response) -> list[str]:
    return sorted(d["field"] for d in response.json()["details"])


# -- access control ------------------------------------------------------------------------------------


def test_given_two_users_when_one_reaches_for_the_others_profile_and_orders_then_refused(
    local_stage: RunningStage, shop: StageShop, product: str
) -> None:
    victim = StageShop(local_stage)  # another buyer, with an order of their own
    victims_order = victim.order(product)
    victim_id = victim.http.get(f"/orders/{victims_order}", headers=victim.buyer).json()["customer_id"]
    attacker = shop.buyer

    assert shop.http.get(f"/users/{victim_id}", headers=attacker).status_code == 403
    assert shop.http.get(f"/orders/{victims_order}", headers=attacker).status_code == 404  # existence not revealed
    assert victims_order not in {o["order_id"] for o in shop.http.get("/orders", headers=attacker).json()["items"]}
    # No route changes a profile or an order: the gateway refuses the methods, the app never sees them.
    for method, path in [("PATCH", f"/users/{victim_id}"), ("DELETE", f"/orders/{victims_order}")]:
        status = shop.http.request(method, path, headers=attacker, json={"name": "x"}).status_code
        assert status in (403, 404, 405), (method, path, status)
    assert victim.http.get(f"/orders/{victims_order}", headers=victim.buyer).status_code == 200


def test_given_a_plain_user_when_calling_admin_routes_then_403_and_nothing_changes(
    shop: StageShop, product: str
) -> None:
    price = shop.http.get(f"/products/{product}").json()["price"]
    new = {"name": "Free", "category": "e2e", "price": 0.01, "stock": 1}
    assert shop.http.post("/products", json=new, headers=shop.buyer).status_code == 403
    assert shop.http.patch(f"/products/{product}", json={"price": 0.01}, headers=shop.buyer).status_code == 403
    assert shop.http.get(f"/products/{product}").json()["price"] == price


def test_given_a_client_that_sets_prices_customer_or_status_when_ordering_then_400_naming_each(
    shop: StageShop, product: str
) -> None:
    sneaky = _order_body(product)
    sneaky["items"][0]["unit_price"] = 0.01  # type: ignore[index]
    sneaky.update({"customer_id": "usr_someone_else", "total_amount": 0.01, "status": "COMPLETED"})
    answer = shop.http.post("/orders", json=sneaky, headers=shop.buyer)
    assert answer.status_code == 400
    assert _fields(answer) == ["customer_id", "items[0].unit_price", "status", "total_amount"]


def test_given_a_registration_that_asks_for_the_admin_role_then_400(shop: StageShop) -> None:
    body = {"email": "mallory@example.com", "password": "Sup3r-secret", "name": "M", "roles": ["admin"]}
    answer = shop.http.post("/users", json=body)
    assert answer.status_code == 400 and _fields(answer) == ["roles"]


# -- limits --------------------------------------------------------------------------------------------


def test_given_bodies_over_the_limit_when_posting_then_413_before_parsing(shop: StageShop, product: str) -> None:
    huge_order = _order_body(product)
    huge_order["shipping_address"] = {**ADDRESS, "line1": "x" * MAX_BODY_BYTES}
    assert shop.http.post("/orders", json=huge_order, headers=shop.buyer).status_code == 413
    not_even_json = b"{" * (MAX_BODY_BYTES + 1)
    answer = shop.http.post("/users", content=not_even_json, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and answer.json()["error"] == "payload_too_large"


@pytest.mark.parametrize("quantity", [0, -1, 101, 10**9, 10**40, 1.5, "1", None, True, [1], {"n": 1}])
def test_given_an_absurd_quantity_when_ordering_then_400_on_that_field(
    shop: StageShop, product: str, quantity: object
) -> None:
    answer = shop.http.post("/orders", json=_order_body(product, quantity), headers=shop.buyer)
    assert answer.status_code == 400 and _fields(answer) == ["items[0].quantity"]


def test_given_absurd_item_counts_or_nesting_when_ordering_then_400(shop: StageShop, product: str) -> None:
    lines = [{"product_id": f"prod_{i}", "quantity": 1} for i in range(51)]
    too_many = {**_order_body(product), "items": lines}
    assert _fields(shop.http.post("/orders", json=too_many, headers=shop.buyer)) == ["items"]
    no_items = {**_order_body(product), "items": []}
    assert shop.http.post("/orders", json=no_items, headers=shop.buyer).status_code == 400
    nested = "[" * 5000 + "]" * 5000  # under the size limit, over the parser's depth
    answer = shop.http.post("/orders", content=nested, headers={**shop.buyer, "Content-Type": "application/json"})
    assert answer.status_code == 400 and _fields(answer) == ["body"]
    assert shop.http.post("/orders", content=json.dumps({"x": float("nan")}), headers=shop.buyer).status_code == 400


# -- idempotency under concurrency --------------------------------------------------------------------


def test_given_ten_concurrent_posts_with_one_idempotency_key_then_one_order(
    local_stage: RunningStage, product: str
) -> None:
    buyer = StageShop(local_stage)  # a fresh customer, so their order list holds only what this test placed
    body = _order_body(product)
    headers = {**buyer.buyer, "Idempotency-Key": "double-click-42"}

    def post(_: int) -> httpx.Response:
        with httpx.Client(base_url=local_stage.api_url, timeout=30) as client:
            return client.post("/orders", json=body, headers=headers)

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(post, range(10)))

    assert [a.status_code for a in answers] == [201] * 10, [a.text for a in answers if a.status_code != 201]
    assert len({a.json()["order_id"] for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 9
    assert len(buyer.http.get("/orders", headers=buyer.buyer).json()["items"]) == 1
