"""Helpers for driving the HTTP API through ``chalice.test.Client``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalice.test import Client

from chalicelib.bootstrap import Container

PASSWORD = "Sup3r-secret"
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Sq",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}


@dataclass
class Api:
    client: Client
    container: Container

    def call(self, method: str, path: str, body: Any = None, token: str | None = None, **headers: str) -> Any:
        all_headers = {"Content-Type": "application/json", **headers}
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        raw = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        response = getattr(self.client.http, method.lower())(path, headers=all_headers, body=raw)
        return response

    def register(self, email: str, name: str = "Test User", password: str = PASSWORD) -> dict[str, Any]:
        response = self.call("POST", "/users", {"email": email, "password": password, "name": name})
        assert response.status_code == 201, response.body
        return json.loads(response.body)

    def login(self, email: str, password: str = PASSWORD) -> str:
        response = self.call("POST", "/auth/login", {"email": email, "password": password})
        assert response.status_code == 200, response.body
        return str(json.loads(response.body)["access_token"])

    def user_token(self, email: str) -> str:
        self.register(email)
        return self.login(email)

    def admin_token(self, email: str = "admin@example.com") -> str:
        self.register(email, name="Admin")
        self.container.users.grant_admin(email)
        return self.login(email)

    def add_product(
        self, admin: str, name: str = "Mug", price: Any = 12.5, stock: int = 10, category: str = "kitchen"
    ) -> dict[str, Any]:
        response = self.call(
            "POST", "/products", {"name": name, "category": category, "price": price, "stock": stock}, admin
        )
        assert response.status_code == 201, response.body
        return json.loads(response.body)

    def order_body(self, *lines: tuple[str, int], token: str = "tok_success") -> dict[str, Any]:
        return {
            "items": [{"product_id": pid, "quantity": qty} for pid, qty in lines],
            "shipping_address": ADDRESS,
            "payment_method": {"type": "card", "token": token},
        }


def body(response: Any) -> Any:
    return json.loads(response.body)
