"""DynamoDB's typed JSON, its error codes and its paging, shared by every DynamoDB adapter.

Pages ask DynamoDB for ``limit + 1`` items and build the token from the last item
returned, instead of passing ``LastEvaluatedKey`` through: DynamoDB sets that key
whenever it stopped at ``Limit``, even with nothing left, so the last page would
carry a token to an empty page.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable, Mapping, Sequence

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.adapters.paging import encode_page_token
from chalicelib.domain.money import CENT

# A botocore DynamoDB client; typed loosely because boto3 ships no stubs.
DynamoClient = Any
Item = dict[str, Any]
RawItem = dict[str, dict[str, Any]]

BATCH_GET_MAX_KEYS = 100
CONDITION_FAILED = "ConditionalCheckFailedException"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_raw(item: Mapping[str, Any]) -> RawItem:
    """Python values to DynamoDB's typed JSON, leaving out ``None`` (GSI keys cannot be null)."""
    return {name: _serializer.serialize(value) for name, value in item.items() if value is not None}


def from_raw(raw: Mapping[str, Any]) -> Item:
    return {name: _deserializer.deserialize(value) for name, value in raw.items()}


def money(value: Decimal) -> Decimal:
    """DynamoDB normalises ``12.50`` to ``12.5``; restore the cents scale when that is exact."""
    exponent = value.as_tuple().exponent
    return value.quantize(CENT) if isinstance(exponent, int) and exponent >= -2 else value


def plain(value: Any) -> Any:
    """Free-form maps (preferences) get integers back as ``int``, not ``Decimal('1')``."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def read_page(call: Callable[..., Mapping[str, Any]], request: Mapping[str, Any], limit: int) -> list[RawItem]:
    """Up to ``limit + 1`` items; keeps reading when DynamoDB stops early at its 1 MB page size."""
    items: list[RawItem] = []
    start = request.get("ExclusiveStartKey")
    while True:
        params = {**request, "Limit": limit + 1 - len(items)}
        if start is not None:
            params["ExclusiveStartKey"] = start
        response = call(**params)
        items.extend(response.get("Items", []))
        start = response.get("LastEvaluatedKey")
        if len(items) > limit or start is None:
            return items


def page_token(raw: Sequence[RawItem], limit: int, key_fields: Sequence[str]) -> str | None:
    """A token for the last returned item, only when an item beyond the page exists."""
    if len(raw) <= limit:
        return None
    last = raw[limit - 1]
    return encode_page_token({name: last[name]["S"] for name in key_fields})


def string_key(key: Mapping[str, str]) -> RawItem:
    """A key of string attributes in typed JSON (GetItem keys and ExclusiveStartKey)."""
    return {name: {"S": value} for name, value in key.items()}
