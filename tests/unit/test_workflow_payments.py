"""The sandbox gateway's card tokens, on its in-memory twin (the DynamoDB one: tests/integration)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.adapters.payments import InMemorySandboxGateway
from chalicelib.domain.pipeline import PaymentGatewayTimeout, PaymentStatus

pytestmark = pytest.mark.unit


def charge(gateway: InMemorySandboxGateway, token: str, order_id: str = "ord_1") -> PaymentStatus:
    return gateway.charge(order_id, token, Decimal("12.50"), "USD").status


@pytest.mark.parametrize(
    ("token", "status"),
    [("tok_success", "success"), ("tok_declined", "failed"), ("tok_pending", "pending"), ("tok_unknown", "failed")],
)
def test_given_a_card_token_when_charged_then_the_sandbox_answers_deterministically(token: str, status: str) -> None:
    assert charge(InMemorySandboxGateway(), token) == status


def test_given_tok_pending_when_checked_then_approved_at_the_first_check() -> None:
    gateway = InMemorySandboxGateway()
    charge(gateway, "tok_pending")
    assert gateway.check("ord_1").status == PaymentStatus.SUCCESS


def test_given_tok_gateway_timeout_when_retried_then_the_first_attempt_times_out_and_the_second_approves() -> None:
    gateway = InMemorySandboxGateway()
    with pytest.raises(PaymentGatewayTimeout):
        charge(gateway, "tok_gateway_timeout")
    assert gateway.get("ord_1") is None
    assert charge(gateway, "tok_gateway_timeout") == PaymentStatus.SUCCESS


def test_given_a_charged_order_when_charged_again_with_another_token_then_the_first_outcome_stands() -> None:
    gateway = InMemorySandboxGateway()
    charge(gateway, "tok_success")
    assert charge(gateway, "tok_declined") == PaymentStatus.SUCCESS
    payment = gateway.get("ord_1")
    assert payment is not None and payment.charges == 1


def test_given_a_success_when_refunded_twice_then_refunded_once_and_pending_is_voided() -> None:
    gateway = InMemorySandboxGateway()
    charge(gateway, "tok_success")
    charge(gateway, "tok_pending", order_id="ord_2")
    assert gateway.refund("ord_1").status == gateway.refund("ord_1").status == PaymentStatus.REFUNDED
    assert gateway.refund("ord_2").status == PaymentStatus.VOIDED
