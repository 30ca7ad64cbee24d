"""The benchmark harness's pure parts: maths, parsers, the table, the report, the cold-start child, the zip inspector.

No figure is timed here: benchmarks are reported by ``make bench``, never asserted by the suite.
"""

from __future__ import annotations

import py_compile
import socket
import sys
import zipfile
from pathlib import Path

import pytest

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
from bench.environment import active_tracing
from bench.figures import Figure, render_notes, render_table
from bench.importtime import parse_importtime, top_cumulative
from bench.package import distribution_name, inspect_zip
from bench.registry import Benchmark, Options, Registry, run_benchmark
from bench.report import MARKER, Machine, cpu_model, intro_of, render_report
from bench.stats import NoSamplesError, median, ratio

CHECKED_HASH = py_compile.PycInvalidationMode.CHECKED_HASH
TAG = sys.implementation.cache_tag

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
    assert contents.stray_bytecode_files == 1  # not checked by hash: stale once zipped
    assert contents.size_bytes == path.stat().st_size
    assert contents.missing == ["aws_xray_sdk", "wrapt"]  # the vendored SDK is required


def _pyc(tmp_path: Path, mode: py_compile.PycInvalidationMode) -> bytes:
    source = tmp_path / "module.py"
    source.write_text("x = 1\n")
    return Path(
        py_compile.compile(str(source), cfile=str(tmp_path / "module.pyc"), invalidation_mode=mode)
    ).read_bytes()


def test_given_a_zip_with_the_vendored_sdk_when_inspected_then_nothing_required_is_missing(tmp_path: Path) -> None:
    path = _zip(
        tmp_path,
        "app.py",
        "aws_xray_sdk/__init__.py",
        "wrapt/__init__.py",
        "wrapt-2.5.2.dist-info/METADATA",
    )
    checked, by_mtime = (_pyc(tmp_path, mode) for mode in (CHECKED_HASH, py_compile.PycInvalidationMode.TIMESTAMP))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(f"__pycache__/app.{TAG}.pyc", checked)
        archive.writestr(f"aws_xray_sdk/__pycache__/__init__.{TAG}.pyc", checked)
        archive.writestr(f"wrapt/__pycache__/__init__.{TAG}.pyc", by_mtime)

    contents = inspect_zip(path)

    assert contents.missing == [] and contents.forbidden == []
    # AND bytecode checked by hash is told from bytecode Lambda would find stale (checked by mtime)
    assert contents.checked_bytecode_files == 2 and contents.stray_bytecode_files == 1
    # AND a module whose only bytecode is stale counts as one compiled at every cold start
    assert contents.modules_without_bytecode == ["wrapt/__init__.py"]
