"""Page tokens and paging rules shared by the DynamoDB and in-memory repositories.

Both issue the same opaque tokens and refuse the same forgeries, so the contract
suite can hold them to one behaviour. No boto3 here: the in-memory adapters use it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Callable, Collection, Mapping

from chalicelib.domain.errors import ValidationError, invalid

# Key attributes a page token carries: the table key plus the index key, as DynamoDB needs to resume.
ALL_PRODUCTS_KEY: tuple[str, ...] = ("product_id",)
CATEGORY_PRODUCTS_KEY: tuple[str, ...] = ("product_id", "category")
CUSTOMER_ORDERS_KEY: tuple[str, ...] = ("order_id", "customer_id", "created_at")

# Url-safe base64 without padding; the cap keeps decoding cheap and bounds JSON nesting.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,2048}$")

Clock = Callable[[], float]


def encode_page_token(key: Mapping[str, str]) -> str:
    """An opaque, url-safe token for the item a page ended on."""
    raw = json.dumps(dict(key), sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, fields: Collection[str], expected: Mapping[str, str] | None = None) -> dict[str, str]:
    """The key dict inside ``token``, or ``ValidationError`` on ``next_token``.

    Rejects anything we did not issue for this listing: bad base64 or JSON, another key
    set, non-string or empty values, and a key whose ``expected`` attributes (category,
    customer) differ from the caller's, so a forged token can neither reach DynamoDB
    (a ValidationException, i.e. a 500) nor open another customer's orders.
    """
    if not isinstance(token, str) or not _TOKEN.match(token):
        raise _bad_token()
    try:
        key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        raise _bad_token() from None
    if not isinstance(key, dict) or set(key) != set(fields):
        raise _bad_token()
    if not all(isinstance(value, str) and value for value in key.values()):
        raise _bad_token()
    if any(key[name] != value for name, value in (expected or {}).items()):
        raise _bad_token()
    return key


def _bad_token() -> ValidationError:
    return invalid("next_token", "is not a page token issued for this listing")


def check_limit(limit: int) -> None:
    """A page of nothing has no end; the API layer bounds the upper side."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")


def is_expired(expires_at: int, now: float) -> bool:
    """DynamoDB TTL deletes lazily (up to 48 h late), so expiry is judged on read."""
    return expires_at <= now
