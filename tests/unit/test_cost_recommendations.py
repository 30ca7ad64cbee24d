"""The cost optimizer's judgements and inputs, without AWS."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from chalicelib.cost import US_EAST_1
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.usage import FunctionConfig, FunctionUsage, TuningResult, tuning_key
from chalicelib.services.cost_optimizer import CostRun, report_key
from chalicelib.services.cost_recommendations import memory_from_tuning, memory_from_usage, size_for_peak

pytestmark = pytest.mark.unit


def usage(invocations: int, avg_ms: int, peak_mb: str | None) -> FunctionUsage:
    return FunctionUsage(
        Decimal(invocations), Decimal(invocations * avg_ms), max_memory_used_mb=Decimal(peak_mb) if peak_mb else None
    )


def test_given_peaks_when_sizing_then_64_mb_steps_with_20_percent_headroom_and_at_least_128() -> None:
    assert [size_for_peak(Decimal(p)) for p in ("50", "103", "103.1", "400")] == [128, 192, 192, 512]


def test_given_a_peak_near_the_allocation_when_analysed_then_raise_memory_and_the_saving_is_at_most_zero() -> None:
    analysis = memory_from_usage(FunctionConfig("f", 256), usage(100, 80, "240"), 14, US_EAST_1)
    rec = analysis.recommendation
    assert rec is not None and rec.details["recommended_memory_mb"] == 320 and rec.confidence == "medium"
    assert rec.monthly_saving_max == 0 and rec.monthly_saving_min is not None and rec.monthly_saving_min < 0


def test_given_long_invocations_when_memory_looks_oversized_then_low_confidence() -> None:
    slow = memory_from_usage(FunctionConfig("f", 2048), usage(100, 3_000, "100"), 14, US_EAST_1)
    quick = memory_from_usage(FunctionConfig("f", 2048), usage(100, 30, "100"), 14, US_EAST_1)
    assert slow.recommendation is not None and slow.recommendation.confidence == "low"
    assert quick.recommendation is not None and quick.recommendation.confidence == "medium"


def test_given_a_fitting_allocation_when_analysed_then_optimized_without_a_recommendation() -> None:
    analysis = memory_from_usage(FunctionConfig("f", 256), usage(100, 30, "180"), 14, US_EAST_1)
    assert (analysis.status, analysis.recommendation) == ("optimized", None)


def test_given_tuning_where_the_current_size_is_cheapest_then_optimized() -> None:
    tuning = TuningResult("f", "x86_64", "t", {128: Decimal(100), 256: Decimal(90)})
    analysis = memory_from_tuning(FunctionConfig("f", 128), usage(100, 100, None), tuning, 14, US_EAST_1)
    assert (analysis.status, analysis.recommendation) == ("optimized", None)


def test_given_a_tuning_document_when_malformed_then_validation_error_and_the_key_is_documented() -> None:
    with pytest.raises(ValidationError):
        TuningResult.from_json({"results": [{"memory_mb": 64, "billed_ms_avg": 1}]})
    with pytest.raises(ValidationError):
        TuningResult.from_json({"results": []})
    assert tuning_key("fn") == "memory-tuning/fn/latest.json"


def test_given_events_when_parsing_a_run_then_options_from_detail_and_the_schedule_names_the_report() -> None:
    run = CostRun.from_event({"time": "2026-11-27T06:00:00Z", "detail": {"days": 7, "dry_run": True}})
    assert (run.days, run.dry_run, report_key(run.at)) == (7, True, "cost-optimization-report-20261127-060000.json")
    assert CostRun.from_event({"function_names": ["a"]}, now=datetime(2026, 1, 1, tzinfo=UTC)).function_names == ("a",)
    for bad in ({"days": 0}, {"days": "7"}, {"function_names": "a"}):
        with pytest.raises(ValidationError):
            CostRun.from_event({"detail": bad})
