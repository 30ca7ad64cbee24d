"""Pure domain rules: validation, pricing, lifecycle, money."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.domain.catalog import Product, parse_new_product, parse_product_changes
from chalicelib.domain.errors import InvalidTransitionError, NotFoundError, PayloadTooLargeError, ValidationError
from chalicelib.domain.money import to_json_number
from chalicelib.domain.orders import (
    FailureReason,
    Order,
    OrderStatus,
    RequestedItem,
    ShippingAddress,
    parse_order_request,
    price_items,
)
from chalicelib.domain.uploads import parse_upload_request, safe_filename
from chalicelib.domain.users import parse_registration, password_problems

pytestmark = pytest.mark.unit

ADDRESS = {"name": "A", "line1": "1 Road", "city": "Town", "postal_code": "123", "country": "us"}


def fields(exc: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return sorted(d.field for d in exc.value.details)


def test_given_cent_amounts_when_rendering_json_then_at_most_two_decimals() -> None:
    assert to_json_number(Decimal("12.50")) == 12.5
    assert to_json_number(Decimal("3")) == 3
    assert to_json_number(Decimal("0.1") * 3) == 0.3
    assert to_json_number(Decimal("2.005")) == 2.0  # banker's rounding of a half cent


def test_given_a_valid_order_body_when_parsing_then_country_is_normalised_and_fingerprint_is_stable() -> None:
    body = {
        "items": [{"product_id": "p1", "quantity": 2}],
        "shipping_address": ADDRESS,
        "payment_method": {"type": "card", "token": "tok_success"},
    }
    first = parse_order_request(body)
    assert first.items == (RequestedItem("p1", 2),)
    assert first.shipping_address.country == "US"
    assert first.fingerprint() == parse_order_request(dict(body)).fingerprint()
    changed = {**body, "items": [{"product_id": "p1", "quantity": 3}]}
    assert parse_order_request(changed).fingerprint() != first.fingerprint()


def test_given_duplicate_products_and_float_quantities_when_parsing_then_each_is_reported() -> None:
    body = {
        "items": [
            {"product_id": "p1", "quantity": 1},
            {"product_id": "p1", "quantity": 1},
            {"product_id": "p2", "quantity": Decimal("1.5")},
        ],
        "shipping_address": ADDRESS,
        "payment_method": {"type": "card", "token": "tok_success"},
    }
    with pytest.raises(ValidationError) as exc:
        parse_order_request(body)
    assert fields(exc) == ["items[1].product_id", "items[2].quantity"]


def test_given_a_catalog_when_pricing_then_catalog_prices_are_used_exactly() -> None:
    catalog = {
        "p1": Product("p1", "Mug", "kitchen", Decimal("0.10"), 5),
        "p2": Product("p2", "Pot", "kitchen", Decimal("19.99"), 5),
    }
    lines, total = price_items((RequestedItem("p1", 3), RequestedItem("p2", 1)), catalog)
    assert total == Decimal("20.29")
    assert [line.unit_price for line in lines] == [Decimal("0.10"), Decimal("19.99")]
    with pytest.raises(NotFoundError) as exc:
        price_items((RequestedItem("nope", 1),), catalog)
    assert exc.value.details[0].field == "items[0].product_id"


def _order(status: OrderStatus = OrderStatus.PENDING) -> Order:
    address = ShippingAddress("A", "1 Road", "Town", "123", "US")
    return Order("ord_1", "u1", (), address, "tok_success", Decimal("1"), "t0", "t0", status=status)


def test_given_the_lifecycle_when_moving_forward_then_allowed_and_backwards_refused() -> None:
    order = _order().transition(OrderStatus.PROCESSING, "t1")
    done = order.transition(OrderStatus.COMPLETED, "t2")
    assert done.status == OrderStatus.COMPLETED and done.updated_at == "t2"
    assert done.transition(OrderStatus.COMPLETED, "t3") is done  # idempotent
    with pytest.raises(InvalidTransitionError):
        done.transition(OrderStatus.PROCESSING, "t3")
    with pytest.raises(ValueError):
        order.transition(OrderStatus.FAILED, "t3")  # a failure needs its reason
    failed = order.transition(OrderStatus.FAILED, "t3", FailureReason.OUT_OF_STOCK)
    assert failed.to_dict()["failure_reason"] == "OUT_OF_STOCK"


def test_given_passwords_when_checking_strength_then_each_missing_class_is_named() -> None:
    assert password_problems("Sup3r-secret") == []
    assert password_problems("short") == ["at least 8 characters", "an uppercase letter", "a digit"]
    with pytest.raises(ValidationError) as exc:
        parse_registration({"email": "a@b.co", "password": "alllowercase1", "name": "A"})
    assert fields(exc) == ["password"]


def test_given_a_registration_when_parsing_then_email_is_lowercased_and_types_checked() -> None:
    parsed = parse_registration(
        {"email": " Ada@Example.COM ", "password": "Sup3r-secret", "name": " Ada ", "marketing_emails": True}
    )
    assert (parsed.email, parsed.name, parsed.marketing_emails) == ("ada@example.com", "Ada", True)
    with pytest.raises(ValidationError) as exc:
        parse_registration({"email": 5, "password": ["x"], "name": "A", "marketing_emails": "yes"})
    assert fields(exc) == ["email", "marketing_emails", "password"]


def test_given_product_bodies_when_parsing_then_prices_exact_and_empty_patch_refused() -> None:
    spec = parse_new_product({"name": "Mug", "category": "Kitchen-Ware", "price": Decimal("12.50"), "stock": 3})
    assert spec.price == Decimal("12.50") and spec.category == "kitchen-ware"
    with pytest.raises(ValidationError) as exc:
        parse_product_changes({})
    assert fields(exc) == ["body"]
    with pytest.raises(ValidationError) as exc:
        parse_new_product({"name": "Mug", "category": "bad category!", "price": 0, "stock": 1})
    assert fields(exc) == ["category", "price"]


def test_given_upload_requests_when_parsing_then_names_are_sanitised_and_limits_enforced() -> None:
    assert safe_filename("..\\..\\win.ini") == "win.ini"
    assert safe_filename("...") == "file"
    assert (
        parse_upload_request({"filename": "a b.PDF", "content_type": "Application/PDF", "size": 1}).content_type
        == "application/pdf"
    )
    with pytest.raises(PayloadTooLargeError):
        parse_upload_request({"filename": "a.png", "content_type": "image/png", "size": 11 * 1024 * 1024})
    with pytest.raises(ValidationError) as exc:
        parse_upload_request({"filename": "a.svg", "content_type": "image/svg+xml", "size": 0})
    assert fields(exc) == ["content_type", "size"]
