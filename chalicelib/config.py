"""Settings from the environment, read in one place, once per container.

Names and ARNs come from ``.chalice/config.json`` (per stage) and from the
stage's resource definition (``infra/``), which sets the ones only known after
provisioning (queue URL, topic ARNs, pool ids). Endpoints are never configured
here: boto3 reads the standard ``AWS_ENDPOINT_URL`` variables itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

from chalicelib.domain.deadlines import DEFAULT_DEADLINE_MARGIN_SECONDS, DEFAULT_SWEEP_INTERVAL_MINUTES

# Environment variable names, in one place.
APP_NAME = "APP_NAME"
STAGE = "STAGE"
ADAPTERS = "ADAPTERS"
ORDERS_TABLE = "ORDERS_TABLE"
USERS_TABLE = "USERS_TABLE"
PRODUCTS_TABLE = "PRODUCTS_TABLE"
IDEMPOTENCY_TABLE = "IDEMPOTENCY_TABLE"
ORDER_QUEUE_URL = "ORDER_QUEUE_URL"
NOTIFICATIONS_TOPIC_ARN = "NOTIFICATIONS_TOPIC_ARN"
ALERTS_TOPIC_ARN = "ALERTS_TOPIC_ARN"
EVENT_BUS_NAME = "EVENT_BUS_NAME"
UPLOADS_BUCKET = "UPLOADS_BUCKET"
REPORTS_BUCKET = "REPORTS_BUCKET"
SIGNING_KEY_SECRET_ID = "SIGNING_KEY_SECRET_ID"
USER_POOL_ID = "USER_POOL_ID"
USER_POOL_CLIENT_ID = "USER_POOL_CLIENT_ID"
STATE_MACHINE_ARN = "STATE_MACHINE_ARN"
TOKEN_TTL_SECONDS = "TOKEN_TTL_SECONDS"
CORS_ALLOW_ORIGIN = "CORS_ALLOW_ORIGIN"
MAX_BODY_BYTES = "MAX_BODY_BYTES"
PAYMENTS_TABLE = "PAYMENTS_TABLE"
ORDER_DLQ_URL = "ORDER_DLQ_URL"
NOTIFICATION_EVENTS_DLQ_URL = "NOTIFICATION_EVENTS_DLQ_URL"
PAYMENT_WAIT_SECONDS = "PAYMENT_WAIT_SECONDS"
PAYMENT_RECHECK_QUEUE_URL = "PAYMENT_RECHECK_QUEUE_URL"
PAYMENT_RECHECK_DLQ_URL = "PAYMENT_RECHECK_DLQ_URL"
# The watchdog of orders in flight (services/watchdog.py): its margin past the workflow's timeout,
# and how often it sweeps (read when app.py is imported, like the event sources' names).
DEADLINE_MARGIN_SECONDS = "DEADLINE_MARGIN_SECONDS"
WATCHDOG_INTERVAL_MINUTES = "WATCHDOG_INTERVAL_MINUTES"
# Set by Lambda when active tracing is on (and by the local stage for its X-Ray listener).
AWS_XRAY_DAEMON_ADDRESS = "AWS_XRAY_DAEMON_ADDRESS"
AWS_REGION = "AWS_REGION"
AWS_DEFAULT_REGION = "AWS_DEFAULT_REGION"

ADAPTERS_AWS = "aws"
ADAPTERS_MEMORY = "memory"

# Receives a queue consumer gives a message: on the last one, a failing message is dead-lettered by
# the handler itself, with its reason (entrypoints/sqs.py). The queues' redrive policy moves it one
# receive later (infra/pipeline.py ``REDRIVE_MAX_RECEIVE_COUNT``), as the backstop.
MAX_RECEIVES = 3

# The stage bus's contract: event sources and detail types (the seed's names), shared by the
# publishers (services, adapters/dispatch.py) and the rule that forwards them (infra/pipeline.py).
SOURCE_ORDERS = "ecommerce.orders"
SOURCE_INVENTORY = "ecommerce.inventory"
SOURCE_PAYMENTS = "ecommerce.payments"
ORDER_CREATED = "Order Created"
INVENTORY_RESERVED = "Inventory Reserved"
PAYMENT_PROCESSED = "Payment Processed"
ORDER_COMPLETED = "Order Completed"
ORDER_FAILED = "Order Failed"
PIPELINE_EVENTS = (ORDER_CREATED, INVENTORY_RESERVED, PAYMENT_PROCESSED, ORDER_COMPLETED, ORDER_FAILED)


class ConfigurationError(Exception):
    """A required setting is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    app_name: str
    stage: str
    region: str
    adapters: str
    orders_table: str
    users_table: str
    products_table: str
    idempotency_table: str
    order_queue_url: str
    notifications_topic_arn: str
    alerts_topic_arn: str
    event_bus_name: str
    uploads_bucket: str
    reports_bucket: str
    signing_key_secret_id: str
    user_pool_id: str
    user_pool_client_id: str
    state_machine_arn: str
    token_ttl_seconds: int = 86400
    cors_allow_origin: str = "*"
    max_body_bytes: int = 64 * 1024
    payments_table: str = ""
    order_dlq_url: str = ""
    notification_events_dlq_url: str = ""
    payment_wait_seconds: int = 300
    payment_recheck_queue_url: str = ""
    payment_recheck_dlq_url: str = ""
    deadline_margin_seconds: int = DEFAULT_DEADLINE_MARGIN_SECONDS
    xray_daemon_address: str = ""

    @property
    def token_issuer(self) -> str:
        return f"{self.app_name}-{self.stage}"

    @property
    def token_audience(self) -> str:
        return f"{self.app_name}-api"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        app = env.get(APP_NAME, "ecommerce-backend")
        stage = env.get(STAGE, "local")

        def name(var: str, suffix: str) -> str:
            # Defaults follow the seed's "${service}-<thing>-${stage}" naming.
            return env.get(var) or f"{app}-{suffix}-{stage}"

        return cls(
            app_name=app,
            stage=stage,
            region=env.get(AWS_REGION) or env.get(AWS_DEFAULT_REGION) or "us-east-1",
            adapters=env.get(ADAPTERS, ADAPTERS_AWS),
            orders_table=name(ORDERS_TABLE, "orders"),
            users_table=name(USERS_TABLE, "users"),
            products_table=name(PRODUCTS_TABLE, "products"),
            idempotency_table=name(IDEMPOTENCY_TABLE, "idempotency"),
            order_queue_url=env.get(ORDER_QUEUE_URL, ""),
            notifications_topic_arn=env.get(NOTIFICATIONS_TOPIC_ARN, ""),
            alerts_topic_arn=env.get(ALERTS_TOPIC_ARN, ""),
            event_bus_name=env.get(EVENT_BUS_NAME) or f"ecommerce-events-{stage}",
            uploads_bucket=name(UPLOADS_BUCKET, "uploads"),
            reports_bucket=name(REPORTS_BUCKET, "reports"),
            signing_key_secret_id=name(SIGNING_KEY_SECRET_ID, "signing-key"),
            user_pool_id=env.get(USER_POOL_ID, ""),
            user_pool_client_id=env.get(USER_POOL_CLIENT_ID, ""),
            state_machine_arn=env.get(STATE_MACHINE_ARN, ""),
            token_ttl_seconds=_positive_int(env, TOKEN_TTL_SECONDS, 86400),
            cors_allow_origin=env.get(CORS_ALLOW_ORIGIN, "*"),
            max_body_bytes=_positive_int(env, MAX_BODY_BYTES, 64 * 1024),
            payments_table=name(PAYMENTS_TABLE, "payments"),
            order_dlq_url=env.get(ORDER_DLQ_URL, ""),
            notification_events_dlq_url=env.get(NOTIFICATION_EVENTS_DLQ_URL, ""),
            payment_wait_seconds=_positive_int(env, PAYMENT_WAIT_SECONDS, 300),
            payment_recheck_queue_url=env.get(PAYMENT_RECHECK_QUEUE_URL, ""),
            payment_recheck_dlq_url=env.get(PAYMENT_RECHECK_DLQ_URL, ""),
            deadline_margin_seconds=_positive_int(env, DEADLINE_MARGIN_SECONDS, DEFAULT_DEADLINE_MARGIN_SECONDS),
            xray_daemon_address=env.get(AWS_XRAY_DAEMON_ADDRESS, ""),
        )

    def require(self, *fields: str) -> None:
        """Fail clearly, naming the variables, when settings an adapter needs are empty."""
        missing = [f.upper() for f in fields if not getattr(self, f)]
        if missing:
            raise ConfigurationError("missing settings: " + ", ".join(missing))


def _positive_int(env: Mapping[str, str], var: str, default: int) -> int:
    raw = env.get(var)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{var} must be an integer, got {raw!r}") from exc
    if value <= 0:
        raise ConfigurationError(f"{var} must be positive, got {value}")
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The container's settings, read on first use (never at import time)."""
    return Settings.from_env()


def stage_resource_name(thing: str, env: Mapping[str, str] | None = None) -> str:
    """``${app}-<thing>-${stage}`` for an event source decorator in ``app.py``.

    The one deliberate read of the environment at import time: Chalice binds a
    handler to its queue or topic when it imports ``app.py``, and it imports it with
    the stage's ``environment_variables`` (``.chalice/config.json``) already set, so
    this is how one app.py names each stage's own queue.
    """
    env = os.environ if env is None else env
    return f"{env.get(APP_NAME, 'ecommerce-backend')}-{thing}-{env.get(STAGE, 'local')}"


def watchdog_schedule(env: Mapping[str, str] | None = None) -> str:
    """The watchdog's ``rate(...)``: every ``WATCHDOG_INTERVAL_MINUTES`` (default 5) of the stage.

    Read at import time for the same reason as ``stage_resource_name``: Chalice binds the schedule
    when it imports ``app.py`` with the stage's ``environment_variables`` set.
    """
    env = os.environ if env is None else env
    minutes = _positive_int(env, WATCHDOG_INTERVAL_MINUTES, DEFAULT_SWEEP_INTERVAL_MINUTES)
    return "rate(1 minute)" if minutes == 1 else f"rate({minutes} minutes)"
