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


def test_given_the_tree_cache_when_a_definition_runs_twice_then_antlr_parses_once_and_each_run_gets_its_program(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

    from localstage.moto_patches import cache_asl_parse_trees
    from localstage.patches import Patches

    runs: list[int] = []
    parse_state_machine = ASLParser.state_machine
    monkeypatch.setattr(ASLParser, "state_machine", lambda self: runs.append(1) or parse_state_machine(self))
    definition = '{"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}'
    with Patches() as patches:
        cache_asl_parse_trees(patches)
        first, tree = AmazonStateLanguageParser.parse(definition)
        second, same_tree = AmazonStateLanguageParser.parse(definition)
        assert same_tree is tree and second is not first  # one antlr tree, a program per execution
        assert len(runs) == 1
        for _ in range(2):  # a broken definition is refused every time, never cached
            with pytest.raises(ASLParserException):
                AmazonStateLanguageParser.parse('{"StartAt": ')
    AmazonStateLanguageParser.parse(definition)
    assert len(runs) == 4  # undone: moto parses every time again
