"""The HTTP contract, route by route, through ``chalice.test.Client`` with the real authorizer.

Every test runs twice: on in-memory adapters (unit) and on the AWS adapters
against moto with the stage's own template provisioned (integration): provisioned once for the
module, and emptied before each test (tests/integration/moto_reset.py).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from chalice.test import Client
from moto import mock_aws

import app as application
from chalicelib.adapters.aws import reset_clients
from chalicelib.bootstrap import Container, use_container
from chalicelib.config import Settings
from infra.template import stage_template
from localstage.provision import Provisioner
from tests.api_helpers import Api, body
from tests.fake_aws import fake_aws_environment
from tests.integration.moto_reset import ClientFor, empty_stage
from tests.integration.repository_support import without_monitoring


@pytest.fixture(scope="module")
def _moto_stage() -> Iterator[tuple[dict[str, str], ClientFor]]:
    """The test stage in moto (its alarms and dashboard aside), provisioned once for the module's aws tests."""
    with fake_aws_environment(), mock_aws():
        reset_clients(keep_session=True)  # new clients for this mock; botocore's models stay loaded
        provisioner = Provisioner()
        yield provisioner.apply(without_monitoring(stage_template("test"))).outputs, provisioner.client
    reset_clients(keep_session=True)


@pytest.fixture(
    params=[pytest.param("memory", marks=pytest.mark.unit), pytest.param("aws", marks=pytest.mark.integration)]
)
def api(request: pytest.FixtureRequest) -> Iterator[Api]:
    if request.param == "memory":
        settings = Settings.from_env({"ADAPTERS": "memory", "STAGE": "test"})
    else:
        outputs, client = request.getfixturevalue("_moto_stage")
        empty_stage(client)  # what the test before stored is gone; the stage's resources stay
        settings = Settings.from_env({**outputs, "STAGE": "test", "AWS_REGION": "us-east-1"})
    container = Container(settings)
    use_container(container)
    with Client(application.app) as client:
        yield Api(client, container)
    use_container(None)
    reset_clients(keep_session=True)


def error_fields(response: Any) -> list[str]:
    return [d["field"] for d in body(response)["details"]]


# -- health, CORS, errors -----------------------------------------------------------------------------


def test_given_a_running_api_when_checking_health_then_ok_with_cors_and_request_id(api: Api) -> None:
    response = api.call("GET", "/health")
    assert response.status_code == 200
    assert body(response) == {"status": "ok"}
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["X-Request-Id"]


def test_given_malformed_json_when_posting_then_400_naming_the_body(api: Api) -> None:
    response = api.call("POST", "/users", "{not json")
    assert response.status_code == 400
    assert body(response)["error"] == "validation_error"
    assert error_fields(response) == ["body"]
    assert response.headers["X-Request-Id"] == body(response)["request_id"]


def test_given_an_oversized_body_when_posting_then_413(api: Api) -> None:
    response = api.call("POST", "/users", {"email": "a@example.com", "name": "x" * 70_000, "password": "x"})
    assert response.status_code == 413


# -- users and login -----------------------------------------------------------------------------------


def test_given_a_new_email_when_registering_then_201_and_login_returns_a_bearer_token(api: Api) -> None:
    created = api.register("Ada@Example.com", name="Ada")
    assert created["email"] == "ada@example.com" and created["name"] == "Ada" and created["user_id"]

    response = api.call("POST", "/auth/login", {"email": "ada@example.com", "password": "Sup3r-secret"})
    assert response.status_code == 200
    login = body(response)
    assert login["token_type"] == "Bearer" and login["expires_in"] == 86400
    assert login["user"] == {"user_id": created["user_id"], "email": "ada@example.com", "name": "Ada"}
    claims = jwt.decode(login["access_token"], options={"verify_signature": False})
    assert claims["sub"] == claims["user_id"] == created["user_id"]
    assert (
        claims["roles"] == ["user"]
        and claims["iss"] == "ecommerce-backend-test"
        and claims["aud"] == "ecommerce-backend-api"
    )
    assert claims["exp"] - claims["iat"] == 86400


def test_given_invalid_registrations_when_posting_then_400_lists_every_field(api: Api) -> None:
    response = api.call("POST", "/users", {"email": "not-an-email", "password": "weak", "name": "", "role": "admin"})
    assert response.status_code == 400
    assert sorted(error_fields(response)) == ["email", "name", "password", "role"]


def test_given_a_taken_email_when_registering_again_then_409(api: Api) -> None:
    api.register("taken@example.com")
    response = api.call("POST", "/users", {"email": "TAKEN@example.com", "password": "Sup3r-secret", "name": "B"})
    assert response.status_code == 409


def test_given_wrong_password_or_unknown_email_when_logging_in_then_the_same_401(api: Api) -> None:
    api.register("known@example.com")
    wrong = api.call("POST", "/auth/login", {"email": "known@example.com", "password": "Wr0ng-password"})
    unknown = api.call("POST", "/auth/login", {"email": "nobody@example.com", "password": "Wr0ng-password"})
    assert wrong.status_code == unknown.status_code == 401
    assert body(wrong)["message"] == body(unknown)["message"]


def test_given_a_user_when_reading_profiles_then_own_is_200_other_is_403_and_admin_reads_all(api: Api) -> None:
    alice = api.register("alice@example.com", name="Alice")
    alice_token = api.login("alice@example.com")
    bob = api.register("bob@example.com")
    admin = api.admin_token()

    own = api.call("GET", f"/users/{alice['user_id']}", token=alice_token)
    assert own.status_code == 200
    profile = body(own)
    assert profile["name"] == "Alice" and profile["status"] == "active" and profile["created_at"]
    assert profile["preferences"] == {"notifications": True, "marketing_emails": False}
    assert api.call("GET", f"/users/{bob['user_id']}", token=alice_token).status_code == 403
    assert api.call("GET", f"/users/{bob['user_id']}", token=admin).status_code == 200
    assert api.call("GET", "/users/usr_missing", token=admin).status_code == 404


# -- the authorizer ------------------------------------------------------------------------------------


def _forge(
    claims: dict[str, Any], key: str = "attacker-key-that-is-long-enough-for-hs256", alg: str = "HS256", kid: str = "k1"
) -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def test_given_bad_tokens_when_calling_a_protected_route_then_rejected_never_5xx(api: Api) -> None:
    token = api.user_token("victim@example.com")
    claims = jwt.decode(token, options={"verify_signature": False})
    header = jwt.get_unverified_header(token)
    now = datetime.now(UTC)
    head, payload, signature = token.split(".")
    admin_payload = base64.urlsafe_b64encode(json.dumps({**claims, "roles": ["admin"]}).encode()).rstrip(b"=").decode()
    none_header = (
        base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": header["kid"]}).encode()).rstrip(b"=").decode()
    )
    bad = {
        "tampered payload": f"{head}.{admin_payload}.{signature}",
        "alg none": f"{none_header}.{payload}.",
        "foreign key": _forge(claims, kid=header["kid"]),
        "expired": _forge({**claims, "exp": now - timedelta(hours=1)}, kid=header["kid"]),
        "garbage": "not.a.token",
        "oversized": "a" * 5000,
    }
    for name, candidate in bad.items():
        response = api.call("GET", "/orders", token=candidate)
        assert response.status_code in (401, 403), name
    assert api.call("GET", "/orders", Authorization="Basic abc").status_code in (401, 403)
    assert api.call("GET", "/orders").status_code == 401
    assert api.call("GET", "/orders", token=token).status_code == 200


# -- products --------------------------------------------------------------------------------------------


def test_given_an_admin_when_creating_and_patching_a_product_then_exact_prices_round_trip(api: Api) -> None:
    admin = api.admin_token()
    created = api.add_product(admin, name="Teapot", price=19.99, stock=3, category="Kitchen")
    assert created["price"] == 19.99 and created["category"] == "kitchen" and created["stock"] == 3

    fetched = api.call("GET", f"/products/{created['product_id']}")
    assert fetched.status_code == 200 and body(fetched) == created

    patched = api.call("PATCH", f"/products/{created['product_id']}", {"price": 17.5, "stock": 0}, admin)
    assert patched.status_code == 200
    assert body(patched)["price"] == 17.5 and body(patched)["stock"] == 0 and body(patched)["name"] == "Teapot"


def test_given_bad_product_input_when_creating_then_400_per_field(api: Api) -> None:
    admin = api.admin_token()
    response = api.call("POST", "/products", {"name": "X", "category": "k", "price": 1.234, "stock": -1}, admin)
    assert response.status_code == 400
    assert sorted(error_fields(response)) == ["price", "stock"]
    response = api.call("POST", "/products", {"name": "X", "category": "k", "price": "1", "stock": True}, admin)
    assert sorted(error_fields(response)) == ["price", "stock"]


def test_given_a_plain_user_when_changing_the_catalog_then_403(api: Api) -> None:
    user = api.user_token("shopper@example.com")
    admin = api.admin_token()
    product = api.add_product(admin)
    assert api.call("POST", "/products", {"name": "X"}, user).status_code == 403
    assert api.call("PATCH", f"/products/{product['product_id']}", {"price": 0.01}, user).status_code == 403
    assert api.call("PATCH", "/products/prod_missing", {"price": 1}, admin).status_code == 404
    assert api.call("GET", "/products/prod_missing").status_code == 404


def test_given_products_in_categories_when_listing_with_pages_then_each_appears_once(api: Api) -> None:
    admin = api.admin_token()
    kitchen = {api.add_product(admin, name=f"K{i}", category="kitchen")["product_id"] for i in range(5)}
    garden = {api.add_product(admin, name=f"G{i}", category="garden")["product_id"] for i in range(2)}

    seen: list[str] = []
    token = None
    for _ in range(10):
        query = "/products?category=kitchen&limit=2" + (f"&next_token={token}" if token else "")
        page = body(api.call("GET", query))
        seen += [p["product_id"] for p in page["items"]]
        token = page["next_token"]
        if token is None:
            break
    assert sorted(seen) == sorted(kitchen)
    everything = body(api.call("GET", "/products?limit=100"))
    assert {p["product_id"] for p in everything["items"]} == kitchen | garden and everything["next_token"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "next_token=bm9wZQ", "next_token=%00%01"])
def test_given_bad_paging_parameters_when_listing_products_then_400(api: Api, query: str) -> None:
    response = api.call("GET", f"/products?{query}")
    assert response.status_code == 400
    assert error_fields(response)[0] in ("limit", "next_token")


# -- orders ------------------------------------------------------------------------------------------


def _setup_shop(api: Api) -> tuple[str, dict[str, Any], dict[str, Any]]:
    admin = api.admin_token()
    mug = api.add_product(admin, name="Mug", price=12.5, stock=10)
    pot = api.add_product(admin, name="Pot", price=0.1, stock=10)
    return api.user_token("buyer@example.com"), mug, pot


def test_given_a_valid_order_when_placing_then_priced_from_the_catalog_and_handed_on(api: Api) -> None:
    user, mug, pot = _setup_shop(api)
    response = api.call("POST", "/orders", api.order_body((mug["product_id"], 2), (pot["product_id"], 3)), user)
    assert response.status_code == 201, response.body
    order = body(response)
    assert order["status"] == "PENDING" and order["currency"] == "USD" and order["created_at"]
    assert order["total_amount"] == 25.3  # 2 x 12.50 + 3 x 0.10, exact
    assert [(i["product_id"], i["quantity"], i["unit_price"]) for i in order["items"]] == [
        (mug["product_id"], 2, 12.5),
        (pot["product_id"], 3, 0.1),
    ]
    assert order["order_id"].startswith("ord_") and len(order["order_id"]) == 36
    fetched = api.call("GET", f"/orders/{order['order_id']}", token=user)
    assert fetched.status_code == 200 and body(fetched)["order_id"] == order["order_id"]


def test_given_a_client_that_sends_prices_or_a_customer_when_ordering_then_400(api: Api) -> None:
    user, mug, _ = _setup_shop(api)
    sneaky = api.order_body((mug["product_id"], 1))
    sneaky["items"][0]["price"] = 0.01
    sneaky["customer_id"] = "someone-else"
    response = api.call("POST", "/orders", sneaky, user)
    assert response.status_code == 400
    assert sorted(error_fields(response)) == ["customer_id", "items[0].price"]


def test_given_every_kind_of_bad_order_when_placing_then_400_lists_each_field(api: Api) -> None:
    user, mug, _ = _setup_shop(api)
    bad = {
        "items": [
            {"product_id": mug["product_id"], "quantity": 0},
            {"product_id": 5, "quantity": "2"},
            {"quantity": 10_000},
        ],
        "shipping_address": {"name": "A", "line1": "", "city": "C", "postal_code": "1", "country": "Narnia"},
        "payment_method": {"type": "cash", "token": "1234"},
    }
    response = api.call("POST", "/orders", bad, user)
    assert response.status_code == 400
    assert sorted(error_fields(response)) == sorted(
        [
            "items[0].quantity",
            "items[1].product_id",
            "items[1].quantity",
            "items[2].product_id",
            "items[2].quantity",
            "shipping_address.line1",
            "shipping_address.country",
            "payment_method.type",
            "payment_method.token",
        ]
    )
    assert api.call("POST", "/orders", {"items": []}, user).status_code == 400
    assert api.call("POST", "/orders", [1, 2], user).status_code == 400
    too_many = api.order_body(*[(f"p{i}", 1) for i in range(51)])
    assert api.call("POST", "/orders", too_many, user).status_code == 400


def test_given_an_unknown_product_when_ordering_then_404_naming_the_item(api: Api) -> None:
    user, mug, _ = _setup_shop(api)
    response = api.call("POST", "/orders", api.order_body((mug["product_id"], 1), ("prod_nope", 1)), user)
    assert response.status_code == 404
    assert error_fields(response) == ["items[1].product_id"]


def test_given_an_idempotency_key_when_replaying_then_same_order_and_other_body_is_409(api: Api) -> None:
    user, mug, pot = _setup_shop(api)
    order_body = api.order_body((mug["product_id"], 1))
    first = api.call("POST", "/orders", order_body, user, **{"Idempotency-Key": "checkout-1"})
    again = api.call("POST", "/orders", order_body, user, **{"Idempotency-Key": "checkout-1"})
    assert first.status_code == again.status_code == 201
    assert body(first)["order_id"] == body(again)["order_id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    listed = body(api.call("GET", "/orders", token=user))["items"]
    assert [o["order_id"] for o in listed] == [body(first)["order_id"]]

    other = api.call(
        "POST", "/orders", api.order_body((pot["product_id"], 1)), user, **{"Idempotency-Key": "checkout-1"}
    )
    assert other.status_code == 409


def test_given_two_customers_when_reading_orders_then_each_sees_only_their_own(api: Api) -> None:
    user, mug, _ = _setup_shop(api)
    other = api.user_token("other@example.com")
    admin = api.login("admin@example.com")
    placed = [
        body(api.call("POST", "/orders", api.order_body((mug["product_id"], 1)), user))["order_id"] for _ in range(3)
    ]

    mine = body(api.call("GET", "/orders?limit=2", token=user))
    assert [o["order_id"] for o in mine["items"]] == placed[::-1][:2]  # newest first
    rest = body(api.call("GET", f"/orders?limit=2&next_token={mine['next_token']}", token=user))
    assert [o["order_id"] for o in rest["items"]] == placed[:1] and rest["next_token"] is None

    assert body(api.call("GET", "/orders", token=other))["items"] == []
    assert api.call("GET", f"/orders/{placed[0]}", token=other).status_code == 404
    assert api.call("GET", f"/orders/{placed[0]}", token=admin).status_code == 200
    # A page token from one customer is refused for another.
    assert api.call("GET", f"/orders?limit=2&next_token={mine['next_token']}", token=other).status_code == 400


# -- uploads -------------------------------------------------------------------------------------------


def test_given_an_allowed_file_when_requesting_an_upload_then_a_presigned_post_bound_to_type_and_size(api: Api) -> None:
    user = api.user_token("uploader@example.com")
    response = api.call(
        "POST", "/uploads", {"filename": "../../etc/photo 1.png", "content_type": "image/png", "size": 2048}, user
    )
    assert response.status_code == 201, response.body
    answer = body(response)
    assert answer["key"].endswith("/photo_1.png") and ".." not in answer["key"]
    assert answer["upload"]["url"] and answer["upload"]["fields"]["Content-Type"] == "image/png"
    assert answer["expires_in"] == 900


def test_given_a_bad_upload_request_when_posting_then_400_for_type_and_413_for_size(api: Api) -> None:
    user = api.user_token("uploader@example.com")
    bad_type = api.call(
        "POST", "/uploads", {"filename": "x.exe", "content_type": "application/x-msdownload", "size": 10}, user
    )
    assert bad_type.status_code == 400 and error_fields(bad_type) == ["content_type"]
    too_big = api.call(
        "POST", "/uploads", {"filename": "x.png", "content_type": "image/png", "size": 50 * 1024 * 1024}, user
    )
    assert too_big.status_code == 413 and error_fields(too_big) == ["size"]
    assert (
        api.call("POST", "/uploads", {"filename": "x.png", "content_type": "image/png", "size": 10}).status_code == 401
    )
