"""The benchmarks' pieces that measure an order: the warm app and its events, the cost of one order's
calls, the end-to-end call log and its windows, and the pipeline's priced designs.

The benchmarks' plumbing (stats, import times, the report, the registry, the cold-start child, the
package) is in test_bench.py. None of these is a timed assertion: each checks the arithmetic and the
parsing that a figure in docs/benchmarks.md rests on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from bench.calls import CallLogReader, by_service, per_order, split_emulation
from bench.cost_per_order import RecordedCall, attribute_size, billable_calls, item_size
from bench.e2e import completion_rate, percentile
from bench.e2e_load import LoadPlan
from bench.events import ApiRequest, FakeLambdaContext, authorizer_context, fill_path
from bench.figures import Figure
from bench.pipeline_cost import (
    DEADLINE_INDEX_WRITES,
    HAPPY_PATH,
    as_workflow,
    billable_from_counts,
    execution_log_lines,
    happy_path_states,
    our_calls,
    our_workflow,
    seed_calls,
)
from bench.registry import Benchmark, Options, Registry
from bench.warm import PolicyCache, app_scenarios, bare_app, direct_call, import_app
from chalicelib.bootstrap import Container
from chalicelib.cost import Op, Service
from chalicelib.cost.workflow import STANDARD
from localstage.call_log import operation_of, service_of

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


# -- events and the app ------------------------------------------------------------------------------


def test_given_a_resource_with_parameters_when_filled_then_every_placeholder_must_be_given() -> None:
    assert fill_path("/orders/{order_id}", {"order_id": "ord_1"}) == "/orders/ord_1"
    with pytest.raises(ValueError):
        fill_path("/orders/{order_id}", {})


def test_given_a_health_event_when_the_app_is_called_directly_then_it_answers_200(
    memory_container: Container,
) -> None:
    app_module = import_app(ROOT)

    response = app_module.app(ApiRequest("GET", "/health").proxy_event(), FakeLambdaContext())

    assert response["statusCode"] == 200 and json.loads(response["body"]) == {"status": "ok"}
    assert response["headers"]["X-Request-Id"] == "bench-request"


@pytest.fixture
def xray_sdk_state() -> Iterator[None]:
    """Powertools' Tracer, disabled outside Lambda, turns the X-Ray SDK off for the whole process when the
    peer is imported (``global_sdk_config.set_sdk_enabled(False)``): put it back for the tests after this one."""
    from aws_xray_sdk import global_sdk_config

    enabled = global_sdk_config.sdk_enabled()
    yield
    global_sdk_config.set_sdk_enabled(enabled)


def test_given_seeded_data_when_each_scenario_runs_then_the_app_answers_200(
    memory_container: Container, xray_sdk_state: None
) -> None:
    scenarios = app_scenarios(import_app(ROOT), memory_container, FakeLambdaContext())

    assert {s.name: s.call() for s in scenarios} == {
        "product": 200,
        "order": 200,
        "order-cached": 200,
        "peer-product": 200,
        "peer-order-cached": 200,
    }
    # the bare bar is judged on our cached route; the peer is compared with ours, not judged on the bare route
    assert [s.name for s in scenarios if not s.judged] == ["peer-product", "peer-order-cached", "order"]


def test_given_a_policy_cache_when_one_token_repeats_then_the_authorizer_runs_once_per_ttl() -> None:
    now = [0.0]
    cache = PolicyCache(60, clock=lambda: now[0])
    runs: list[int] = []

    def authorize() -> dict[str, str]:
        runs.append(1)
        return {"principalId": "u1"}

    verdicts = [cache.verdict("t1", authorize) for _ in range(5)]
    now[0] = 60.0  # the TTL has passed: API Gateway asks again
    verdicts.append(cache.verdict("t1", authorize))
    verdicts.append(cache.verdict("t2", authorize))  # another token misses on its own

    assert len(runs) == cache.misses == 3
    assert verdicts[0] == {"principalId": "u1"}


def test_given_a_deny_when_cached_then_it_is_reused_too() -> None:
    cache = PolicyCache(300, clock=lambda: 0.0)

    assert cache.verdict("bad", lambda: None) is None
    assert cache.verdict("bad", lambda: {"principalId": "x"}) is None


def test_given_the_bare_app_when_called_then_it_answers_200() -> None:
    call = direct_call(bare_app(), ApiRequest("GET", "/ping").proxy_event(), FakeLambdaContext())

    assert call() == 200


def test_given_deny_and_allow_policies_when_read_then_only_allow_passes_a_context_on() -> None:
    allow = {
        "principalId": "u1",
        "policyDocument": {"Statement": [{"Effect": "Allow"}]},
        "context": {"user_id": "u1"},
    }
    deny = {"principalId": "anonymous", "policyDocument": {"Statement": [{"Effect": "Deny"}]}, "context": {}}

    assert authorizer_context(allow) == {"principalId": "u1", "user_id": "u1"}
    assert authorizer_context(deny) is None


# -- cost per order ------------------------------------------------------------------------------------


def test_given_typed_dynamodb_values_when_sized_then_aws_item_size_rules_apply() -> None:
    assert attribute_size({"S": "héllo"}) == 6
    assert attribute_size({"N": "19.99"}) == 3
    assert attribute_size({"BOOL": True}) == 1
    assert attribute_size({"L": [{"S": "ab"}]}) == 3 + 1 + 2
    assert item_size({"id": {"S": "abc"}, "m": {"M": {"k": {"S": "v"}}}}) == (2 + 3) + (1 + 3 + 1 + 1 + 1)


def test_given_recorded_calls_when_mapped_then_each_becomes_a_billable_operation() -> None:
    calls = [
        RecordedCall("dynamodb", "get_item", {"ConsistentRead": True}, {}),
        RecordedCall(
            "dynamodb", "transact_write_items", {"TransactItems": [{"Put": {"Item": {"a": {"S": "x"}}}}] * 2}, {}
        ),
        RecordedCall("sqs", "send_message", {"MessageBody": "{}"}, {"MessageId": "m"}),
        RecordedCall("events", "put_events", {"Entries": [{"Source": "s", "DetailType": "d", "Detail": "{}"}]}, {}),
    ]

    billed = billable_calls(calls)

    assert billed.count(Service.DYNAMODB, Op.GET_ITEM_CONSISTENT) == 1
    assert billed.count(Service.DYNAMODB, Op.TRANSACT_WRITE_ITEM) == 2
    assert billed.count(Service.SQS) == 1 and billed.count(Service.EVENTBRIDGE) == 1


def test_given_an_unknown_call_when_mapped_then_it_is_refused_rather_than_priced_at_zero() -> None:
    with pytest.raises(ValueError, match=r"dynamodb\.scan"):
        billable_calls([RecordedCall("dynamodb", "scan", {}, {})])


def test_given_the_checkout_path_when_priced_then_every_synchronous_service_is_counted() -> None:
    from bench.cost_per_order import measure_cost_per_order

    result = measure_cost_per_order(Options(ROOT))

    assert {c.service for c in result.calls} == {"dynamodb", "sqs", "sns", "events"}
    assert result.billed.count(Service.LAMBDA) == 2
    assert Decimal(0) < result.breakdown.total < Decimal("0.001")


# -- end to end: the call log, its windows, and what one order costs ---------------------------------


def test_given_signed_requests_when_logged_then_service_and_qualified_operation_are_named() -> None:
    auth = "AWS4-HMAC-SHA256 Credential=testing/20261127/us-east-1/dynamodb/aws4_request, SignedHeaders=host"
    transact = json.dumps({"TransactItems": [{"Put": {}}, {"Put": {}}]}).encode()
    consistent = json.dumps({"TableName": "t", "ConsistentRead": True}).encode()
    events = json.dumps({"Entries": [{"Source": "ecommerce.orders"}]}).encode()

    assert service_of(auth) == "dynamodb" and service_of("") == "unknown"
    assert operation_of("POST", "/", "DynamoDB_20120810.TransactWriteItems", "", transact) == "TransactWriteItems[2]"
    assert operation_of("POST", "/", "DynamoDB_20120810.GetItem", "", consistent) == "GetItem(ConsistentRead)"
    assert operation_of("POST", "/", "AWSEvents.PutEvents", "", events) == "PutEvents(ecommerce.orders)"
    assert operation_of("POST", "/", "", "application/x-www-form-urlencoded", b"Action=Publish&TopicArn=x") == "Publish"
    assert operation_of("POST", "/2015-03-31/functions/f/invocations", "", "", b"{}") == "Invoke"
    assert operation_of("POST", "/", "DynamoDB_20120810.TransactWriteItems", "", b"not json") == "TransactWriteItems"


def test_given_a_call_log_when_read_in_windows_then_each_window_counts_only_its_lines(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    log.write_text("sqs SendMessage\n")
    reader = CallLogReader(log)
    reader.mark()
    with log.open("a") as out:
        out.write("sqs SendMessage\ndynamodb GetItem(ConsistentRead)\nsqs Receive")  # the last line is unfinished

    assert reader.since_mark() == {("sqs", "SendMessage"): 1, ("dynamodb", "GetItem(ConsistentRead)"): 1}
    with log.open("a") as out:
        out.write("Message\n")
    assert reader.since_mark() == {("sqs", "ReceiveMessage"): 1}


def test_given_window_idle_and_polls_when_attributed_then_per_order_nets_them_out_and_splits_emulation() -> None:
    window = {("sqs", "SendMessage"): 10, ("dynamodb", "GetItem"): 30, ("states", "DescribeExecution"): 10}
    counted = per_order(window, 10, idle={("dynamodb", "GetItem"): 5}, polls={("dynamodb", "GetItem"): 20})
    app, emulation = split_emulation(counted)

    assert app == {("sqs", "SendMessage"): 1.0, ("dynamodb", "GetItem"): 0.5}
    assert emulation == {("states", "DescribeExecution"): 1.0}
    assert by_service(app) == {"dynamodb": 0.5, "sqs": 1.0}
    with pytest.raises(ValueError):
        per_order(window, 0)


def test_given_completions_and_latencies_when_summarised_then_rate_and_percentiles_are_exact() -> None:
    assert completion_rate([10.0, 10.5, 11.0, 12.0]) == 1.5
    assert completion_rate([3.0]) == 0.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0
    assert LoadPlan(seconds=2, rate=1.5).offsets() == [0.0, 2 / 3, 4 / 3]


def test_given_the_workflow_when_the_happy_path_is_walked_then_eleven_states_and_their_log_lines() -> None:
    definition = json.loads((ROOT / "statemachine.json").read_text())

    path = happy_path_states(definition, HAPPY_PATH)

    assert path[:6] == [
        "StartOrResume",
        "ValidateOrder",
        "CheckInventory",
        "ProcessPayment",
        "PaymentChoice",
        "FulfillOrder",
    ]
    assert path[-2:] == ["CompleteOrder", "OrderCompleted"] and len(path) == 11
    # 47 lines: what the local stage's execution log held for a completed order (localstage/sfn_logs.py)
    assert execution_log_lines(definition, HAPPY_PATH) == 47


def test_given_our_order_when_priced_then_express_is_one_execution_and_both_designs_pay_the_edge() -> None:
    # GIVEN the recorded calls of our order and the seed's design
    ours, _ = our_calls(ROOT, {("lambda", "Invoke"): 7.0, ("states", "StartExecution"): 1.0})
    seed, _ = seed_calls()
    # THEN ours is one Express execution, no transitions; both pay one REST request and one trace
    assert ours.count(Service.STEP_FUNCTIONS, Op.EXPRESS_EXECUTION) == 1
    assert ours.count(Service.STEP_FUNCTIONS, Op.STATE_TRANSITION) == 0
    # AND ours pays the watchdog's index: the deadline's arrival and removal (no call count sees them)
    assert ours.count(Service.DYNAMODB, Op.PUT_ITEM) == DEADLINE_INDEX_WRITES == 2
    for design in (ours, seed):
        assert design.count(Service.API_GATEWAY, Op.REST_API_REQUEST) == 1
        assert design.count(Service.XRAY, Op.TRACE_RECORDED) == 1  # 1M orders a month: the reservoir takes all
    # and the same order on a Standard workflow pays its transitions instead
    definition = json.loads((ROOT / "statemachine.json").read_text())
    standard = as_workflow(ours, our_workflow(definition, STANDARD))
    assert standard.count(Service.STEP_FUNCTIONS, Op.STATE_TRANSITION) == 11
    assert standard.count(Service.STEP_FUNCTIONS, Op.EXPRESS_EXECUTION) == 0


def test_given_counted_calls_when_priced_then_items_and_consistency_set_the_units() -> None:
    billed = billable_from_counts(
        {
            ("dynamodb", "TransactWriteItems[2]"): 1.0,
            ("dynamodb", "GetItem(ConsistentRead)"): 2.0,
            ("events", "PutEvents(ecommerce.orders)"): 1.0,
            ("lambda", "Invoke"): 7.0,  # priced as invocations, not as a call
            ("states", "StartExecution"): 1.0,
            ("secretsmanager", "GetSecretValue"): 0.1,  # a cold authorizer now and then
        }
    )

    assert billed.count(Service.SECRETS_MANAGER, Op.GET_SECRET_VALUE) == Decimal("0.1")
    assert billed.count(Service.DYNAMODB, Op.TRANSACT_WRITE_ITEM) == 2
    assert billed.count(Service.DYNAMODB, Op.GET_ITEM_CONSISTENT) == 2
    assert billed.count(Service.EVENTBRIDGE) == 1 and billed.count(Service.LAMBDA) == 0
    with pytest.raises(ValueError):
        billable_from_counts({("kinesis", "PutRecord"): 1.0})


def test_given_the_seed_design_when_itemised_then_every_invocation_publishes_two_metrics() -> None:
    calls, invocations = seed_calls()
    runs = sum(i.count for i in invocations)

    assert runs == 16
    assert calls.count(Service.CLOUDWATCH, Op.PUT_METRIC_DATA) == 2 * runs + 2
    assert calls.count(Service.STEP_FUNCTIONS, Op.STATE_TRANSITION) == 9


@pytest.mark.parametrize(("returncode", "seconds", "holds"), [(0, 540.0, True), (2, 300.0, False), (0, 660.0, False)])
def test_the_test_suite_bar_holds_only_for_a_passing_make_test_under_ten_minutes(
    returncode: int, seconds: float, holds: bool
) -> None:
    from bench.test_suite import TestSuiteResult

    [figure] = TestSuiteResult(seconds, returncode, "1 failed").figures()

    assert figure.holds is holds
    assert ("exited 2" in figure.note) is (returncode != 0)


def test_a_figure_measured_earlier_in_the_run_reaches_the_next_benchmark_through_the_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from dataclasses import dataclass, replace

    from bench.__main__ import main

    seen: list[object] = []

    @dataclass
    class Counted:
        def figures(self) -> list[Figure]:
            return [Figure(name="counted", value="1")]

        def details(self) -> str:
            return ""

        def carry(self, options: Options) -> Options:
            return replace(options, e2e_calls_per_order={("sqs", "SendMessage"): 1.0})

    @dataclass
    class Priced(Counted):
        def carry(self, options: Options) -> Options:
            return options

    def price(options: Options) -> Priced:
        seen.append(options.e2e_calls_per_order)
        return Priced()

    registry = Registry([])
    registry.register(Benchmark("count", "count", "-", lambda o: Counted()))
    registry.register(Benchmark("price", "price", "-", price))

    assert main(["--no-write", "--only", "count", "--only", "price"], registry) == 0
    assert main(["--no-write", "--only", "price"], registry) == 0
    assert seen == [{("sqs", "SendMessage"): 1.0}, None]  # handed on within a run, never from an earlier one
    capsys.readouterr()
