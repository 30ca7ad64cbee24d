"""The API's half of the container: the adapters and services the HTTP routes and the authorizer use.

``chalicelib/bootstrap.py`` builds on it with the order pipeline and keeps the
process's container. Split from it to keep each module readable on its own; the
rules are the same: nothing is built at import time, each adapter and service on
first use, under the container's lock, so a route pays only for the clients it touches.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, TypeVar

from chalicelib.adapters.aws import client
from chalicelib.config import ADAPTERS_MEMORY, Settings
from chalicelib.domain.ports import (
    IdentityProvider,
    OrderDispatcher,
    OrderRepository,
    ProductRepository,
    SigningKeys,
    UploadSigner,
    UserRepository,
)
from chalicelib.services.authentication import Authenticator
from chalicelib.services.catalog import CatalogService
from chalicelib.services.orders import OrderService
from chalicelib.services.tokens import TokenService
from chalicelib.services.uploads import UploadService
from chalicelib.services.users import UserService

T = TypeVar("T")


def lazy(build: Callable[[Any], T]) -> property:
    """A property built once, under the container's lock.

    ``functools.cached_property`` is not locked from Python 3.12 on, and the
    local stage serves requests from several threads: two threads must never
    build two in-memory repositories.
    """
    slot = f"_lazy_{build.__name__}"

    def get(self: ApiContainer) -> T:
        try:
            return self.__dict__[slot]
        except KeyError:
            with self._build_lock:
                if slot not in self.__dict__:
                    self.__dict__[slot] = build(self)
                return self.__dict__[slot]

    return property(get, doc=build.__doc__)


class ApiContainer:
    """The API's adapters and services: identity, catalog, orders, uploads, the authorizer's."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.in_memory = settings.adapters == ADAPTERS_MEMORY
        self._build_lock = threading.RLock()

    def _client(self, service: str) -> Any:
        return client(service, self.settings.region)

    # -- adapters ---------------------------------------------------------------------------

    @lazy
    def user_repository(self) -> UserRepository:
        if self.in_memory:
            from chalicelib.adapters.memory import InMemoryUserRepository

            return InMemoryUserRepository()
        from chalicelib.adapters.dynamodb import DynamoUserRepository

        return DynamoUserRepository(self._client("dynamodb"), self.settings.users_table)

    @lazy
    def product_repository(self) -> ProductRepository:
        if self.in_memory:
            from chalicelib.adapters.memory import InMemoryProductRepository

            return InMemoryProductRepository()
        from chalicelib.adapters.dynamodb import DynamoProductRepository

        return DynamoProductRepository(self._client("dynamodb"), self.settings.products_table)

    @lazy
    def order_repository(self) -> OrderRepository:
        if self.in_memory:
            from chalicelib.adapters.memory import InMemoryOrderRepository

            return InMemoryOrderRepository()
        from chalicelib.adapters.dynamodb import DynamoOrderRepository

        return DynamoOrderRepository(
            self._client("dynamodb"), self.settings.orders_table, self.settings.idempotency_table
        )

    @lazy
    def identity(self) -> IdentityProvider:
        if self.in_memory:
            from chalicelib.adapters.identity import InMemoryIdentityProvider

            return InMemoryIdentityProvider()
        from chalicelib.adapters.identity import CognitoIdentityProvider

        self.settings.require("user_pool_id", "user_pool_client_id")
        return CognitoIdentityProvider(
            self._client("cognito-idp"), self.settings.user_pool_id, self.settings.user_pool_client_id
        )

    @lazy
    def signing_keys(self) -> SigningKeys:
        if self.in_memory:
            from chalicelib.adapters.signing_keys import generate_signing_keys

            return generate_signing_keys()
        from chalicelib.adapters.signing_keys import SecretsManagerSigningKeys

        return SecretsManagerSigningKeys(self._client("secretsmanager"), self.settings.signing_key_secret_id)

    @lazy
    def dispatcher(self) -> OrderDispatcher:
        if self.in_memory:
            from chalicelib.adapters.dispatch import RecordingDispatcher

            return RecordingDispatcher()
        from chalicelib.adapters.dispatch import AwsOrderDispatcher, EventBridgePublisher

        self.settings.require("order_queue_url", "notifications_topic_arn")
        return AwsOrderDispatcher(
            self._client("sqs"),
            self._client("sns"),
            EventBridgePublisher(self._client("events"), self.settings.event_bus_name),
            self.settings.order_queue_url,
            self.settings.notifications_topic_arn,
        )

    @lazy
    def upload_signer(self) -> UploadSigner:
        if self.in_memory:
            from chalicelib.adapters.uploads import InMemoryUploadSigner

            return InMemoryUploadSigner()
        from chalicelib.adapters.uploads import S3UploadSigner

        return S3UploadSigner(self._client("s3"), self.settings.uploads_bucket)

    # -- services ---------------------------------------------------------------------------

    @lazy
    def tokens(self) -> TokenService:
        s = self.settings
        return TokenService(self.signing_keys, s.token_issuer, s.token_audience, s.token_ttl_seconds)

    @lazy
    def authenticator(self) -> Authenticator:
        """The authorizer's: tokens and the Users table only (no Cognito client at its cold start)."""
        return Authenticator(self.tokens, self.user_repository)

    @lazy
    def users(self) -> UserService:
        return UserService(self.identity, self.user_repository, self.tokens)

    @lazy
    def catalog(self) -> CatalogService:
        return CatalogService(self.product_repository)

    @lazy
    def orders(self) -> OrderService:
        return OrderService(self.product_repository, self.order_repository, self.dispatcher)

    @lazy
    def uploads(self) -> UploadService:
        return UploadService(self.upload_signer)
