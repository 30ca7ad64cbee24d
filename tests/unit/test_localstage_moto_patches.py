"""moto's per-request lookups, done once by the local stage (localstage/moto_patches.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import moto.backends
import pytest
from moto.stepfunctions.parser.asl.utils import json_path

from localstage.moto_patches import cache_moto_lookups, restore_moto_lookups

pytestmark = pytest.mark.unit


@pytest.fixture
def cached() -> Iterator[None]:
    cache_moto_lookups()
    try:
        yield
    finally:
        restore_moto_lookups()


def test_given_the_cache_when_the_dispatcher_asks_for_modules_then_no_directory_is_read(
    cached: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(path: str) -> list[str]:
        raise AssertionError(f"listed {path} again")

    monkeypatch.setattr(os, "listdir", refuse)
    modules = moto.backends.list_of_moto_modules()
    assert {"dynamodb", "sqs", "stepfunctions", "xray"} <= set(modules)
    assert "__pycache__" not in modules


def test_given_the_cache_when_a_path_is_parsed_twice_then_one_parser_run_and_the_same_answers(cached: None) -> None:
    first = json_path.parse("$.order_id")
    assert json_path.parse("$.order_id") is first
    assert [match.value for match in first.find({"order_id": "ord_1"})] == ["ord_1"]


def test_given_restore_then_moto_is_as_it_was() -> None:
    original = moto.backends.list_of_moto_modules
    cache_moto_lookups()
    cache_moto_lookups()  # idempotent: the original is kept, not the cached one
    restore_moto_lookups()
    assert moto.backends.list_of_moto_modules is original
    assert json_path.parse("$.a") is not json_path.parse("$.a")
