"""The API's OpenAPI 3.0 document, ``docs/openapi.json``: ``python -m scripts.openapi`` writes it.

``chalice generate-models`` gives the routes as Swagger 2.0 with every body an
``Empty`` model; this states what each route takes and answers, so a client can
be generated from it and schemathesis can fuzz the local stage against it
(``tests/e2e/test_security_fuzz.py``). The schemas repeat the hand-written
validation in ``chalicelib/domain`` as JSON Schema; ``tests/unit/test_openapi.py``
fails when the committed file is stale or when a route is missing from it (or
documented but gone), so the two cannot drift silently. The document is not
deployed: it lives in docs/ and describes, it does not configure.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from chalicelib.api.http import MAX_LIMIT
from chalicelib.domain.catalog import MAX_STOCK
from chalicelib.domain.orders import MAX_ITEMS, MAX_QUANTITY
from chalicelib.domain.uploads import ALLOWED_CONTENT_TYPES
from chalicelib.domain.users import PASSWORD_MAX_LENGTH

Json = dict[str, Any]
DOCUMENT_PATH = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
BEARER: list[Json] = [{"bearerAuth": []}]


def ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def text(max_len: int, min_len: int = 1, **extra: Any) -> Json:
    return {"type": "string", "minLength": min_len, "maxLength": max_len, **extra}


def strict(properties: Json, required: list[str] | None = None) -> Json:
    """An object with exactly these properties: the API rejects (and never sends) others."""
    schema: Json = {"type": "object", "properties": properties, "additionalProperties": False}
    if required is None:
        required = list(properties)
    if required:
        schema["required"] = required
    return schema


MONEY = {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 1_000_000, "multipleOf": 0.01}
ADDRESS = strict(
    {
        "name": text(100),
        "line1": text(200),
        "city": text(100),
        "postal_code": text(20),
        "country": {"type": "string", "pattern": "^[A-Za-z]{2}$", "description": "ISO 3166-1 alpha-2"},
    }
)
PRODUCT_FIELDS: Json = {
    "name": text(200),
    "category": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9-]{0,49}$"},
    "price": MONEY,
    "stock": {"type": "integer", "minimum": 0, "maximum": MAX_STOCK},
    "description": text(2000, min_len=0),
}

SCHEMAS: Json = {
    "Error": strict(
        {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "details": {"type": "array", "items": strict({"field": {"type": "string"}, "message": {"type": "string"}})},
            "request_id": {"type": "string"},
        }
    ),
    "GatewayMessage": {
        "description": "An answer of the gateway itself (API Gateway or Chalice's local gateway), not of the API",
        "type": "object",
        "properties": {"message": {"type": "string"}, "Message": {"type": "string"}, "Code": {"type": "string"}},
    },
    "Health": strict({"status": {"type": "string", "enum": ["ok"]}}),
    "Registration": strict(
        {
            "email": text(254, format="email"),
            "password": text(PASSWORD_MAX_LENGTH, min_len=8),
            "name": text(100),
            "marketing_emails": {"type": "boolean"},
        },
        ["email", "password", "name"],
    ),
    "Credentials": strict({"email": text(254), "password": text(PASSWORD_MAX_LENGTH)}),
    "UserSummary": strict({"user_id": {"type": "string"}, "email": {"type": "string"}, "name": {"type": "string"}}),
    "Login": strict(
        {
            "access_token": {"type": "string"},
            "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_in": {"type": "integer"},
            "user": ref("UserSummary"),
        }
    ),
    "Profile": strict(
        {
            "user_id": {"type": "string"},
            "email": {"type": "string"},
            "name": {"type": "string"},
            "created_at": {"type": "string"},
            "status": {"type": "string"},
            "roles": {"type": "array", "items": {"type": "string", "enum": ["user", "admin"]}},
            "preferences": {"type": "object"},
        }
    ),
    "Product": strict(
        {
            "product_id": {"type": "string"},
            "name": {"type": "string"},
            "category": {"type": "string"},
            "price": {"type": "number"},
            "stock": {"type": "integer"},
            "description": {"type": "string"},
        }
    ),
    "NewProduct": strict(PRODUCT_FIELDS, ["name", "category", "price", "stock"]),
    "ProductChanges": {**strict(PRODUCT_FIELDS, []), "minProperties": 1},
    "ProductPage": strict(
        {"items": {"type": "array", "items": ref("Product")}, "next_token": {"type": "string", "nullable": True}}
    ),
    "OrderRequest": strict(
        {
            "items": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_ITEMS,
                "items": strict(
                    {"product_id": text(64), "quantity": {"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY}}
                ),
            },
            "shipping_address": ref("ShippingAddress"),
            "payment_method": strict(
                {
                    "type": {"type": "string", "enum": ["card"]},
                    "token": {"type": "string", "pattern": "^tok_[A-Za-z0-9_]{1,100}$", "example": "tok_success"},
                }
            ),
        }
    ),
    "ShippingAddress": ADDRESS,
    "Order": strict(
        {
            "order_id": {"type": "string"},
            "customer_id": {"type": "string"},
            "status": {"type": "string", "enum": ["PENDING", "PROCESSING", "COMPLETED", "FAILED"]},
            "items": {
                "type": "array",
                "items": strict(
                    {
                        "product_id": {"type": "string"},
                        "name": {"type": "string"},
                        "quantity": {"type": "integer"},
                        "unit_price": {"type": "number"},
                    }
                ),
            },
            "total_amount": {"type": "number"},
            "currency": {"type": "string"},
            "shipping_address": ref("ShippingAddress"),
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
            "notifications": {"type": "array", "items": {"type": "string"}},
            "failure_reason": {
                "type": "string",
                "enum": ["VALIDATION_FAILED", "OUT_OF_STOCK", "PAYMENT_FAILED", "WORKFLOW_FAILED"],
            },
        },
        [
            "order_id",
            "customer_id",
            "status",
            "items",
            "total_amount",
            "currency",
            "shipping_address",
            "created_at",
            "updated_at",
            "notifications",
        ],
    ),
    "OrderPage": strict(
        {"items": {"type": "array", "items": ref("Order")}, "next_token": {"type": "string", "nullable": True}}
    ),
    "UploadRequest": strict(
        {
            "filename": text(255),
            "content_type": {"type": "string", "enum": sorted(ALLOWED_CONTENT_TYPES)},
            "size": {"type": "integer", "minimum": 1},
        }
    ),
    "UploadForm": strict(
        {
            "key": {"type": "string"},
            "upload": strict(
                {"url": {"type": "string"}, "fields": {"type": "object", "additionalProperties": {"type": "string"}}}
            ),
            "expires_in": {"type": "integer"},
        }
    ),
}

ERROR_MEANINGS = {
    400: "Invalid input: every bad field is listed in `details`",
    401: "Missing credentials (no Authorization header) or wrong login",
    403: "Token refused by the authorizer, or the caller may not do this",
    404: "Not found (or not the caller's)",
    409: "Conflict: email taken, or Idempotency-Key reused with another body",
    413: "Body or declared upload size over the limit",
    415: "Content-Type other than application/json",
    500: "Unexpected failure; quote the request id",
    503: "A dependency failed after retries; safe to retry",
}


def _json(schema: Json) -> Json:
    return {"application/json": {"schema": schema}}


def _error(status: int) -> Json:
    # 401, 403 and 415 can come from the gateway itself, in its own shape (locally) or ours (deployed).
    gateway = status in (401, 403, 413, 415)
    schema = {"anyOf": [ref("Error"), ref("GatewayMessage")]} if gateway else ref("Error")
    return {"description": ERROR_MEANINGS[status], "content": _json(schema)}


def _operation(
    summary: str,
    success: tuple[int, str],
    errors: list[int],
    *,
    body: str | None = None,
    secured: bool = False,
    parameters: list[Json] | None = None,
) -> Json:
    status, schema = success
    responses: Json = {str(status): {"description": summary, "content": _json(ref(schema))}}
    common = [400, 500] + ([413, 415] if body else []) + ([401, 403] if secured else [])
    for code in sorted(set(errors + common)):
        responses[str(code)] = _error(code)
    operation: Json = {"summary": summary, "responses": responses}
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = {"required": True, "content": _json(ref(body))}
    if secured:
        operation["security"] = BEARER
    return operation


def _path_param(name: str) -> Json:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}


PAGING = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}},
    {"name": "next_token", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 2048}},
]
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "description": "Replays of one body answer the first order; another body with the key is a 409",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
}

PATHS: Json = {
    "/health": {"get": _operation("Liveness", (200, "Health"), [])},
    "/users": {"post": _operation("Register", (201, "UserSummary"), [409, 503], body="Registration")},
    "/auth/login": {"post": _operation("Log in: a bearer token", (200, "Login"), [401, 503], body="Credentials")},
    "/users/{user_id}": {
        "get": _operation(
            "A profile: the caller's own, or anyone's for an admin",
            (200, "Profile"),
            [404],
            secured=True,
            parameters=[_path_param("user_id")],
        )
    },
    "/products": {
        "get": _operation(
            "Products, one page, optionally of one category",
            (200, "ProductPage"),
            [],
            parameters=[{"name": "category", "in": "query", "schema": {"type": "string"}}, *PAGING],
        ),
        "post": _operation("Create a product (admin)", (201, "Product"), [], body="NewProduct", secured=True),
    },
    "/products/{product_id}": {
        "get": _operation("A product", (200, "Product"), [404], parameters=[_path_param("product_id")]),
        "patch": _operation(
            "Change a product (admin)",
            (200, "Product"),
            [404],
            body="ProductChanges",
            secured=True,
            parameters=[_path_param("product_id")],
        ),
    },
    "/orders": {
        "post": _operation(
            "Place an order: prices from the catalog, the customer from the token",
            (201, "Order"),
            [404, 409, 503],
            body="OrderRequest",
            secured=True,
            parameters=[IDEMPOTENCY_KEY],
        ),
        "get": _operation("The caller's orders, newest first", (200, "OrderPage"), [], secured=True, parameters=PAGING),
    },
    "/orders/{order_id}": {
        "get": _operation(
            "An order (owner or admin)", (200, "Order"), [404], secured=True, parameters=[_path_param("order_id")]
        )
    },
    "/uploads": {
        "post": _operation("A presigned S3 upload form", (201, "UploadForm"), [], body="UploadRequest", secured=True)
    },
}


def build_document() -> Json:
    """The whole document; deterministic, so the committed file can be compared with it."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "ecommerce-backend",
            "version": "1.0.0",
            "description": "The HTTP API of README.md. Generated by `python -m scripts.openapi`; do not edit by hand.",
        },
        "servers": [{"url": "http://127.0.0.1:8000", "description": "the local stage (make run)"}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def render() -> str:
    return json.dumps(build_document(), indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=DOCUMENT_PATH)
    args = parser.parse_args(argv)
    args.output.write_text(render())
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
