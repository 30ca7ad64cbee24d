"""runbooks.stats and runbooks.params: exact percentiles, trimmed means, bootstrap intervals, parameter checks."""

from __future__ import annotations

import pytest

from runbooks import params, stats

pytestmark = pytest.mark.unit


def test_given_samples_when_nearest_rank_percentiles_then_each_is_an_observed_value() -> None:
    samples = list(range(1, 101))  # 1..100
    assert [stats.percentile(samples, p) for p in (50, 90, 95, 99, 100)] == [50, 90, 95, 99, 100]
    assert stats.percentile([15, 20, 35, 40, 50], 40) == 20
    assert stats.percentile([7], 99) == 7


def test_given_no_samples_or_bad_percentile_then_errors() -> None:
    with pytest.raises(ValueError):
        stats.percentile([], 50)
    with pytest.raises(ValueError):
        stats.percentile([1], 101)


def test_given_summary_then_max_and_count_are_exact_and_empty_is_nan() -> None:
    summary = stats.summary([3.0, 1.0, 2.0])
    assert summary["count"] == 3 and summary["max"] == 3.0 and summary["p50"] == 2.0
    assert stats.summary([])["count"] == 0


def test_given_outliers_when_trimmed_mean_then_20_percent_dropped_each_side() -> None:
    assert stats.trimmed_mean([1, 2, 3, 4, 100]) == 3.0
    assert stats.trimmed_mean([1, 2, 3, 4, 100], trim=0) == 22.0
    assert stats.trimmed_mean([5, 7]) == 6.0  # floor(2 * 0.2) = 0 dropped


def test_given_samples_when_bootstrap_then_interval_brackets_estimate_and_is_reproducible() -> None:
    samples = [10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 40.0]
    first = stats.bootstrap_interval(samples, stats.trimmed_mean, resamples=500, seed=3)
    again = stats.bootstrap_interval(samples, stats.trimmed_mean, resamples=500, seed=3)
    assert first == again
    assert first.low <= first.estimate <= first.high
    assert min(samples) <= first.low and first.high <= max(samples)


def test_given_one_sample_when_bootstrap_then_interval_is_that_sample() -> None:
    interval = stats.bootstrap_interval([4.0], lambda s: stats.percentile(s, 99))
    assert (interval.low, interval.estimate, interval.high) == (4.0, 4.0, 4.0)


SPEC = {"rate": params.Param(1.0, params.is_number(0.1, 10), "rate"), "name": params.Param("x", params.is_str, "n")}


def test_given_an_injected_unknown_name_when_validating_then_it_is_named() -> None:
    before = params.snapshot({"params": 1})
    namespace = {"params": 1, "rate": 2.0, "name": "a", "rte": 3}
    with pytest.raises(params.ParameterError, match="unknown parameter 'rte'"):
        params.validate(namespace, before, SPEC)


def test_given_a_bad_value_when_validating_then_the_problem_and_the_help_are_said() -> None:
    with pytest.raises(params.ParameterError, match=r"'rate' = 50.*at most 10"):
        params.validate({"rate": 50, "name": "a"}, set(), SPEC)
    assert params.validate({"rate": 2, "name": "a"}, set(), SPEC) == {"rate": 2, "name": "a"}


def test_checks_for_urls_weights_and_loopback() -> None:
    assert params.is_url("ftp://x") is not None and params.is_url("http://127.0.0.1:8000") is None
    assert params.is_loopback_url("http://localhost:1") is None
    assert params.is_loopback_url("https://api.example.com") == "is not a loopback address"
    weights = params.is_weights(("browse", "order"))
    assert weights({"browse": 1}) is None and weights({"buy": 1}) is not None and weights({"order": 0}) is not None
