"""The benchmark harness's pure parts: maths, parsers, the table, the zip inspector, the events.

No figure is timed here: benchmarks are reported by ``make bench``, never asserted by the suite.
"""

from __future__ import annotations

import json
import socket
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest

from bench.calls import CallLogReader, by_service, per_order, split_emulation
from bench.coldstart import (
    FLOOR,
    PEER_OF,
    SDK_SHARE,
    VARIANTS,
    ColdStartResult,
    Sample,
    imported_after,
    parse_child_output,
    unread_udp_address,
)
from bench.cost_per_order import RecordedCall, attribute_size, billable_calls, item_size
from bench.e2e import completion_rate, percentile
from bench.e2e_load import LoadPlan
from bench.environment import active_tracing
from bench.events import ApiRequest, FakeLambdaContext, authorizer_context, fill_path
from bench.figures import Figure, render_notes, render_table
from bench.importtime import parse_importtime, top_cumulative
from bench.package import distribution_name, inspect_zip
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
from bench.registry import Benchmark, Options, Registry, run_benchmark
from bench.report import MARKER, Machine, cpu_model, intro_of, render_report
from bench.stats import NoSamplesError, median, ratio
from bench.warm import PolicyCache, app_scenarios, bare_app, direct_call, import_app
from chalicelib.bootstrap import Container
from chalicelib.cost import Op, Service
from chalicelib.cost.workflow import STANDARD
from localstage.call_log import operation_of, service_of

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

IMPORTTIME_SAMPLE = """\
import time: self [us] | cumulative | imported package
import time:       124 |        124 |   _io
import time:       379 |        790 | _frozen_importlib_external
/some/path.py:3: DeprecationWarning: not an import line
import time:       370 |        370 |         botocore
import time:       248 |      42216 |       botocore.config
import time:       395 |      42727 |     chalicelib.adapters.aws
import time:      6702 |     164384 | app
"""


# -- stats ------------------------------------------------------------------------------------------


def test_given_an_odd_number_of_samples_when_taking_the_median_then_the_middle_one_ignores_the_outlier() -> None:
    assert median([3.0, 1.0, 250.0]) == 3.0


def test_given_an_even_number_of_samples_when_taking_the_median_then_the_two_middle_ones_are_averaged() -> None:
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5


def test_given_no_samples_when_taking_the_median_then_it_refuses() -> None:
    with pytest.raises(NoSamplesError):
        median([])


def test_given_a_value_and_a_baseline_when_taking_the_ratio_then_it_is_value_over_baseline() -> None:
    assert ratio(150.0, 120.0) == pytest.approx(1.25)


def test_given_a_zero_baseline_when_taking_the_ratio_then_it_refuses() -> None:
    with pytest.raises(ValueError, match="baseline"):
        ratio(1.0, 0.0)


# -- importtime ----------------------------------------------------------------------------------


def test_given_importtime_output_when_parsed_then_header_and_noise_are_skipped_and_depth_is_read() -> None:
    entries = parse_importtime(IMPORTTIME_SAMPLE)

    assert [e.module for e in entries] == [
        "_io",
        "_frozen_importlib_external",
        "botocore",
        "botocore.config",
        "chalicelib.adapters.aws",
        "app",
    ]
    by_name = {e.module: e for e in entries}
    assert by_name["app"].depth == 0 and by_name["app"].cumulative_us == 164384 and by_name["app"].self_us == 6702
    assert by_name["chalicelib.adapters.aws"].depth == 2
    assert by_name["botocore"].depth == 4


def test_given_parsed_imports_when_taking_the_top_then_they_are_ordered_by_cumulative_time() -> None:
    top = top_cumulative(parse_importtime(IMPORTTIME_SAMPLE), count=3)

    assert [e.module for e in top] == ["app", "chalicelib.adapters.aws", "botocore.config"]


# -- table and report -------------------------------------------------------------------------------


def test_given_figures_when_rendered_then_every_row_has_the_six_columns_and_a_verdict() -> None:
    figures = [
        Figure("cold start", "120.0 ms", "<= 1.25x floor", True, "100.0 ms", "1.20x"),
        Figure("warm | rate", "9/s", ">= 0.75x bare", False, "10/s", "0.90x"),
        Figure("cost", "$1"),
        Figure.failed("package", "<= 2 MB", "chalice package exited 2"),
    ]

    lines = render_table(figures).splitlines()

    assert lines[0].split("|")[1].strip() == "figure" and lines[0].split("|")[6].strip() == "holds"
    assert len({len(line) for line in lines}) == 1  # columns aligned
    verdicts = [line.rsplit("|", 2)[1].strip() for line in lines[2:]]
    assert verdicts == ["yes", "no", "n/a", "no"]
    assert "warm \\| rate" in lines[3]  # a pipe inside a cell does not split it


def test_given_a_failed_figure_when_notes_are_rendered_then_its_error_is_listed() -> None:
    notes = render_notes([Figure.failed("package", "<= 2 MB", "no region"), Figure("x", "1", note="why")])

    assert "**package** failed: no region" in notes and "**x**: why" in notes


def test_given_a_document_with_a_marker_when_the_intro_is_kept_then_only_text_above_the_marker_survives() -> None:
    document = f"# Benchmarks\n\nHand-written.\n\n{MARKER}\n\nold table\n"

    assert intro_of(document) == f"# Benchmarks\n\nHand-written.\n\n{MARKER}"


def test_given_a_document_without_a_marker_when_the_intro_is_kept_then_all_of_it_is_kept_above_a_new_marker() -> None:
    assert intro_of("# Mine\n") == f"# Mine\n\n{MARKER}"
    assert intro_of("").endswith(MARKER)


def test_given_cpuinfo_when_reading_the_model_then_the_model_name_line_is_used() -> None:
    assert cpu_model("processor\t: 0\nmodel name\t: Intel(R) Xeon(R)\nflags\t: fpu\n") == "Intel(R) Xeon(R)"
    assert cpu_model("processor\t: 0\n") is None


def test_given_sections_when_the_report_is_rendered_then_it_names_commit_machine_and_python() -> None:
    from datetime import UTC, datetime

    from bench.registry import Section

    report = render_report(
        [Section("s", [Figure("f", "1")], "### details")],
        Machine("Some CPU", 2, "3.11.7", "Linux"),
        "abc1234",
        datetime(2026, 1, 2, tzinfo=UTC),
        12.0,
    )

    assert "`abc1234`" in report and "Some CPU, 2 cores, Python 3.11.7" in report and "### details" in report


# -- registry ---------------------------------------------------------------------------------------


def test_given_a_benchmark_that_raises_when_run_then_it_becomes_a_failed_figure() -> None:
    def broken(options: Options) -> Figure:
        raise RuntimeError("no network")

    section = run_benchmark(Benchmark("b", "broken figure", "<= 1", broken), Options(ROOT))  # type: ignore[arg-type]

    assert section.figures[0].holds is False and "no network" in section.figures[0].error


def test_given_an_opt_in_benchmark_when_not_asked_for_then_it_is_not_selected() -> None:
    registry = Registry([])
    registry.register(Benchmark("slow", "slow", "-", lambda o: None, enabled=lambda o: o.with_test_suite))  # type: ignore[arg-type,return-value]

    assert registry.selected(Options(ROOT)) == []
    assert [b.name for b in registry.selected(Options(ROOT, with_test_suite=True))] == ["slow"]
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Benchmark("slow", "slow", "-", lambda o: None))  # type: ignore[arg-type,return-value]


# -- cold start child --------------------------------------------------------------------------------


def test_given_child_output_when_parsed_then_time_status_and_sdk_are_read_from_the_bench_line() -> None:
    assert parse_child_output("noise\nBENCH 123.5 200 1\n") == (123.5, 200, True)
    assert parse_child_output("BENCH 80.0 0 0\n").sdk_loaded is False
    with pytest.raises(ValueError, match="no BENCH line"):
        parse_child_output("Traceback ...")


def test_given_the_cold_start_variants_then_the_app_runs_traced_as_deployed_and_once_untraced() -> None:
    by_name = {v.name: v for v in VARIANTS}
    # GIVEN the floor, which is not an app, and the app's variants
    assert not by_name[FLOOR].traced
    ours = [v for v in VARIANTS if v.name != FLOOR and not v.peer]
    # THEN every request is measured with tracing on, and the SDK's share against the same request off
    traced, untraced = SDK_SHARE
    assert by_name[traced].traced and not by_name[untraced].traced
    assert by_name[traced].script == by_name[untraced].script
    assert [v.name for v in ours if not v.traced] == [untraced, "product-untraced"]
    # AND each peer variant is the same request, tracing as named, on the Powertools handler
    for mine, peer in PEER_OF.items():
        assert by_name[peer].peer and by_name[peer].traced == by_name[mine].traced
        assert by_name[peer].aws_calls == by_name[mine].aws_calls
        assert "peer_app.handler" in by_name[peer].script and "app.app(" in by_name[mine].script


def test_given_samples_traced_and_not_when_reported_then_the_sdk_share_is_the_difference_of_the_medians() -> None:
    # GIVEN a floor of 100 ms, the app at 110 ms traced and 80 ms untraced
    result = ColdStartResult(runs=3, labels={v.name: v.label for v in VARIANTS})
    for name, ms in ((FLOOR, 100.0), ("health", 110.0), ("health-untraced", 80.0)):
        result.samples[name] = [Sample(ms + delta, ms + 30) for delta in (-1.0, 0.0, 5.0)]
    # WHEN the figures are made
    figures = {f.name: f for f in result.figures()}
    # THEN each variant is judged against the floor, and the SDK's share is 30 ms, 0.30x the floor
    traced = figures["cold start, import app + first GET /health (200), tracing on as deployed"]
    assert (traced.value, traced.ratio, traced.holds) == ("110.0 ms", "1.10x", True)
    share = figures["cold start, the X-Ray SDK's share (tracing on less off, GET /health)"]
    assert (share.value, share.ratio, share.holds) == ("30.0 ms", "0.30x", None)


def test_given_importtime_of_app_then_tracing_when_split_then_only_what_came_after_app_is_kept() -> None:
    entries = parse_importtime(
        IMPORTTIME_SAMPLE
        + "import time:       300 |        300 |     asyncio.events\n"
        + "import time:       100 |        400 |   wrapt\n"
        + "import time:       200 |        600 | aws_xray_sdk.core\n"
    )

    assert [e.module for e in imported_after(entries)] == ["asyncio.events", "wrapt", "aws_xray_sdk.core"]
    with pytest.raises(ValueError, match="not imported"):
        imported_after(entries, "nothing")


def test_given_lambda_active_tracing_then_the_child_gets_a_daemon_a_sampled_trace_header_and_log_error() -> None:
    env = active_tracing("127.0.0.1:40000")

    assert env["AWS_XRAY_DAEMON_ADDRESS"] == "127.0.0.1:40000"
    assert env["_X_AMZN_TRACE_ID"].startswith("Root=1-") and env["_X_AMZN_TRACE_ID"].endswith(";Sampled=1")
    assert env["AWS_XRAY_CONTEXT_MISSING"] == "LOG_ERROR"


def test_given_the_children_daemon_address_then_it_is_a_loopback_udp_port_held_until_the_run_ends() -> None:
    with unread_udp_address() as address:
        host, port = address.rsplit(":", 1)
        assert host == "127.0.0.1"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other, pytest.raises(OSError):
            other.bind((host, int(port)))  # nobody else can listen there meanwhile


# -- deployment package ------------------------------------------------------------------------------


def test_given_top_level_zip_names_when_normalised_then_they_name_the_distribution() -> None:
    assert distribution_name("numpy-2.4.6.dist-info") == "numpy"
    assert distribution_name("PyJWT-2.15.1.dist-info") == "pyjwt"
    assert distribution_name("six.py") == "six"
    assert distribution_name("jupyter_core") == "jupyter_core"


def _zip(tmp_path: Path, *names: str) -> Path:
    path = tmp_path / "deployment.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name, "x = 1\n")
    return path


def test_given_a_zip_with_dev_packages_when_inspected_then_they_are_listed_as_forbidden(tmp_path: Path) -> None:
    path = _zip(
        tmp_path,
        "app.py",
        "chalicelib/__init__.py",
        "chalicelib/__pycache__/config.cpython-311.pyc",
        "jwt/__init__.py",
        "numpy/__init__.py",
        "numpy-2.4.6.dist-info/METADATA",
        "jupyter_core/__init__.py",
        "_pytest/__init__.py",
        "botocore/__init__.py",
    )

    contents = inspect_zip(path)

    assert contents.forbidden == ["_pytest", "botocore", "jupyter_core", "numpy", "numpy-2.4.6.dist-info"]
    assert "jwt" in contents.top_level and "jwt" not in contents.forbidden
    assert contents.pycache_files == 1
    assert contents.size_bytes == path.stat().st_size
    assert contents.missing == ["aws_xray_sdk", "wrapt"]  # the vendored SDK is required


def test_given_a_zip_with_the_vendored_sdk_when_inspected_then_nothing_required_is_missing(tmp_path: Path) -> None:
    path = _zip(
        tmp_path,
        "app.py",
        "aws_xray_sdk/__init__.py",
        "aws_xray_sdk/__pycache__/__init__.cpython-311.pyc",
        "wrapt/__init__.py",
        "wrapt-2.5.2.dist-info/METADATA",
    )

    contents = inspect_zip(path)

    assert contents.missing == [] and contents.forbidden == []
    # AND its bytecode is counted apart from a work tree's stray __pycache__
    assert contents.vendored_bytecode_files == 1 and contents.pycache_files == 0


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


def test_given_seeded_data_when_each_scenario_runs_then_the_app_answers_200(memory_container: Container) -> None:
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
