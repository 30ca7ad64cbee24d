"""Ports: what the services need from the outside world.

Each has a DynamoDB/AWS adapter and an in-memory one (``chalicelib.adapters``);
``tests/integration/test_repository_contracts.py`` runs one suite against both.
Page tokens are opaque strings; an adapter raises ``ValidationError`` (field
``next_token``) for one it did not issue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Mapping, Protocol, Sequence, TypeVar

from chalicelib.domain.catalog import Product, ProductChanges
from chalicelib.domain.deadlines import OverdueOrder
from chalicelib.domain.orders import FailureReason, Order, OrderStatus
from chalicelib.domain.pipeline import HoldStatus, Payment

if TYPE_CHECKING:  # only the cost optimizer needs these; every other function skips the import
    from chalicelib.domain.usage import FunctionConfig, FunctionUsage, TuningResult
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

    def update(self, product_id: str, changes: ProductChanges, now: str) -> Product:
        """Set only the changed attributes and return the product as stored.

        Field-level, never a whole-item put: the workflow changes ``stock`` concurrently,
        and an admin editing a description must not write back a stale stock.
        ``NotFoundError`` if the product is gone.
        """

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


# -- order pipeline ---------------------------------------------------------------------------------


class OrderProgress(Protocol):
    """An order's progress through the workflow, written with conditions so racing steps cannot undo each other."""

    def get(self, order_id: str) -> Order | None: ...

    def advance(self, order_id: str, status: OrderStatus, failure_reason: FailureReason | None = None) -> Order:
        """Move the order as ``Order.transition`` allows, only if nobody moved it meanwhile.

        Moving to the status it already has is a no-op. ``InvalidTransitionError`` for a move
        the lifecycle forbids; ``OrderNotFoundError`` when the order does not exist.
        """

    def record_notification(self, order_id: str, kind: str) -> bool:
        """Add ``kind`` to the order's notifications once; ``False`` when it was already recorded."""


class OrderDeadlines(Protocol):
    """By when each order in flight must have moved again, indexed so the watchdog finds the late ones cheaply.

    The deadline lives on the order's item and in a sparse index (``DeadlineIndex``: status, deadline)
    that holds only orders with a deadline: a terminal move by the workflow removes it
    (``OrderProgress.advance``), so finished orders leave the index.
    """

    def extend(self, order_id: str, deadline: int) -> bool:
        """Record ``deadline`` (epoch seconds) on a ``PROCESSING`` order; it only ever moves later.

        ``False`` (and no change) when the order is not ``PROCESSING`` or already has a later deadline,
        so a duplicated or late delivery cannot shorten a live execution's time.
        """

    def overdue(self, now: int, limit: int) -> list[OverdueOrder]:
        """Up to ``limit`` orders ``PROCESSING`` past their deadline, then those claimed but not yet compensated."""

    def claim(self, order_id: str, now: int) -> bool:
        """``PROCESSING`` and past its deadline -> ``FAILED``/``WORKFLOW_FAILED``, keeping the deadline as the mark
        "compensation owed"; ``False`` when the order moved or its deadline was extended meanwhile."""

    def settle(self, order_id: str) -> None:
        """Compensation done: remove the deadline, so the order leaves the index."""


class Inventory(Protocol):
    """Stock, changed only by conditional writes: it never goes negative, whatever the concurrency."""

    def hold(self, order: Order) -> HoldStatus:
        """Take every line from stock for ``order``, all or nothing, and mark the hold on the order.

        A second call finds the mark and changes nothing (returns the existing status).
        ``InsufficientInventory`` when a line lacks stock.
        """

    def commit(self, order_id: str) -> HoldStatus:
        """HELD -> COMMITTED (COMMITTED stays); ``InsufficientInventory`` when there is no live hold."""

    def release(self, order: Order, include_committed: bool = False) -> HoldStatus | None:
        """Give a HELD (or, if asked, COMMITTED) hold's stock back, once; returns the hold's status after."""

    def hold_status(self, order_id: str) -> HoldStatus | None: ...

    def stock(self, product_id: str) -> int | None: ...


class PaymentGateway(Protocol):
    """Charges are idempotent per order: a retried or duplicated call never charges twice."""

    def charge(self, order_id: str, token: str, amount: Any, currency: str) -> Payment:
        """Charge once per order; a later call returns the first outcome. ``PaymentGatewayTimeout`` may be raised."""

    def check(self, order_id: str, round: int = 1) -> Payment:
        """The payment's status at the ``round``-th status check (a pending payment may settle here).

        Asking twice in one round is asking once: a retried or duplicated check moves nothing.
        """

    def refund(self, order_id: str) -> Payment:
        """Refund a successful charge or void a pending one, once.

        With no payment yet it records a voided one, so a charge still in flight is refused.
        """

    def get(self, order_id: str) -> Payment | None: ...


class EventPublisher(Protocol):
    def publish_event(self, source: str, detail_type: str, detail: Mapping[str, Any]) -> str:
        """Put one event on the stage's bus; raises when the bus rejects it."""


class TopicPublisher(Protocol):
    def publish(self, subject: str, message: Mapping[str, Any]) -> None:
        """Publish a JSON message to one SNS topic (customer notifications, operational alerts)."""


class WorkflowEngine(Protocol):
    def start(self, name: str, payload: Mapping[str, Any]) -> bool:
        """Start the execution called ``name``; ``False`` when one of that name already exists."""


class PaymentRecheckQueue(Protocol):
    """Delayed re-checks of pending payments, and the claim that lets one delivery of a round resume."""

    def schedule(self, order_id: str, round: int, delay_seconds: int) -> None:
        """Deliver ``(order_id, round)`` to the re-check consumer after ``delay_seconds``."""

    def claim(self, order_id: str, round: int, message_id: str) -> bool:
        """``True`` for the first delivery of ``round`` (and for that same message again); ``False`` for a duplicate."""

    def latest_round(self, order_id: str) -> int:
        """The newest round claimed for the order (the round its current execution runs); 0 before any."""


class DeadLetters(Protocol):
    def send(self, body: str, error_type: str, reason: str, receive_count: int) -> None:
        """Park a message that failed for good, with why and on which receive, where operators (and an alarm) see it."""


# -- observability ----------------------------------------------------------------------------------


class MetricsSink(Protocol):
    """Business metrics (OrdersProcessed, OrderValue, ...): recorded now, written at the invocation's end."""

    def add(self, name: str, value: float, unit: str = "Count", dimensions: Mapping[str, str] | None = None) -> None:
        """Record one value; never raises and never calls an API (the EMF adapter writes a log line later)."""


class DiscardMetrics:
    """The null ``MetricsSink``: services built without one (unit tests, scripts) record nothing."""

    def add(self, name: str, value: float, unit: str = "Count", dimensions: Mapping[str, str] | None = None) -> None:
        return None


# -- cost optimizer ---------------------------------------------------------------------------------


class FunctionCatalog(Protocol):
    def functions(self, prefix: str) -> list[FunctionConfig]:
        """Every function whose name starts with ``prefix`` (all pages of ListFunctions)."""

    def named(self, names: Sequence[str]) -> list[FunctionConfig]:
        """The configuration of each named function; a missing one is an error."""


class UsageMetrics(Protocol):
    def usage(self, function_names: Sequence[str], start: Any, end: Any) -> dict[str, FunctionUsage]:
        """Each function's sums over ``[start, end)``, fetched with as few GetMetricData calls as possible."""


class ReportStore(Protocol):
    def tuning_results(self) -> dict[str, TuningResult]:
        """The latest memory-tuning results saved by the runbook, by function name."""

    def save(self, key: str, report: Mapping[str, Any]) -> str:
        """Write the report as JSON; returns its ``s3://`` location."""
