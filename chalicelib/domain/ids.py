"""Identifiers and timestamps.

Ids carry 128 random bits (uuid4), so collisions are not a practical concern
even at billions of records (the seed's 8 hex digits collide after ~100k);
writes are conditional anyway, so a collision fails loudly instead of overwriting.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Callable

Clock = Callable[[], datetime]
IdFactory = Callable[[str], str]


def new_id(prefix: str) -> str:
    """``new_id("ord")`` -> ``"ord_9f0c..."`` (32 hex digits after the prefix)."""
    return f"{prefix}_{uuid.uuid4().hex}"


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds, so strings sort in time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
