"""The sandbox payment gateway: deterministic by card token, its state in a DynamoDB table.

Lambdas are stateless, so what the gateway remembers (attempts, outcome, status
checks) lives in the Payments table, keyed by order id; that key is also what makes
a charge idempotent: the outcome is written once, on the condition that there is
none yet, and every later call returns it. Tokens (see the README):

- ``tok_success``: approved;  ``tok_declined`` (and any unknown token): declined;
- ``tok_pending``: pending until the first status check, then approved; ``tok_pending_<n>``: still
  pending at the first ``n - 1`` status checks, approved at the ``n``-th (``tok_pending_99`` outlasts
  the workflow's bound, so the order gives up);
- ``tok_gateway_timeout``: the first attempt times out (nothing charged), the next approves.
"""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.dynamodb_codec import error_code, from_raw, string_key, to_raw
from chalicelib.domain.pipeline import Payment, PaymentGatewayTimeout, PaymentStatus

TOKEN_SUCCESS = "tok_success"
TOKEN_DECLINED = "tok_declined"
TOKEN_PENDING = "tok_pending"
TOKEN_TIMEOUT = "tok_gateway_timeout"
CONDITION_FAILED = "ConditionalCheckFailedException"
_PENDING = re.compile(r"tok_pending(?:_(?P<rounds>[1-9][0-9]?))?")
# Counts the attempt and pins what is charged: a retry cannot change the token or the amount.
_FIRST_ATTEMPT = (
    "SET payment_id = if_not_exists(payment_id, :pid), card_token = if_not_exists(card_token, :t), "
    "amount = if_not_exists(amount, :a), currency = if_not_exists(currency, :c) ADD attempts :one"
)


def checks_until_settled(token: str) -> int | None:
    """How many status checks a pending token needs before the sandbox approves it; ``None`` if not pending."""
    found = _PENDING.fullmatch(token)
    if found is None:
        return None
    return int(found["rounds"] or 1)


def settles_at(token: str, round: int) -> bool:
    """Whether the ``round``-th status check approves a payment charged with ``token``."""
    return round >= (checks_until_settled(token) or 1)


def sandbox_outcome(token: str, attempt: int) -> PaymentStatus:
    """What the sandbox answers to the ``attempt``-th charge (1-based) with ``token``."""
    if token == TOKEN_TIMEOUT and attempt == 1:
        raise PaymentGatewayTimeout("The payment gateway did not answer in time")
    if token in (TOKEN_SUCCESS, TOKEN_TIMEOUT):
        return PaymentStatus.SUCCESS
    if checks_until_settled(token) is not None:
        return PaymentStatus.PENDING
    return PaymentStatus.FAILED


def payment_id(order_id: str) -> str:
    return "pay_" + order_id.removeprefix("ord_")


def payment_from(item: dict[str, Any]) -> Payment:
    return Payment(
        order_id=item["order_id"],
        payment_id=item["payment_id"],
        status=PaymentStatus(item["status"]),
        amount=Decimal(item["amount"]),
        currency=item["currency"],
        charges=int(item.get("charges", 0)),
        status_checks=int(item.get("status_checks", 0)),
    )


class SandboxPaymentGateway:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def get(self, order_id: str) -> Payment | None:
        raw = self._client.get_item(TableName=self._table, Key=string_key({"order_id": order_id}), ConsistentRead=True)
        item = from_raw(raw.get("Item", {}))
        return payment_from(item) if "status" in item else None

    def charge(self, order_id: str, token: str, amount: Any, currency: str) -> Payment:
        attempt = self._client.update_item(
            TableName=self._table,
            Key=string_key({"order_id": order_id}),
            UpdateExpression=_FIRST_ATTEMPT,
            ExpressionAttributeValues=to_raw(
                {":pid": payment_id(order_id), ":t": token, ":a": Decimal(str(amount)), ":c": currency, ":one": 1}
            ),
            ReturnValues="ALL_NEW",
        )
        item = from_raw(attempt["Attributes"])
        if "status" in item:
            return payment_from(item)
        status = sandbox_outcome(item["card_token"], int(item["attempts"]))
        return self._settle(
            order_id, status, "attribute_not_exists(#status)", {}, charged=status == PaymentStatus.SUCCESS
        )

    def check(self, order_id: str, round: int = 1) -> Payment:
        raw = self._client.get_item(TableName=self._table, Key=string_key({"order_id": order_id}), ConsistentRead=True)
        item = from_raw(raw.get("Item", {}))
        if "status" not in item:
            raise LookupError(f"No payment for order {order_id}")
        payment = payment_from(item)
        if payment.status != PaymentStatus.PENDING or payment.status_checks >= round:
            return payment  # settled, or this round was asked already: asking again moves nothing
        # Only the first check of a round counts, so a duplicated re-check cannot skip a round.
        condition = "#status = :was AND (attribute_not_exists(status_checks) OR status_checks < :round)"
        values = {":was": "pending", ":round": round}
        if settles_at(str(item.get("card_token", "")), round):
            return self._settle(order_id, PaymentStatus.SUCCESS, condition, values, charged=True, checked=True)
        return self._settle(order_id, PaymentStatus.PENDING, condition, values, checked=True)

    def refund(self, order_id: str) -> Payment:
        payment = self.get(order_id)
        if payment is None:
            # Nothing charged yet: void the order's payment, so a charge still in flight is refused.
            self._client.update_item(
                TableName=self._table,
                Key=string_key({"order_id": order_id}),
                UpdateExpression="SET payment_id = if_not_exists(payment_id, :pid), "
                "amount = if_not_exists(amount, :a), currency = if_not_exists(currency, :c)",
                ExpressionAttributeValues=to_raw({":pid": payment_id(order_id), ":a": Decimal(0), ":c": ""}),
            )
            return self._settle(order_id, PaymentStatus.VOIDED, "attribute_not_exists(#status)", {})
        if payment.status not in (PaymentStatus.SUCCESS, PaymentStatus.PENDING):
            return payment
        to = PaymentStatus.REFUNDED if payment.status == PaymentStatus.SUCCESS else PaymentStatus.VOIDED
        return self._settle(order_id, to, "#status = :was", {":was": payment.status.value})

    def _settle(
        self,
        order_id: str,
        to: PaymentStatus,
        condition: str,
        values: dict[str, Any],
        charged: bool = False,
        checked: bool = False,
    ) -> Payment:
        """Write ``to`` if ``condition`` still holds; whoever lost a race returns the winner's outcome."""
        expression = (
            "SET #status = :to"
            + (", charges = :one" if charged else "")
            + (", status_checks = :round" if checked else "")
        )
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key=string_key({"order_id": order_id}),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_raw({":to": to.value, **({":one": 1} if charged else {}), **values}),
                ReturnValues="ALL_NEW",
            )
            return payment_from(from_raw(answer["Attributes"]))
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise
        settled = self.get(order_id)
        assert settled is not None, "a condition on the status failed, so the payment exists"
        return settled


class InMemorySandboxGateway:
    """The same sandbox, its state in a dict under one lock (the lock plays the condition expressions)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: dict[str, int] = {}
        self._tokens: dict[str, str] = {}
        self._payments: dict[str, Payment] = {}

    def get(self, order_id: str) -> Payment | None:
        with self._lock:
            return self._payments.get(order_id)

    def charge(self, order_id: str, token: str, amount: Any, currency: str) -> Payment:
        with self._lock:
            if order_id in self._payments:
                return self._payments[order_id]
            self._attempts[order_id] = attempt = self._attempts.get(order_id, 0) + 1
            self._tokens.setdefault(order_id, token)  # pinned at the first attempt, as the table pins it
            status = sandbox_outcome(token, attempt)
            charges = 1 if status == PaymentStatus.SUCCESS else 0
            payment = Payment(order_id, payment_id(order_id), status, Decimal(str(amount)), currency, charges)
            self._payments[order_id] = payment
            return payment

    def check(self, order_id: str, round: int = 1) -> Payment:
        with self._lock:
            payment = self._payments.get(order_id)
            if payment is None:
                raise LookupError(f"No payment for order {order_id}")
            if payment.status == PaymentStatus.PENDING and payment.status_checks < round:
                if settles_at(self._tokens[order_id], round):
                    payment = replace(payment, status=PaymentStatus.SUCCESS, charges=1, status_checks=round)
                else:
                    payment = replace(payment, status_checks=round)
                self._payments[order_id] = payment
            return payment

    def refund(self, order_id: str) -> Payment:
        with self._lock:
            payment = self._payments.get(order_id)
            if payment is None:
                payment = Payment(order_id, payment_id(order_id), PaymentStatus.VOIDED, Decimal(0), "")
                self._payments[order_id] = payment
            if payment.status not in (PaymentStatus.SUCCESS, PaymentStatus.PENDING):
                return payment
            to = PaymentStatus.REFUNDED if payment.status == PaymentStatus.SUCCESS else PaymentStatus.VOIDED
            payment = replace(payment, status=to)
            self._payments[order_id] = payment
            return payment
