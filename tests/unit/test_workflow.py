"""The saga's steps on in-memory adapters: every path, each step's idempotency, the compensations."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from chalicelib.adapters.pipeline_messaging import RecordingEvents
from chalicelib.bootstrap import Container, use_container
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.orders import FailureReason, Order, OrderStatus
from chalicelib.domain.pipeline import HoldStatus, InsufficientInventory, PaymentGatewayTimeout, PaymentStatus
from tests.conftest import memory_settings
from tests.pipeline_helpers import add_product, place, stock

pytestmark = pytest.mark.unit


@pytest.fixture
def shop() -> Iterator[Container]:
    built = Container(memory_settings())
    use_container(built)
    yield built
    use_container(None)


def started(shop: Container, *lines: tuple[str, int], token: str = "tok_success") -> Order:
    order = place(shop, *lines, token=token)
    assert shop.order_intake.start(order.order_id) is True
    return order


def status_of(shop: Container, order: Order) -> tuple[OrderStatus, FailureReason | None]:
    found = shop.order_progress.get(order.order_id)
    assert found is not None
    return found.status, found.failure_reason


def events(shop: Container) -> RecordingEvents:
    assert isinstance(shop.event_publisher, RecordingEvents)
    return shop.event_publisher


def test_given_stock_and_an_approving_card_when_every_step_runs_then_completed_charged_once_and_stock_taken(
    shop: Container,
) -> None:
    product = add_product(shop, stock=5)
    order = started(shop, (product, 2))
    steps = shop.workflow_steps
    steps.validate(order.order_id)
    assert steps.check_inventory(order.order_id) == {"hold": "HELD"}
    assert steps.process_payment(order.order_id)["paymentStatus"] == "success"
    assert steps.reserve_inventory(order.order_id) == {"hold": "COMMITTED"}
    steps.send_confirmation(order.order_id)
    steps.schedule_shipping(order.order_id)
    assert steps.complete(order.order_id) == {"status": "COMPLETED"}
    assert status_of(shop, order) == (OrderStatus.COMPLETED, None)
    assert stock(shop, product) == 3
    payment = shop.payment_gateway.get(order.order_id)
    assert payment is not None and payment.charges == 1
    assert events(shop).types() == ["Inventory Reserved", "Payment Processed", "Order Completed"]


def test_given_an_order_over_the_risk_limit_when_validated_then_validation_error_and_reject_records_it(
    shop: Container,
) -> None:
    product = add_product(shop, stock=5, price="6000.00")
    order = started(shop, (product, 2))
    with pytest.raises(ValidationError):
        shop.workflow_steps.validate(order.order_id)
    shop.compensations.reject(order.order_id)
    assert status_of(shop, order) == (OrderStatus.FAILED, FailureReason.VALIDATION_FAILED)
    assert stock(shop, product) == 5
    assert shop.payment_gateway.get(order.order_id) is None


def test_given_too_little_stock_when_checking_inventory_then_nothing_is_held_and_the_order_fails_out_of_stock(
    shop: Container,
) -> None:
    plenty, scarce = add_product(shop, stock=5), add_product(shop, stock=1, name="Rare")
    order = started(shop, (plenty, 2), (scarce, 2))
    with pytest.raises(InsufficientInventory):
        shop.workflow_steps.check_inventory(order.order_id)
    shop.compensations.notify_out_of_stock(order.order_id)
    assert (stock(shop, plenty), stock(shop, scarce)) == (5, 1)
    assert status_of(shop, order) == (OrderStatus.FAILED, FailureReason.OUT_OF_STOCK)
    assert [e[2]["status"] for e in events(shop).events if e[1] == "Inventory Reserved"] == ["failed"]


def test_given_a_declined_card_when_payment_fails_then_the_hold_is_released_and_nothing_charged(
    shop: Container,
) -> None:
    product = add_product(shop, stock=5)
    order = started(shop, (product, 2), token="tok_declined")
    shop.workflow_steps.check_inventory(order.order_id)
    assert stock(shop, product) == 3
    assert shop.workflow_steps.process_payment(order.order_id)["paymentStatus"] == "failed"
    shop.compensations.handle_payment_failure(order.order_id)
    shop.compensations.handle_payment_failure(order.order_id)  # a retried step gives nothing back twice
    assert stock(shop, product) == 5
    assert status_of(shop, order) == (OrderStatus.FAILED, FailureReason.PAYMENT_FAILED)
    payment = shop.payment_gateway.get(order.order_id)
    assert payment is not None and payment.charges == 0


def test_given_a_pending_payment_when_its_status_is_checked_then_it_settles_approved(shop: Container) -> None:
    product = add_product(shop, stock=5)
    order = started(shop, (product, 1), token="tok_pending")
    shop.workflow_steps.check_inventory(order.order_id)
    assert shop.workflow_steps.process_payment(order.order_id)["paymentStatus"] == "pending"
    assert shop.workflow_steps.check_payment_status(order.order_id)["paymentStatus"] == "success"
    assert shop.workflow_steps.check_payment_status(order.order_id)["paymentStatus"] == "success"
    payment = shop.payment_gateway.get(order.order_id)
    assert payment is not None and (payment.charges, payment.status_checks) == (1, 1)


def test_given_a_gateway_timeout_when_the_step_is_retried_then_it_is_charged_exactly_once(shop: Container) -> None:
    product = add_product(shop, stock=5)
    order = started(shop, (product, 1), token="tok_gateway_timeout")
    with pytest.raises(PaymentGatewayTimeout):
        shop.workflow_steps.process_payment(order.order_id)
    assert shop.workflow_steps.process_payment(order.order_id)["paymentStatus"] == "success"
    assert shop.workflow_steps.process_payment(order.order_id)["paymentStatus"] == "success"
    payment = shop.payment_gateway.get(order.order_id)
    assert payment is not None and payment.charges == 1


def test_given_a_paid_order_whose_hold_is_gone_when_reserving_then_insufficient_and_the_refund_compensates(
    shop: Container,
) -> None:
    product = add_product(shop, stock=5)
    order = started(shop, (product, 2))
    shop.workflow_steps.check_inventory(order.order_id)
    shop.workflow_steps.process_payment(order.order_id)
    shop.inventory.release(order)  # the hold is lost (e.g. released by an operator)
    with pytest.raises(InsufficientInventory):
        shop.workflow_steps.reserve_inventory(order.order_id)
    result = shop.compensations.refund_payment(order.order_id)
    assert result["payment"] == "refunded"
    assert status_of(shop, order) == (OrderStatus.FAILED, FailureReason.OUT_OF_STOCK)
    assert stock(shop, product) == 5


def test_given_a_charged_and_committed_order_when_compensated_then_refunded_restocked_and_workflow_failed(
    shop: Container,
) -> None:
    product = add_product(shop, stock=5)
    order = started(shop, (product, 2))
    shop.workflow_steps.check_inventory(order.order_id)
    shop.workflow_steps.process_payment(order.order_id)
    shop.workflow_steps.reserve_inventory(order.order_id)
    first = shop.compensations.compensate(order.order_id)
    again = shop.compensations.compensate(order.order_id)
    assert first["payment"] == "refunded" and again["payment"] == "refunded"
    assert stock(shop, product) == 5
    assert status_of(shop, order) == (OrderStatus.FAILED, FailureReason.WORKFLOW_FAILED)


def test_given_an_order_compensated_before_its_steps_when_they_run_late_then_nothing_is_held_or_charged(
    shop: Container,
) -> None:
    product = add_product(shop, stock=5)
    order = started(shop, (product, 2))
    shop.compensations.compensate(order.order_id)  # e.g. the execution was aborted at once
    with pytest.raises(InsufficientInventory):
        shop.workflow_steps.check_inventory(order.order_id)
    assert shop.workflow_steps.process_payment(order.order_id)["paymentStatus"] == "failed"
    payment = shop.payment_gateway.get(order.order_id)
    assert payment is not None and (payment.status, payment.charges) == (PaymentStatus.VOIDED, 0)
    assert stock(shop, product) == 5


def test_given_a_completed_order_when_compensated_then_nothing_is_undone(shop: Container) -> None:
    product = add_product(shop, stock=5)
    order = started(shop, (product, 1))
    for step in ("check_inventory", "process_payment", "reserve_inventory", "complete"):
        getattr(shop.workflow_steps, step)(order.order_id)
    shop.compensations.compensate(order.order_id)
    assert status_of(shop, order) == (OrderStatus.COMPLETED, None)
    assert stock(shop, product) == 4
    payment = shop.payment_gateway.get(order.order_id)
    assert payment is not None and payment.status == PaymentStatus.SUCCESS


def test_given_a_hold_when_check_inventory_runs_again_then_stock_is_taken_once(shop: Container) -> None:
    product = add_product(shop, stock=5)
    order = started(shop, (product, 2))
    shop.workflow_steps.check_inventory(order.order_id)
    shop.workflow_steps.check_inventory(order.order_id)
    assert stock(shop, product) == 3
    assert shop.inventory.hold_status(order.order_id) == HoldStatus.HELD


def test_given_stock_s_when_n_orders_hold_concurrently_then_exactly_s_succeed_and_stock_ends_at_zero(
    shop: Container,
) -> None:
    supply, demand = 5, 12
    product = add_product(shop, stock=supply)
    orders = [started(shop, (product, 1)) for _ in range(demand)]
    held: list[str] = []
    refused: list[str] = []
    barrier = threading.Barrier(demand)

    def hold(order: Order) -> None:
        barrier.wait()
        try:
            shop.workflow_steps.check_inventory(order.order_id)
            held.append(order.order_id)
        except InsufficientInventory:
            refused.append(order.order_id)

    threads = [threading.Thread(target=hold, args=(order,)) for order in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert (len(held), len(refused)) == (supply, demand - supply)
    assert stock(shop, product) == 0
