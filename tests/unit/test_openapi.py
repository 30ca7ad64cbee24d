"""docs/openapi.json: valid OpenAPI 3.0, up to date with its builder, and exactly the app's routes."""

from __future__ import annotations

import json
import re

import pytest
from openapi_spec_validator import validate

import app as application
from scripts.openapi import DOCUMENT_PATH, build_document, render

pytestmark = pytest.mark.unit

DOCUMENT = json.loads(DOCUMENT_PATH.read_text())


def test_given_the_committed_document_then_it_is_valid_openapi_3() -> None:
    validate(DOCUMENT)
    assert DOCUMENT["openapi"].startswith("3.0")


def test_given_the_builder_then_the_committed_document_is_what_it_writes() -> None:
    assert DOCUMENT_PATH.read_text() == render(), "stale: run `python -m scripts.openapi`"


def test_given_the_app_routes_then_each_is_documented_and_nothing_else_is() -> None:
    routes = {
        (path, method.lower())
        for path, methods in application.app.routes.items()
        for method in methods
        if method != "OPTIONS"
    }
    documented = {(path, method) for path, item in build_document()["paths"].items() for method in item}
    assert documented == routes


def test_given_protected_routes_then_they_require_the_bearer_scheme() -> None:
    for path, methods in application.app.routes.items():
        for method, entry in methods.items():
            operation = DOCUMENT["paths"][path][method.lower()]
            assert ("security" in operation) == (entry.authorizer is not None), (method, path)


def test_given_every_operation_then_errors_use_the_error_body_and_the_contract_statuses_are_listed() -> None:
    readme_rows = re.findall(r"^\| `(GET|POST|PATCH) ([^` ?]+)[^|]*\|[^|]*\| (\d{3})[^|]*\|([^|]*)\|", _readme(), re.M)
    assert len(readme_rows) == 12
    for method, path, success, errors in readme_rows:
        responses = DOCUMENT["paths"][path][method.lower()]["responses"]
        assert success in responses, (method, path)
        for status in re.findall(r"\b(4\d\d)\b", errors):
            assert status in responses, (method, path, status)
    error = DOCUMENT["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "message", "details", "request_id"]


def _readme() -> str:
    return (DOCUMENT_PATH.parent.parent / "README.md").read_text()
