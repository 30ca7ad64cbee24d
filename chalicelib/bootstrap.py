"""Wires adapters into services, lazily and once per container.

Nothing is built at import time: each service, adapter and AWS client is made
on first use, so a request only pays for the clients it touches (the product
routes never create a Cognito or SQS client). ``ADAPTERS=memory`` wires the
in-memory adapters instead, for benchmarks and AWS-free experiments.

The API's adapters and services are built by ``ApiContainer`` (``bootstrap_api.py``);
``Container`` adds the order pipeline's, and this module keeps the process's container.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from chalicelib.bootstrap_api import ApiContainer, lazy
from chalicelib.config import get_settings
from chalicelib.domain.ports import MetricsSink

if TYPE_CHECKING:  # the pipeline's modules are imported by their builders, on first use
    from chalicelib.domain.ports import (
        DeadLetters,
        EventPublisher,
        Inventory,
        OrderDeadlines,
        OrderProgress,
        PaymentGateway,
        PaymentRecheckQueue,
        TopicPublisher,
        WorkflowEngine,
    )
    from chalicelib.services.compensation import Compensations
    from chalicelib.services.cost_optimizer import CostOptimizer
    from chalicelib.services.intake import OrderIntake
    from chalicelib.services.notifications import NotificationService
    from chalicelib.services.payment_rechecks import PaymentRechecks
    from chalicelib.services.watchdog import DeadlineKeeper, WorkflowWatchdog
    from chalicelib.services.workflow import Pipeline, WorkflowSteps
    from chalicelib.services.workflow_events import WorkflowMonitor

__all__ = ["ApiContainer", "Container", "container", "lazy", "scoped_container", "use_container"]


class Container(ApiContainer):
    """The services of one Lambda container (or one local process): the API's and the order pipeline's."""

    # -- order pipeline ---------------------------------------------------------------------
    # Imported inside each builder: a route never pays for the pipeline's modules.

    @lazy
    def order_progress(self) -> OrderProgress:
        if self.in_memory:
            from chalicelib.adapters.pipeline_memory import InMemoryOrderProgress

            return InMemoryOrderProgress(self.order_repository)
        from chalicelib.adapters.pipeline_dynamodb import DynamoOrderProgress

        return DynamoOrderProgress(self._client("dynamodb"), self.settings.orders_table)

    @lazy
    def inventory(self) -> Inventory:
        if self.in_memory:
            from chalicelib.adapters.pipeline_memory import InMemoryInventory

            return InMemoryInventory(self.product_repository)
        from chalicelib.adapters.inventory_dynamodb import DynamoInventory

        return DynamoInventory(self._client("dynamodb"), self.settings.products_table, self.settings.orders_table)

    @lazy
    def payment_gateway(self) -> PaymentGateway:
        if self.in_memory:
            from chalicelib.adapters.payments import InMemorySandboxGateway

            return InMemorySandboxGateway()
        from chalicelib.adapters.payments import SandboxPaymentGateway

        return SandboxPaymentGateway(self._client("dynamodb"), self.settings.payments_table)

    @lazy
    def event_publisher(self) -> EventPublisher:
        if self.in_memory:
            from chalicelib.adapters.pipeline_messaging import RecordingEvents

            return RecordingEvents()
        from chalicelib.adapters.dispatch import EventBridgePublisher

        return EventBridgePublisher(self._client("events"), self.settings.event_bus_name)

    def _topic(self, arn_setting: str) -> TopicPublisher:
        if self.in_memory:
            from chalicelib.adapters.pipeline_messaging import RecordingTopic

            return RecordingTopic()
        from chalicelib.adapters.pipeline_messaging import SnsTopic

        self.settings.require(arn_setting)
        return SnsTopic(self._client("sns"), getattr(self.settings, arn_setting))

    @lazy
    def notification_topic(self) -> TopicPublisher:
        return self._topic("notifications_topic_arn")

    @lazy
    def alerts_topic(self) -> TopicPublisher:
        return self._topic("alerts_topic_arn")

    def _dead_letters(self, url_setting: str) -> DeadLetters | None:
        url = getattr(self.settings, url_setting)
        if self.in_memory or not url:
            from chalicelib.adapters.pipeline_messaging import RecordingDeadLetters

            # Without a URL the queue's redrive policy still dead-letters, one receive later and without a reason.
            return RecordingDeadLetters() if self.in_memory else None
        from chalicelib.adapters.pipeline_messaging import SqsDeadLetters

        return SqsDeadLetters(self._client("sqs"), url)

    @lazy
    def order_dead_letters(self) -> DeadLetters | None:
        return self._dead_letters("order_dlq_url")

    @lazy
    def payment_recheck_dead_letters(self) -> DeadLetters | None:
        return self._dead_letters("payment_recheck_dlq_url")

    @lazy
    def notification_dead_letters(self) -> DeadLetters | None:
        return self._dead_letters("notification_events_dlq_url")

    @lazy
    def workflow_engine(self) -> WorkflowEngine:
        if self.in_memory:
            from chalicelib.adapters.pipeline_messaging import RecordingWorkflow

            return RecordingWorkflow()
        from chalicelib.adapters.pipeline_messaging import StepFunctionsWorkflow

        self.settings.require("state_machine_arn")
        return StepFunctionsWorkflow(self._client("stepfunctions"), self.settings.state_machine_arn)

    @lazy
    def metrics(self) -> MetricsSink:
        """Business metrics, written as EMF by the invocation's middleware (``app.py``)."""
        if self.in_memory:
            from chalicelib.adapters.metrics import RecordingMetrics

            return RecordingMetrics()
        from chalicelib.adapters.metrics import InvocationMetrics

        return InvocationMetrics({"Stage": self.settings.stage})

    @lazy
    def pipeline(self) -> Pipeline:
        from chalicelib.services.workflow import Pipeline

        return Pipeline(
            self.order_progress,
            self.inventory,
            self.payment_gateway,
            self.event_publisher,
            self.notification_topic,
            metrics=self.metrics,
        )

    @lazy
    def workflow_steps(self) -> WorkflowSteps:
        from chalicelib.services.workflow import WorkflowSteps

        return WorkflowSteps(self.pipeline)

    @lazy
    def compensations(self) -> Compensations:
        from chalicelib.services.compensation import Compensations

        return Compensations(self.pipeline)

    @lazy
    def order_intake(self) -> OrderIntake:
        from chalicelib.services.intake import OrderIntake

        return OrderIntake(
            self.order_progress,
            self.workflow_engine,
            self.settings.payment_wait_seconds,
            self.deadline_keeper,
        )

    @lazy
    def notification_service(self) -> NotificationService:
        from chalicelib.services.notifications import NotificationService

        return NotificationService(self.order_progress, self.notification_topic)

    @lazy
    def cost_optimizer(self) -> CostOptimizer:
        """The scheduled cost optimizer: Lambda listing, CloudWatch GetMetricData, the reports bucket."""
        from chalicelib.adapters.cloudwatch_usage import CloudWatchUsage
        from chalicelib.adapters.cost_reports import S3ReportStore
        from chalicelib.adapters.lambda_functions import LambdaFunctionCatalog
        from chalicelib.services.cost_optimizer import CostOptimizer

        s = self.settings
        return CostOptimizer(
            LambdaFunctionCatalog(self._client("lambda")),
            CloudWatchUsage(self._client("cloudwatch")),
            S3ReportStore(self._client("s3"), s.reports_bucket),
            stage_function_prefix=f"{s.app_name}-{s.stage}",
        )

    @lazy
    def payment_recheck_queue(self) -> PaymentRecheckQueue:
        from chalicelib.adapters.payment_rechecks import queue_for

        return queue_for(self.settings, None if self.in_memory else self._client)

    @lazy
    def payment_rechecks(self) -> PaymentRechecks:
        from chalicelib.services.payment_rechecks import PaymentRechecks

        queue = self.payment_recheck_queue
        give_up = lambda order_id: self.compensations.compensate(order_id)  # noqa: E731 - built only if needed
        wait = self.settings.payment_wait_seconds
        return PaymentRechecks(
            self.order_progress, queue, self.workflow_engine, wait, give_up, deadlines=self.deadline_keeper
        )

    @lazy
    def order_deadlines(self) -> OrderDeadlines:
        if self.in_memory:
            from chalicelib.adapters.deadlines_memory import InMemoryOrderDeadlines

            return InMemoryOrderDeadlines(self.order_repository)
        from chalicelib.adapters.deadlines_dynamodb import DynamoOrderDeadlines

        return DynamoOrderDeadlines(self._client("dynamodb"), self.settings.orders_table)

    @lazy
    def deadline_keeper(self) -> DeadlineKeeper:
        from chalicelib.domain.deadlines import DeadlinePolicy
        from chalicelib.services.watchdog import DeadlineKeeper

        policy = DeadlinePolicy(margin_seconds=self.settings.deadline_margin_seconds)
        return DeadlineKeeper(self.order_deadlines, policy)

    @lazy
    def workflow_watchdog(self) -> WorkflowWatchdog:
        from chalicelib.services.watchdog import WorkflowWatchdog

        return WorkflowWatchdog(self.order_deadlines, self.compensations, self.alerts_topic)

    @lazy
    def workflow_monitor(self) -> WorkflowMonitor:
        from chalicelib.services.workflow_events import WorkflowMonitor

        return WorkflowMonitor(
            self.compensations, self.alerts_topic, self.settings.state_machine_arn, self.payment_recheck_queue
        )


_lock = threading.Lock()
_container: Container | None = None
_scoped = threading.local()


def container() -> Container:
    """This execution environment's container: the process's, built on first use from the environment.

    On Lambda a process is one environment. The local stage runs every function's environments in
    one process, so it scopes a container to the thread running an invocation (``scoped_container``).
    """
    scoped: Container | None = getattr(_scoped, "container", None)
    if scoped is not None:
        return scoped
    global _container
    if _container is None:
        with _lock:
            if _container is None:
                _container = Container(get_settings())
    return _container


@contextmanager
def scoped_container(scoped: Container) -> Iterator[None]:
    """Make ``container()`` return ``scoped`` on this thread inside the block (the local stage's environments)."""
    previous = getattr(_scoped, "container", None)
    _scoped.container = scoped
    try:
        yield
    finally:
        _scoped.container = previous


def use_container(replacement: Container | None) -> None:
    """Install a container (tests, benchmarks, the local stage); ``None`` forgets it."""
    global _container
    with _lock:
        _container = replacement
