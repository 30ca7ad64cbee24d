"""Ports: what the services need from the outside world.

Each has a DynamoDB/AWS adapter and an in-memory one (``chalicelib.adapters``);
``tests/integration/test_contracts.py`` runs one suite against both.
Page tokens are opaque strings; an adapter raises ``ValidationError`` (field
``next_token``) for one it did not issue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, Sequence, TypeVar

from chalicelib.domain.catalog import Product
from chalicelib.domain.orders import Order
from chalicelib.domain.users import UserProfile

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str | None


@dataclass(frozen=True)
class IdempotencyRecord:
    """Remembers which order a customer's ``Idempotency-Key`` produced."""

    key: str
    fingerprint: str
    order_id: str
    expires_at: int


class UserRepository(Protocol):
    def add(self, user: UserProfile) -> None:
        """Store a new profile; ``ConflictError`` if the id or email is taken."""

    def save(self, user: UserProfile) -> None:
        """Overwrite an existing profile (roles, preferences)."""

    def get(self, user_id: str) -> UserProfile | None: ...

    def get_by_email(self, email: str) -> UserProfile | None: ...


class ProductRepository(Protocol):
    def add(self, product: Product) -> None: ...

    def save(self, product: Product) -> None:
        """Overwrite an existing product; ``NotFoundError`` if it is gone."""

    def get(self, product_id: str) -> Product | None: ...

    def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]: ...

    def list(self, category: str | None, limit: int, next_token: str | None) -> Page[Product]: ...


class OrderRepository(Protocol):
    def add(self, order: Order, idempotency: IdempotencyRecord | None = None) -> None:
        """Store a new order, and its idempotency record, in one atomic write.

        Raises ``IdempotencyKeyTakenError`` when the record already exists (nothing is written).
        """

    def get(self, order_id: str) -> Order | None: ...

    def list_for_customer(self, customer_id: str, limit: int, next_token: str | None) -> Page[Order]: ...

    def get_idempotency(self, key: str) -> IdempotencyRecord | None: ...


class OrderDispatcher(Protocol):
    def order_placed(self, order: Order) -> None:
        """Hand a stored order to the pipeline: queue, ``Order Created`` event, confirmation.

        Raises ``DependencyUnavailableError`` if the order could not be queued.
        """


class IdentityProvider(Protocol):
    def create_user(self, email: str, password: str, name: str) -> str:
        """Create a confirmed user with a permanent password; returns its stable id.

        ``ConflictError`` if the email is taken.
        """

    def delete_user(self, email: str) -> None: ...

    def authenticate(self, email: str, password: str) -> None:
        """``AuthenticationError`` for an unknown email or a wrong password alike."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    secret: bytes


class SigningKeys(Protocol):
    def current(self) -> SigningKey: ...

    def find(self, kid: str) -> SigningKey | None:
        """The key with this id, refreshing from the store at most once per call."""


class UploadSigner(Protocol):
    def presign(self, key: str, content_type: str, max_bytes: int, expires_in: int) -> dict[str, object]:
        """A presigned POST ``{"url": ..., "fields": {...}}`` bound to type and size."""


class IdempotencyKeyTakenError(Exception):
    """Raised by ``OrderRepository.add`` when another request holds the key."""
