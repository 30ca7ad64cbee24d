"""runbooks.tuning: REPORT parsing, strategies and Power Tuning's tie-breaks, cost per size, restore on failure."""

from __future__ import annotations

import base64
import io
import json
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.cost import Architecture, memory_cost_curve
from chalicelib.domain.usage import TuningResult
from runbooks import tuning
from runbooks.tuning import Candidate, Report, SizeResult, WeightedPayload

pytestmark = pytest.mark.unit

LOCAL = (
    "REPORT RequestId: r1\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 256 MB\tMax Memory Used: 41 MB"
    "\tInit Duration: 57.10 ms\tMeasured Duration: 3.00 ms"
)


def test_given_a_local_cold_report_then_every_field_is_read() -> None:
    report = tuning.parse_report(LOCAL)
    assert report == Report("r1", 12.34, 13, 256, 41, 57.1, "", 3.0)
    assert report.cold


def test_given_an_aws_warm_report_with_a_status_then_it_parses() -> None:
    line = "REPORT RequestId: a-b\tDuration: 1.20 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 40 MB\tStatus: timeout"
    report = tuning.parse_report(line)
    assert (report.billed_ms, report.init_ms, report.status, report.cold) == (2, None, "timeout", False)
    with pytest.raises(ValueError):
        tuning.parse_report("REPORT RequestId: x\tDuration: 1 ms")


def test_given_weights_then_every_size_gets_the_same_mix() -> None:
    sequence = tuning.payload_sequence([WeightedPayload("a", 3), WeightedPayload("b", 1)], 8)
    assert sorted(sequence) == ["a"] * 6 + ["b"] * 2


def test_cost_strategy_takes_the_cheapest_and_on_equal_cost_the_faster() -> None:
    options = [Candidate(128, 2.0, 30.0), Candidate(256, 1.0, 20.0), Candidate(512, 1.0, 10.0)]
    assert tuning.choose(options, "cost").memory_mb == 512


def test_speed_strategy_takes_the_fastest_and_on_equal_speed_the_cheaper() -> None:
    options = [Candidate(128, 3.0, 10.0), Candidate(256, 2.0, 10.0), Candidate(512, 5.0, 20.0)]
    assert tuning.choose(options, "speed").memory_mb == 256


def test_balanced_strategy_weighs_normalised_cost_and_duration_and_ties_keep_the_smaller_memory() -> None:
    options = [Candidate(128, 1.0, 100.0), Candidate(256, 2.0, 50.0), Candidate(512, 4.0, 25.0)]
    assert tuning.choose(options, "balanced", 1.0).memory_mb == 128  # cost only
    assert tuning.choose(options, "balanced", 0.0).memory_mb == 512  # speed only
    # 0.5: 128 -> .5*.25+.5*1 = .625, 256 -> .5*.5+.5*.5 = .5, 512 -> .5*1+.5*.25 = .625
    assert tuning.choose(options, "balanced", 0.5).memory_mb == 256
    tied = [Candidate(128, 1.0, 2.0), Candidate(256, 2.0, 1.0)]
    assert tuning.choose(tied, "balanced", 0.5).memory_mb == 128


def _report(ms: float, memory: int, cold: bool = False) -> Report:
    return Report("r", ms, int(-(-ms // 1)), memory, 40, 50.0 if cold else None)


def test_cost_per_size_includes_the_request_charge_and_uses_warm_billed_durations() -> None:
    results = [
        SizeResult(128, [_report(500.0, 128, cold=True), _report(99.2, 128), _report(99.5, 128), _report(99.9, 128)]),
        SizeResult(1024, [_report(12.2, 1024), _report(12.4, 1024)]),
    ]
    tuning.price_sizes(results, Architecture.X86_64)
    expected = memory_cost_curve({128: Decimal(100), 1024: Decimal(13)})
    assert [r.cost_per_invocation for r in results] == [p.cost_per_invocation for p in expected]
    assert results[0].cost_per_invocation > Decimal("0.2") / 1_000_000  # at least the request charge
    document = tuning.optimizer_document("fn", "x86_64", results, 4, "2026-11-27T10:00:00Z")
    parsed = TuningResult.from_json(document)  # the cost optimizer can read what we save
    assert parsed.billed_ms_by_memory == {128: Decimal("100.0"), 1024: Decimal("13.0")}


class FakeLambda:
    """Just enough of the Lambda API: memory per function, invokes that answer with a REPORT tail."""

    def __init__(self, memory: int = 256, fail_at: int | None = None) -> None:
        self.memory = memory
        self.fail_at = fail_at
        self.updates: list[int] = []

    def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:
        return {"MemorySize": self.memory, "LastUpdateStatus": "Successful", "Architectures": ["x86_64"]}

    def update_function_configuration(self, FunctionName: str, MemorySize: int) -> None:
        self.memory = MemorySize
        self.updates.append(MemorySize)

    def invoke(self, FunctionName: str, Payload: bytes, LogType: str) -> dict[str, Any]:
        if self.memory == self.fail_at:
            raise ConnectionError("endpoint went away")
        line = f"REPORT RequestId: x\tDuration: {1000 / self.memory:.2f} ms\tBilled Duration: 5 ms\tMemory Size: {self.memory} MB\tMax Memory Used: 40 MB"
        return {"LogResult": base64.b64encode(line.encode()).decode(), "Payload": io.BytesIO(json.dumps(None).encode())}


def test_given_a_measurement_then_the_original_memory_is_restored() -> None:
    fake = FakeLambda(memory=256)
    results, original = tuning.LambdaTuner(fake, "fn").measure([512, 128], [WeightedPayload({})], 3)
    assert [r.memory_mb for r in results] == [128, 512]
    assert fake.memory == 256 and fake.updates == [128, 512, 256]
    assert original["MemorySize"] == 256


def test_given_an_invocation_that_fails_then_the_original_memory_is_still_restored() -> None:
    fake = FakeLambda(memory=256, fail_at=512)
    with pytest.raises(ConnectionError):
        tuning.LambdaTuner(fake, "fn").measure([128, 512, 1024], [WeightedPayload({})], 2)
    assert fake.memory == 256


def test_summary_separates_cold_and_warm_and_gives_bootstrap_intervals() -> None:
    result = SizeResult(256, [_report(80.0, 256, cold=True), *(_report(10.0 + i, 256) for i in range(5))])
    tuning.price_sizes([result], Architecture.ARM64)
    row = result.summary(resamples=200)
    assert (row["cold"], row["warm"]) == (1, 5)
    assert row["cold_duration_ms_mean"] == 80.0 and row["duration_ms_trimmed_mean"] == 12.0
    low, high = row["duration_ms_p50_ci95"]
    assert low <= row["duration_ms_p50"] <= high
