"""moto's per-request lookups, done once by the local stage (localstage/moto_patches.py), through moto's own code."""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import moto.backends
import pytest
from moto import mock_aws
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.utils import json_path

from localstage.moto_patches import cache_asl_parse_trees, cache_moto_lookups
from localstage.patches import Patches

pytestmark = pytest.mark.unit


@pytest.fixture
def cached() -> Iterator[Patches]:
    with Patches() as patches:
        cache_moto_lookups(patches)
        yield patches


def test_given_the_cache_when_the_dispatcher_routes_a_host_then_no_directory_is_read(
    cached: Patches, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    def refuse(path: str) -> list[str]:
        raise AssertionError(f"listed {path} again")

    dispatcher = DomainDispatcherApplication(create_backend_app)
    monkeypatch.setattr(os, "listdir", refuse)
    # WHEN moto's dispatcher asks whether a host names a backend, as it does for every request
    assert dispatcher.get_backend_for_host("sqs") == "sqs"
    assert {"dynamodb", "sqs", "stepfunctions", "xray"} <= set(moto.backends.list_of_moto_modules())
    assert "__pycache__" not in moto.backends.list_of_moto_modules()


def _counting(calls: Counter[str], original: Callable[..., Any]) -> Callable[..., Any]:
    def parse(path: str) -> Any:
        calls[path] += 1
        return original(path)

    return parse


def test_given_the_caches_when_moto_runs_executions_then_paths_and_definitions_parse_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser

    # GIVEN counters under the caches: moto's JSONPath parsers and antlr's state machine rule
    paths: Counter[str] = Counter()
    results: Counter[str] = Counter()
    trees: list[int] = []
    monkeypatch.setattr(json_path, "parse", _counting(paths, json_path.parse))
    monkeypatch.setattr(result_path, "parse", _counting(results, result_path.parse))
    parse_state_machine = ASLParser.state_machine
    monkeypatch.setattr(ASLParser, "state_machine", lambda self: trees.append(1) or parse_state_machine(self))
    definition = {
        "StartAt": "Pick",
        "States": {
            "Pick": {"Type": "Pass", "InputPath": "$.order", "ResultPath": "$.picked", "Next": "Done"},
            "Done": {"Type": "Pass", "InputPath": "$.picked.id", "End": True},
        },
    }
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), Patches() as patches:
        cache_moto_lookups(patches)
        cache_asl_parse_trees(patches)
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = sfn.create_state_machine(
            name="paths", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]
        # WHEN moto's interpreter runs three executions of it, one after the other
        outputs = []
        for n in range(3):
            order = json.dumps({"order": {"id": f"o{n}"}})
            started = sfn.start_execution(stateMachineArn=machine, name=f"run{n}", input=order)
            outputs.append(_finished(sfn, started["executionArn"]))
    # THEN each execution is evaluated, but each path and the definition were parsed once
    assert outputs == ["o0", "o1", "o2"]
    assert paths and set(paths.values()) == {1}, paths
    assert results and set(results.values()) == {1}, results
    assert len(trees) == 1


def _finished(sfn: Any, arn: str) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            assert described["status"] == "SUCCEEDED", described
            return str(described["output"])
        time.sleep(0.05)
    raise AssertionError(f"{arn} still running")


def test_given_undo_then_moto_is_as_it_was() -> None:
    original = moto.backends.list_of_moto_modules
    with Patches() as patches:
        cache_moto_lookups(patches)
        assert moto.backends.list_of_moto_modules is not original
    assert moto.backends.list_of_moto_modules is original
    assert json_path.parse("$.a") is not json_path.parse("$.a")


def test_given_the_tree_cache_when_a_definition_runs_twice_then_antlr_parses_once_and_the_program_is_shared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

    runs: list[int] = []
    parse_state_machine = ASLParser.state_machine
    monkeypatch.setattr(ASLParser, "state_machine", lambda self: runs.append(1) or parse_state_machine(self))
    definition = '{"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}'
    with Patches() as patches:
        cache_asl_parse_trees(patches)
        first, tree = AmazonStateLanguageParser.parse(definition)
        second, same_tree = AmazonStateLanguageParser.parse(definition)
        assert same_tree is tree and second is first  # one antlr tree, one program for every execution
        assert len(runs) == 1
        for _ in range(2):  # a broken definition is refused every time, never cached
            with pytest.raises(ASLParserException):
                AmazonStateLanguageParser.parse('{"StartAt": ')
    AmazonStateLanguageParser.parse(definition)
    assert len(runs) == 4  # undone: moto parses every time again


def test_given_a_kept_tree_when_a_program_is_built_then_no_node_concatenates_its_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from antlr4.RuleContext import RuleContext
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    concatenated: list[int] = []
    get_text = RuleContext.getText
    monkeypatch.setattr(RuleContext, "getText", lambda self: concatenated.append(1) or get_text(self))
    definition = json.dumps(
        {
            "StartAt": "Charge",
            "States": {
                "Charge": {
                    "Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:charge",
                    "ResultPath": "$.payment", "Retry": [{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 2}],
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed"}], "Next": "Paid?",
                },
                "Paid?": {"Type": "Choice", "Choices": [{"Variable": "$.payment.ok", "BooleanEquals": True, "Next": "Done"}],
                          "Default": "Failed"},
                "Done": {"Type": "Succeed"},
                "Failed": {"Type": "Fail", "Error": "PaymentFailed"},
            },
        }
    )  # fmt: skip

    def shown(program: Any) -> str:
        # components as they print, addresses and the heap keys a shared program draws aside
        return re.sub(r" at 0x[0-9a-f]+|, '_EvalComponent__heap_key': '[0-9a-f-]+'", "", str(program))

    moto_s = shown(AmazonStateLanguageParser.parse(definition)[0])
    assert concatenated  # moto's preprocessor asks rule nodes for their text
    with Patches() as patches:
        cache_asl_parse_trees(patches)
        AmazonStateLanguageParser.parse(definition)  # parsed, and its tree kept
        concatenated.clear()
        # WHEN a program is built from the kept tree (moto_patches.py does for a definition with a Map)
        from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

        program = Preprocessor().visit(AmazonStateLanguageParser.parse(definition)[1])
    # THEN it is moto's program, and no rule node concatenated its tokens again
    assert shown(program) == moto_s
    assert concatenated == []


def test_given_the_cache_when_eventbridge_delivers_twice_then_its_paths_parse_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from jsonpath_ng.ext.parser import ExtendedJsonPathParser

    # GIVEN a counter of the JSONPath parsers jsonpath-ng builds, and a rule delivering to a queue
    built: list[int] = []
    init = ExtendedJsonPathParser.__init__
    monkeypatch.setattr(
        ExtendedJsonPathParser, "__init__", lambda self, *a, **k: built.append(1) or init(self, *a, **k)
    )
    with mock_aws(), Patches() as patches:
        cache_moto_lookups(patches)
        events, sqs = boto3.client("events", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="deliveries")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="orders", EventPattern=json.dumps({"source": ["shop"]}))
        events.put_targets(Rule="orders", Targets=[{"Id": "q", "Arn": arn}])
        # WHEN one event is delivered, then another
        delivered = []
        for n in range(2):
            events.put_events(Entries=[{"Source": "shop", "DetailType": "Order", "Detail": json.dumps({"n": n})}])
            delivered.append(len(built))
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    # THEN both arrive; the first delivery parsed moto's paths, the second reused them
    assert sorted(json.loads(m["Body"])["detail"]["n"] for m in messages) == [0, 1]
    assert delivered[0] > 0
    assert delivered[1] == delivered[0]


def test_given_the_cache_when_a_service_answers_twice_then_its_methods_are_listed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import inspect

    # GIVEN a counter of inspect.getmembers, which moto's dispatcher uses to list a response class's methods
    listed: list[object] = []
    getmembers = inspect.getmembers
    monkeypatch.setattr(inspect, "getmembers", lambda obj, *a, **k: listed.append(obj) or getmembers(obj, *a, **k))
    with mock_aws(), Patches() as patches:
        cache_moto_lookups(patches)
        sqs = boto3.client("sqs", region_name="us-east-1")
        # WHEN SQS answers one request, then another
        sqs.list_queues()
        after_first = len(listed)
        sqs.create_queue(QueueName="again")
    # THEN the second request listed nothing again
    assert after_first > 0
    assert len(listed) == after_first


RETRIED = {
    "StartAt": "Try",
    "States": {
        "Try": {
            "Type": "Parallel",
            "Branches": [{"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Boom", "Cause": "c"}}}],
            "Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 1, "BackoffRate": 1.0, "MaxAttempts": 2}],
            "End": True,
        }
    },
}


def test_given_a_shared_program_then_each_component_s_heap_key_is_drawn_before_any_execution() -> None:
    from moto.stepfunctions.parser.asl.component.component import Component
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    from localstage.moto_patches import _components

    with Patches() as patches:
        cache_asl_parse_trees(patches)
        AmazonStateLanguageParser.parse(json.dumps(RETRIED))
        program = AmazonStateLanguageParser.parse(json.dumps(RETRIED))[0]
    components = [c for c in _components(program, Component) if isinstance(c, EvalComponent)]
    # a retrier's attempt count is kept in each execution's heap under its component's key: drawn lazily
    # by two executions at once, one would count under a key the other then replaced
    assert len(components) > 10
    assert all(c._EvalComponent__heap_key is not None for c in components)


def test_given_a_shared_program_when_executions_retry_at_once_then_each_counts_its_own_attempts() -> None:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), Patches() as patches:
        cache_asl_parse_trees(patches)
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = sfn.create_state_machine(
            name="retried", definition=json.dumps(RETRIED), roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]
        # WHEN four executions of the one program retry their failing branch at the same time
        arns = [sfn.start_execution(stateMachineArn=machine, name=f"r{n}")["executionArn"] for n in range(4)]
        deadline = time.monotonic() + 30
        while any(sfn.describe_execution(executionArn=a)["status"] == "RUNNING" for a in arns):
            assert time.monotonic() < deadline, "executions still running"
            time.sleep(0.1)
        # THEN each made its first attempt and its two retries, no more, no fewer, and failed
        for arn in arns:
            events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
            assert sum(e["type"] == "ParallelStateStarted" for e in events) == 3, arn
            assert sfn.describe_execution(executionArn=arn)["status"] == "FAILED"


def test_given_a_map_state_then_each_execution_gets_a_program_of_its_own() -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    mapped = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {"StartAt": "Id", "States": {"Id": {"Type": "Pass", "End": True}}},
                "End": True,
            }
        },
    }
    with Patches() as patches:
        cache_asl_parse_trees(patches)
        first = AmazonStateLanguageParser.parse(json.dumps(mapped))[0]
        assert AmazonStateLanguageParser.parse(json.dumps(mapped))[0] is not first


def test_given_the_cache_when_an_account_s_backend_is_looked_up_again_then_nothing_is_compared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.core.base_backend import BackendDict
    from moto.sqs.models import sqs_backends

    compared: list[int] = []
    equal = BackendDict.__eq__
    monkeypatch.setattr(BackendDict, "__eq__", lambda self, other: compared.append(1) or equal(self, other))
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="first")  # listed before SQS's
        boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="accounts")
        account = "123456789012"
        sqs_backends[account]["us-east-1"]  # moto's own lookup compares with the list
        assert compared
        with Patches() as patches:
            cache_moto_lookups(patches)
            compared.clear()
            # WHEN the account's backend is looked up again, under the cache
            assert "accounts" in str(sqs_backends[account]["us-east-1"].queues)
            # THEN nothing was compared, and a new account is created and listed as moto does
            assert compared == []
            assert sqs_backends["000000000042"]["us-east-1"].queues == {}
            assert any(known is sqs_backends for known in BackendDict._instances)
    # moto's reset (the mock's end) empties it as before
    assert account not in dict.keys(sqs_backends)


def test_given_the_cache_when_an_action_is_dispatched_again_then_its_name_is_converted_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import moto.core.responses

    converted: list[str] = []
    convert = moto.core.responses.camelcase_to_underscores
    monkeypatch.setattr(moto.core.responses, "camelcase_to_underscores", lambda a: converted.append(a) or convert(a))
    with mock_aws(), Patches() as patches:
        cache_moto_lookups(patches)
        sqs = boto3.client("sqs", region_name="us-east-1")
        for _ in range(3):
            assert "QueueUrls" not in sqs.list_queues()
    assert converted.count("ListQueues") == 1
