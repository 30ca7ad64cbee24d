"""Demo data for the local stage, written through the app's own services.

Going through ``chalicelib.bootstrap`` (not raw DynamoDB puts) keeps the seed
honest: the admin is created in Cognito and the Users table exactly as a
registration would, then promoted the way ``make admin`` does.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from decimal import Decimal

from chalicelib.bootstrap import Container
from chalicelib.domain.errors import ConflictError
from chalicelib.domain.users import Principal, Registration, normalise_email

log = logging.getLogger("localstage.seed")

# A sandbox credential for a stage that only listens on 127.0.0.1; documented in docs/local-stage.md.
DEFAULT_ADMIN_EMAIL = "admin@example.com"
DEFAULT_ADMIN_PASSWORD = "Admin-Passw0rd"

DEMO_CATALOG: list[dict[str, object]] = [
    {"name": "Trail Running Shoes", "category": "footwear", "price": Decimal("89.90"), "stock": 40},
    {"name": "Leather Hiking Boots", "category": "footwear", "price": Decimal("149.00"), "stock": 15},
    {"name": "Merino Wool Socks", "category": "footwear", "price": Decimal("14.50"), "stock": 200},
    {"name": "Waterproof Shell Jacket", "category": "apparel", "price": Decimal("199.00"), "stock": 25},
    {"name": "Fleece Pullover", "category": "apparel", "price": Decimal("59.00"), "stock": 60},
    {"name": "Base Layer Top", "category": "apparel", "price": Decimal("39.95"), "stock": 80},
    {"name": "Ultralight Tent", "category": "gear", "price": Decimal("349.00"), "stock": 8},
    {"name": "Insulated Water Bottle", "category": "gear", "price": Decimal("24.00"), "stock": 120},
    # Three of these pass the order-value limit (10,000.00): the README's VALIDATION_FAILED example.
    {"name": "Expedition Basecamp Dome", "category": "gear", "price": Decimal("3400.00"), "stock": 50},
]


@dataclass(frozen=True)
class AdminCredentials:
    email: str
    password: str

    @classmethod
    def from_env(cls) -> AdminCredentials:
        return cls(
            normalise_email(os.environ.get("LOCAL_ADMIN_EMAIL") or DEFAULT_ADMIN_EMAIL),
            os.environ.get("LOCAL_ADMIN_PASSWORD") or DEFAULT_ADMIN_PASSWORD,
        )


def seed_admin(container: Container, admin: AdminCredentials) -> None:
    """Register the admin if missing, then grant the admin role (both idempotent)."""
    try:
        container.users.register(Registration(admin.email, admin.password, "Local Admin", False))
    except ConflictError:
        log.info("admin %s already exists", admin.email)
    container.users.grant_admin(admin.email)


def seed_catalog(container: Container, admin: AdminCredentials) -> int:
    """Add the demo products unless the catalog already has some; returns how many were added."""
    if container.catalog.list(None, 1, None).items:
        return 0
    profile = container.user_repository.get_by_email(admin.email)
    assert profile is not None, "seed the admin first"
    caller = Principal(profile.user_id, profile.email, profile.roles)
    for spec in DEMO_CATALOG:
        container.catalog.create(caller, dict(spec))
    return len(DEMO_CATALOG)
