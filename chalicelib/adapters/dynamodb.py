"""DynamoDB repositories for users, products and orders (tables in ``infra/template.py``).

Each takes an injected low-level client, so tests hand in a moto client and the app
the process-wide one from ``chalicelib.adapters.aws``. Numbers come back as
``Decimal``: money stays exact, counts are turned back into ``int``.
Paging and typed-JSON helpers live in ``dynamodb_codec``.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any, Callable, Sequence

from botocore.exceptions import ClientError

from chalicelib.adapters.dynamodb_codec import (
    BATCH_GET_MAX_KEYS,
    CONDITION_FAILED,
    DynamoClient,
    Item,
    RawItem,
    error_code,
    from_raw,
    money,
    page_token,
    plain,
    read_page,
    string_key,
    to_raw,
)
from chalicelib.adapters.paging import (
    ALL_PRODUCTS_KEY,
    CATEGORY_PRODUCTS_KEY,
    CUSTOMER_ORDERS_KEY,
    Clock,
    check_limit,
    decode_page_token,
    is_expired,
)
from chalicelib.domain.catalog import Product, ProductChanges
from chalicelib.domain.errors import ConflictError, DependencyUnavailableError, NotFoundError
from chalicelib.domain.orders import FailureReason, Order, OrderLine, OrderStatus, ShippingAddress
from chalicelib.domain.ports import IdempotencyKeyTakenError, IdempotencyRecord, Page
from chalicelib.domain.users import UserProfile


class DynamoUserRepository:
    def __init__(self, client: DynamoClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def add(self, user: UserProfile) -> None:
        """Refuses a taken id atomically; a taken email by a prior index lookup.

        DynamoDB cannot make a GSI key unique, so two concurrent registrations of one
        email can both pass the lookup; the identity provider, which does enforce
        unique emails, is called first by the service and closes that gap.
        """
        if self.get_by_email(user.email) is not None:
            raise ConflictError("An account with this email already exists")
        try:
            self._client.put_item(
                TableName=self._table, Item=to_raw(user_item(user)), ConditionExpression="attribute_not_exists(user_id)"
            )
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                raise ConflictError(f"User {user.user_id} already exists") from exc
            raise

    def save(self, user: UserProfile) -> None:
        self._client.put_item(TableName=self._table, Item=to_raw(user_item(user)))

    def get(self, user_id: str) -> UserProfile | None:
        response = self._client.get_item(
            TableName=self._table, Key=string_key({"user_id": user_id}), ConsistentRead=True
        )
        return user_from(from_raw(response["Item"])) if "Item" in response else None

    def get_by_email(self, email: str) -> UserProfile | None:
        response = self._client.query(
            TableName=self._table,
            IndexName="EmailIndex",
            KeyConditionExpression="email = :email",
            ExpressionAttributeValues={":email": {"S": email}},
            Limit=1,
        )
        items = response.get("Items", [])
        return user_from(from_raw(items[0])) if items else None


def user_item(user: UserProfile) -> Item:
    return {
        "user_id": user.user_id,
        "email": user.email,
        "name": user.name,
        "created_at": user.created_at,
        "status": user.status,
        "roles": list(user.roles),
        "preferences": dict(user.preferences),
    }


def user_from(item: Item) -> UserProfile:
    return UserProfile(
        user_id=item["user_id"],
        email=item["email"],
        name=item["name"],
        created_at=item["created_at"],
        status=item["status"],
        roles=tuple(item.get("roles", [])),
        preferences=plain(item.get("preferences", {})),
    )


class DynamoProductRepository:
    def __init__(
        self,
        client: DynamoClient,
        table_name: str,
        sleep: Callable[[float], None] = time.sleep,
        max_batch_attempts: int = 6,
    ) -> None:
        self._client = client
        self._table = table_name
        self._sleep = sleep
        self._max_batch_attempts = max_batch_attempts

    def add(self, product: Product) -> None:
        self._put(
            product, "attribute_not_exists(product_id)", ConflictError(f"Product {product.product_id} already exists")
        )

    def update(self, product_id: str, changes: ProductChanges, now: str) -> Product:
        values = {name: value for name, value in asdict(changes).items() if value is not None}
        values["updated_at"] = now
        names = {f"#{name}": name for name in values}
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key=string_key({"product_id": product_id}),
                UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in values),
                ConditionExpression="attribute_exists(product_id)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={f":{name}": value for name, value in to_raw(values).items()},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                raise NotFoundError(f"Product {product_id} not found") from exc
            raise
        return product_from(from_raw(answer["Attributes"]))

    def _put(self, product: Product, condition: str, error: Exception) -> None:
        try:
            self._client.put_item(
                TableName=self._table, Item=to_raw(product_item(product)), ConditionExpression=condition
            )
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                raise error from exc
            raise

    def get(self, product_id: str) -> Product | None:
        response = self._client.get_item(TableName=self._table, Key=string_key({"product_id": product_id}))
        return product_from(from_raw(response["Item"])) if "Item" in response else None

    def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        """BatchGetItem in chunks of 100 (its limit; it also refuses duplicate keys)."""
        unique = list(dict.fromkeys(product_ids))
        found: dict[str, Product] = {}
        for begin in range(0, len(unique), BATCH_GET_MAX_KEYS):
            chunk = unique[begin : begin + BATCH_GET_MAX_KEYS]
            for raw in self._batch_get([string_key({"product_id": pid}) for pid in chunk]):
                product = product_from(from_raw(raw))
                found[product.product_id] = product
        return found

    def _batch_get(self, keys: list[RawItem]) -> list[RawItem]:
        """Retries ``UnprocessedKeys`` (throttling, 16 MB cap) with exponential backoff."""
        items: list[RawItem] = []
        request: dict[str, Any] = {self._table: {"Keys": keys}}
        for attempt in range(self._max_batch_attempts):
            if attempt:
                self._sleep(min(0.05 * 2**attempt, 1.0))
            response = self._client.batch_get_item(RequestItems=request)
            items.extend(response.get("Responses", {}).get(self._table, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return items
        raise DependencyUnavailableError("The product catalog is busy; try again")

    def list(self, category: str | None, limit: int, next_token: str | None) -> Page[Product]:
        """A category's products by index; all products by Scan (no index covers "all")."""
        check_limit(limit)
        request: dict[str, Any] = {"TableName": self._table}
        if category is None:
            fields, call = ALL_PRODUCTS_KEY, self._client.scan
        else:
            fields, call = CATEGORY_PRODUCTS_KEY, self._client.query
            request.update(
                IndexName="CategoryIndex",
                KeyConditionExpression="category = :category",
                ExpressionAttributeValues={":category": {"S": category}},
            )
        if next_token is not None:
            expected = {} if category is None else {"category": category}
            request["ExclusiveStartKey"] = string_key(decode_page_token(next_token, fields, expected))
        raw = read_page(call, request, limit)
        return Page([product_from(from_raw(item)) for item in raw[:limit]], page_token(raw, limit, fields))


def product_item(product: Product) -> Item:
    return asdict(product)


def product_from(item: Item) -> Product:
    return Product(
        product_id=item["product_id"],
        name=item["name"],
        category=item["category"],
        price=money(item["price"]),
        stock=int(item["stock"]),
        description=item.get("description", ""),
        created_at=item.get("created_at", ""),
        updated_at=item.get("updated_at", ""),
    )


class DynamoOrderRepository:
    def __init__(
        self, client: DynamoClient, orders_table: str, idempotency_table: str, clock: Clock = time.time
    ) -> None:
        self._client = client
        self._orders = orders_table
        self._idempotency = idempotency_table
        self._clock = clock

    def add(self, order: Order, idempotency: IdempotencyRecord | None = None) -> None:
        """One conditional put, or with a record one transaction writing both or neither.

        An expired record still waiting for TTL deletion does not hold its key.
        """
        put = {
            "TableName": self._orders,
            "Item": to_raw(order_item(order)),
            "ConditionExpression": "attribute_not_exists(order_id)",
        }
        if idempotency is None:
            try:
                self._client.put_item(**put)
            except ClientError as exc:
                if error_code(exc) == CONDITION_FAILED:
                    raise ConflictError(f"Order {order.order_id} already exists") from exc
                raise
            return
        record = {
            "TableName": self._idempotency,
            "Item": to_raw(idempotency_item(idempotency)),
            "ConditionExpression": "attribute_not_exists(idempotency_key) OR expires_at <= :now",
            "ExpressionAttributeValues": {":now": {"N": str(int(self._clock()))}},
        }
        try:
            self._client.transact_write_items(TransactItems=[{"Put": put}, {"Put": record}])
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = [reason.get("Code") for reason in exc.response.get("CancellationReasons", [])]
            if len(reasons) == 2 and reasons[1] == "ConditionalCheckFailed":
                raise IdempotencyKeyTakenError(idempotency.key) from exc
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise ConflictError(f"Order {order.order_id} already exists") from exc
            raise

    def get(self, order_id: str) -> Order | None:
        response = self._client.get_item(
            TableName=self._orders, Key=string_key({"order_id": order_id}), ConsistentRead=True
        )
        return order_from(from_raw(response["Item"])) if "Item" in response else None

    def list_for_customer(self, customer_id: str, limit: int, next_token: str | None) -> Page[Order]:
        """Newest first, from the ``CustomerOrdersIndex`` (customer_id, created_at)."""
        check_limit(limit)
        request: dict[str, Any] = {
            "TableName": self._orders,
            "IndexName": "CustomerOrdersIndex",
            "KeyConditionExpression": "customer_id = :customer",
            "ExpressionAttributeValues": {":customer": {"S": customer_id}},
            "ScanIndexForward": False,
        }
        if next_token is not None:
            key = decode_page_token(next_token, CUSTOMER_ORDERS_KEY, {"customer_id": customer_id})
            request["ExclusiveStartKey"] = string_key(key)
        raw = read_page(self._client.query, request, limit)
        return Page([order_from(from_raw(item)) for item in raw[:limit]], page_token(raw, limit, CUSTOMER_ORDERS_KEY))

    def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        response = self._client.get_item(
            TableName=self._idempotency, Key=string_key({"idempotency_key": key}), ConsistentRead=True
        )
        if "Item" not in response:
            return None
        item = from_raw(response["Item"])
        record = IdempotencyRecord(
            item["idempotency_key"], item["fingerprint"], item["order_id"], int(item["expires_at"])
        )
        return None if is_expired(record.expires_at, self._clock()) else record


def idempotency_item(record: IdempotencyRecord) -> Item:
    return {
        "idempotency_key": record.key,
        "fingerprint": record.fingerprint,
        "order_id": record.order_id,
        "expires_at": record.expires_at,
    }


def order_item(order: Order) -> Item:
    return {
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "status": order.status.value,
        "failure_reason": order.failure_reason.value if order.failure_reason is not None else None,
        "items": [asdict(line) for line in order.items],
        "total_amount": order.total_amount,
        "currency": order.currency,
        "shipping_address": order.shipping_address.to_dict(),
        "payment_token": order.payment_token,
        "correlation_id": order.correlation_id,
        "notifications": list(order.notifications),
    }


def order_from(item: Item) -> Order:
    reason = item.get("failure_reason")
    return Order(
        order_id=item["order_id"],
        customer_id=item["customer_id"],
        items=tuple(
            OrderLine(line["product_id"], line["name"], int(line["quantity"]), money(line["unit_price"]))
            for line in item["items"]
        ),
        shipping_address=ShippingAddress(**item["shipping_address"]),
        payment_token=item["payment_token"],
        total_amount=money(item["total_amount"]),
        created_at=item["created_at"],
        updated_at=item["updated_at"],
        status=OrderStatus(item["status"]),
        currency=item["currency"],
        failure_reason=FailureReason(reason) if reason is not None else None,
        correlation_id=item.get("correlation_id", ""),
        notifications=tuple(item.get("notifications", [])),
    )
