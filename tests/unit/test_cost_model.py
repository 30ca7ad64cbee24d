"""The cost model against hand-worked examples, most of them the providers' own published pricing examples.

Every expected figure is worked out in the comment above it, from the us-east-1 prices in
chalicelib/cost/prices.py, and asserted as an exact Decimal (or, where a division by 3,600 makes
the exact value a repeating decimal, to a stated number of places).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from chalicelib.cost import (
    DAYS_PER_MONTH,
    US_EAST_1,
    Architecture,
    CostModelError,
    ObservedLambdaUsage,
    Tier,
    billed_ms,
    lambda_cost,
    lambda_cost_of_durations,
    memory_cost_curve,
    monthly_projection,
    provisioned_concurrency_cost,
    to_month,
)
from chalicelib.domain.money import to_cents

pytestmark = pytest.mark.unit

D = Decimal
KB = 1024


# --- Lambda: the pricing page's examples -------------------------------------------------------


def test_given_pricing_page_example_512mb_3m_requests_1s_with_free_tier_when_priced_then_matches_the_page() -> None:
    # Source: https://aws.amazon.com/lambda/pricing/ (stored copy), "Example 1": 512 MB, 3M
    # executions a month, 1 s each, free tier on.
    #   compute: 3,000,000 x 1 s = 3,000,000 s; x 512/1024 = 1,500,000 GB-s; - 400,000 free = 1,100,000
    #   requests: 3M - 1M free = 2M x $0.20/M = $0.40
    # At that page's price of $0.00001667/GB-s: 1,100,000 x 0.00001667 = $18.337 -> $18.34; total $18.74.
    page_duration = dataclasses.replace(US_EAST_1.lambda_.x86_64, duration=(Tier(None, D("0.00001667")),))
    old_page = dataclasses.replace(US_EAST_1.lambda_, x86_64=page_duration)
    as_on_page = lambda_cost(3_000_000, billed_ms_per_invocation=1000, memory_mb=512, free_tier=True, prices=old_page)
    assert (to_cents(as_on_page.duration), to_cents(as_on_page.requests)) == (D("18.34"), D("0.40"))
    assert to_cents(as_on_page.total) == D("18.74")

    # At today's $0.0000166667: 1,100,000 x 0.0000166667 = 18.33337; total 18.73337.
    today = lambda_cost(3_000_000, billed_ms_per_invocation=1000, memory_mb=512, free_tier=True)
    assert today.gb_seconds == D("1500000")
    assert today.duration == D("18.33337")
    assert today.total == D("18.73337")


def test_given_mobile_backend_512mb_3m_requests_120ms_on_x86_when_priced_then_requests_and_duration_exact() -> None:
    # Parameters of the Lambda pricing page's mobile-backend example (3M requests, 120 ms, 512 MB, x86).
    #   GB-s = 3,000,000 x 0.120 s x 0.5 GB = 180,000
    #   duration = 180,000 x 0.0000166667 = 3.000006; requests = 3,000,000 x 0.0000002 = 0.6
    cost = lambda_cost(3_000_000, billed_ms_per_invocation=120, memory_mb=512, architecture=Architecture.X86_64)
    assert cost.gb_seconds == D("180000")
    assert (cost.requests, cost.duration, cost.total) == (D("0.6"), D("3.000006"), D("3.600006"))

    # Free tier on: 180,000 GB-s < 400,000 free -> duration 0; requests (3M - 1M) x 0.0000002 = 0.4.
    free = lambda_cost(3_000_000, billed_ms_per_invocation=120, memory_mb=512, free_tier=True)
    assert (free.duration, free.requests) == (D(0), D("0.4"))


def test_given_same_workload_on_arm64_when_priced_then_arm_duration_price_applies() -> None:
    # x86 vs Arm example (Lambda pricing page): same 180,000 GB-s at the Arm price.
    #   duration = 180,000 x 0.0000133334 = 2.400012; total = 2.400012 + 0.6 = 3.000012
    #   saving against x86: 3.600006 - 3.000012 = 0.599994
    arm = lambda_cost(3_000_000, billed_ms_per_invocation=120, memory_mb=512, architecture=Architecture.ARM64)
    x86 = lambda_cost(3_000_000, billed_ms_per_invocation=120, memory_mb=512, architecture=Architecture.X86_64)
    assert (arm.duration, arm.total) == (D("2.400012"), D("3.000012"))
    assert x86.total - arm.total == D("0.599994")


def test_given_1ms_billing_blog_example_60m_invocations_of_28ms_at_1gb_when_priced_then_matches_blog() -> None:
    # Source: AWS News Blog "New for AWS Lambda - 1ms Billing Granularity Adds Cost Savings" (Dec 2020):
    # a REPORT line with Duration 27.55 ms shows Billed Duration 28 ms; 60M invocations x 28 ms at 1024 MB.
    #   requests = 60,000,000 x 0.0000002 = $12
    #   GB-s = 60,000,000 x 0.028 s x 1 GB = 1,680,000; x 0.0000166667 = 28.000056 (blog: "$28.00")
    assert billed_ms("27.55") == 28
    cost = lambda_cost(60_000_000, billed_ms_per_invocation=billed_ms("27.55"), memory_mb=1024)
    assert (cost.requests, cost.duration, cost.total) == (D("12"), D("28.000056"), D("40.000056"))


# --- Lambda: rounding, tiers, free tier, INIT, ephemeral storage --------------------------------


def test_given_invocations_of_1_2ms_when_billed_then_each_rounds_up_to_2ms_not_the_total() -> None:
    # 1,000 invocations of 1.2 ms: each bills 2 ms -> 2,000 ms (rounding the 1,200 ms total would give 1,200).
    #   GB-s = 2,000 ms x 1 GB / 1000 = 2; duration = 2 x 0.0000166667 = 0.0000333334
    assert billed_ms("1.2") == 2
    cost = lambda_cost_of_durations(["1.2"] * 1000, memory_mb=1024)
    assert (cost.invocations, cost.billed_ms) == (D(1000), D(2000))
    assert cost.duration == D("0.0000333334")


def test_given_exact_whole_millisecond_when_billed_then_not_rounded_further() -> None:
    assert (billed_ms(3), billed_ms("3.000"), billed_ms("3.001")) == (3, 3, 4)
    assert (billed_ms("101", 100), billed_ms("100", 100)) == (200, 100)


def test_given_a_float_duration_when_billed_then_refused_because_floats_drift() -> None:
    with pytest.raises(CostModelError):
        billed_ms(1.2)  # type: ignore[arg-type]


def test_given_usage_straddling_6_billion_gb_s_when_priced_then_each_part_at_its_tier() -> None:
    # x86: 5,999,999,000 GB-s already used this month, now 2,000 GB-s more (1,000 x 2 s at 1024 MB).
    #   1,000 GB-s x 0.0000166667 = 0.0166667 ; 1,000 GB-s x 0.000015 = 0.015 ; duration = 0.0316667
    cost = lambda_cost(1000, billed_ms_per_invocation=2000, memory_mb=1024, monthly_gb_seconds_before=5_999_999_000)
    assert cost.duration == D("0.0316667")


def test_given_usage_straddling_15_billion_gb_s_when_priced_then_third_tier_applies() -> None:
    #   1,000 x 0.000015 + 1,000 x 0.0000133334 = 0.015 + 0.0133334 = 0.0283334
    cost = lambda_cost(1000, billed_ms_per_invocation=2000, memory_mb=1024, monthly_gb_seconds_before=14_999_999_000)
    assert cost.duration == D("0.0283334")


def test_given_arm64_usage_straddling_7_5_billion_gb_s_when_priced_then_arm_tiers_apply() -> None:
    #   1,000 x 0.0000133334 + 1,000 x 0.0000120001 = 0.0253335
    cost = lambda_cost(
        1000,
        billed_ms_per_invocation=2000,
        memory_mb=1024,
        architecture=Architecture.ARM64,
        monthly_gb_seconds_before=7_499_999_000,
    )
    assert cost.duration == D("0.0253335")


def test_given_usage_exactly_at_the_free_tier_when_priced_then_free_and_one_more_unit_is_charged() -> None:
    # 1,000,000 invocations x 400 ms at 1024 MB = 400,000 GB-s: both allowances used up exactly.
    at_limit = lambda_cost(1_000_000, billed_ms_per_invocation=400, memory_mb=1024, free_tier=True)
    assert at_limit.total == D(0)
    # One more invocation of 1,000 ms: 1 request x 0.0000002 and 1 GB-s x 0.0000166667.
    over = lambda_cost(1_000_001, total_billed_ms=400_001_000, memory_mb=1024, free_tier=True)
    assert (over.requests, over.duration) == (D("0.0000002"), D("0.0000166667"))


def test_given_cold_starts_when_priced_then_init_phase_is_billed_like_duration() -> None:
    # INIT billed for on-demand ZIP functions since 1 Aug 2025. 10 invocations of 100 ms, 10 cold
    # starts of 250 ms INIT, 1024 MB:
    #   invoke: 10 x 0.1 s x 1 GB = 1 GB-s -> 0.0000166667
    #   init:   10 x 0.25 s x 1 GB = 2.5 GB-s -> 2.5 x 0.0000166667 = 0.00004166675
    cost = lambda_cost(10, billed_ms_per_invocation=100, memory_mb=1024, init_ms=250, cold_starts=10)
    assert (cost.init_billed_ms, cost.init) == (D(2500), D("0.00004166675"))
    assert cost.total == D("0.000002") + D("0.0000166667") + D("0.00004166675")
    assert US_EAST_1.lambda_.init_billed_since.isoformat() == "2025-08-01"


def test_given_raw_init_durations_when_priced_then_each_init_rounds_up_too() -> None:
    # INIT 249.1 ms bills 250 ms; with one 99.2 ms invocation (bills 100 ms) at 1024 MB:
    #   init 0.25 GB-s x 0.0000166667 = 0.000004166675
    cost = lambda_cost_of_durations(["99.2"], raw_init_durations_ms=["249.1"], memory_mb=1024)
    assert (cost.billed_ms, cost.init_billed_ms, cost.init) == (D(100), D(250), D("0.000004166675"))


def test_given_10gb_ephemeral_storage_when_priced_then_only_storage_above_512mb_is_charged() -> None:
    # (10,240 - 512) / 1024 = 9.5 GB x 1 s = 9.5 GB-s x 0.0000000309 = 0.00000029355
    cost = lambda_cost(1, billed_ms_per_invocation=1000, memory_mb=1024, ephemeral_mb=10_240)
    assert cost.ephemeral == D("0.00000029355")
    assert lambda_cost(1, billed_ms_per_invocation=1000, memory_mb=1024).ephemeral == D(0)


def test_given_both_or_neither_duration_forms_when_priced_then_refused() -> None:
    with pytest.raises(CostModelError):
        lambda_cost(1, memory_mb=128)
    with pytest.raises(CostModelError):
        lambda_cost(1, memory_mb=128, billed_ms_per_invocation=1, total_billed_ms=1)


def test_given_provisioned_concurrency_example_when_priced_then_matches_the_page() -> None:
    # Lambda pricing page, Provisioned Concurrency example 1: 1024 MB, concurrency 1,000 for 2 hours,
    # 1.2M executions of 1 s in that time (the execution figures were not re-checked against the page).
    #   concurrency: 1,000 x 7,200 s x 1 GB = 7,200,000 GB-s x 0.0000041667 = 30.00024
    #   duration: 1,200,000 GB-s x 0.0000097222 = 11.66664; requests: 1.2M x 0.0000002 = 0.24
    cost = provisioned_concurrency_cost(
        1000, 7200, memory_mb=1024, invocations=1_200_000, total_billed_ms=1_200_000_000
    )
    assert (cost.concurrency, cost.duration, cost.requests) == (D("30.00024"), D("11.66664"), D("0.24"))
    assert to_cents(cost.total) == D("41.91")
    # Enabled time rounds up to 5 minutes: 301 s bills 600 s.
    short = provisioned_concurrency_cost(1, 301, memory_mb=1024, invocations=0, total_billed_ms=0)
    assert short.concurrency == D(600) * D("0.0000041667")


# --- projection ---------------------------------------------------------------------------------


def test_given_a_7_day_window_when_projected_then_invocations_scale_by_30_4375_over_7_once() -> None:
    # 7,000,000 invocations in 7 days -> 7,000,000 x 30.4375 / 7 = 30,437,500 a month.
    observed = ObservedLambdaUsage.from_sums(invocation_sums=[3_000_000, 4_000_000], billed_ms_sums=[0])
    monthly = monthly_projection(observed, window_days=7, memory_mb=1024)
    assert monthly.usage.invocations == D("30437500")
    assert to_month(1_000_003, 7) == D(1_000_003) * D("30.4375") / D(7)


def test_given_an_average_month_long_window_when_projected_then_nothing_is_multiplied_again() -> None:
    # A window of 30.4375 days already is a month: factor 1 (the seed multiplied a monthly figure by 30).
    observed = ObservedLambdaUsage(invocations=D(1_000_000), billed_ms=D(100_000_000))
    monthly = monthly_projection(observed, window_days=DAYS_PER_MONTH, memory_mb=1024)
    direct = lambda_cost(1_000_000, total_billed_ms=100_000_000, memory_mb=1024)
    assert monthly.usage.invocations == D(1_000_000)
    assert monthly.cost.total == direct.total


def test_given_a_week_of_100ms_invocations_when_projected_then_month_cost_is_priced_on_monthly_totals() -> None:
    # 7,000,000 invocations x 100 ms at 1024 MB over 7 days:
    #   month: 30,437,500 invocations; 3,043,750,000 ms -> 3,043,750 GB-s
    #   duration = 3,043,750 x 0.0000166667 = 50.729268125 ; requests = 30,437,500 x 0.0000002 = 6.0875
    observed = ObservedLambdaUsage.from_sums([7_000_000], [700_000_000])
    monthly = monthly_projection(observed, window_days=7, memory_mb=1024)
    assert (monthly.cost.duration, monthly.cost.requests) == (D("50.729268125"), D("6.0875"))


def test_given_weekly_usage_under_a_tier_when_projected_then_tier_applies_to_the_monthly_total() -> None:
    # 1.4e9 GB-s in 7 days (all in tier 1 for the week) -> 1.4e9 x 30.4375 / 7 = 6,087,500,000 GB-s a month:
    #   6,000,000,000 x 0.0000166667 = 100,000.2 ; 87,500,000 x 0.000015 = 1,312.5 ; duration 101,312.7
    observed = ObservedLambdaUsage.from_sums([1_400_000_000], [1_400_000_000_000])
    monthly = monthly_projection(observed, window_days=7, memory_mb=1024)
    assert monthly.cost.gb_seconds == D("6087500000")
    assert monthly.cost.duration == D("101312.7")


def test_given_hourly_datapoints_when_usage_is_built_then_invocations_are_the_sum_of_sums_not_the_count() -> None:
    # Two hourly datapoints with Sum 1,000 and 3,000: 4,000 invocations (the seed counted 2).
    usage = ObservedLambdaUsage.from_sums(invocation_sums=[1000, 3000], billed_ms_sums=[100_000, 300_000])
    assert (usage.invocations, usage.billed_ms) == (D(4000), D(400_000))


def test_given_a_list_of_averages_instead_of_a_sum_when_priced_then_refused() -> None:
    with pytest.raises(CostModelError):
        lambda_cost([120, 130], billed_ms_per_invocation=120, memory_mb=512)  # type: ignore[arg-type]
    with pytest.raises(CostModelError):
        lambda_cost(2, billed_ms_per_invocation=[120, 130], memory_mb=512)  # type: ignore[arg-type]


def test_given_an_empty_window_when_projected_then_refused() -> None:
    with pytest.raises(CostModelError):
        to_month(1, 0)


# --- memory curve -------------------------------------------------------------------------------


def test_given_measured_durations_when_curve_is_built_then_each_point_includes_the_request_charge() -> None:
    #   128 MB, 100 ms: 0.125 x 0.1 = 0.0125 GB-s x 0.0000166667 = 0.00000020833375 ; + 0.0000002 = 0.00000040833375
    #   1024 MB, 10 ms: 1 x 0.01 = 0.01 GB-s x 0.0000166667 = 0.000000166667 ; + 0.0000002 = 0.000000366667
    curve = memory_cost_curve({1024: 10, 128: 100})
    assert [p.memory_mb for p in curve] == [128, 1024]
    assert [p.billed_ms for p in curve] == [D(100), D(10)]
    assert all(p.request == D("0.0000002") for p in curve)
    assert [p.cost_per_invocation for p in curve] == [D("0.00000040833375"), D("0.000000366667")]


def test_given_requests_dominate_when_curve_is_built_then_ranking_accounts_for_them() -> None:
    # 128 MB at 2 ms vs 256 MB at 1 ms: identical GB-s (0.00025), so duration costs tie and the
    # request charge (0.0000002 each) is most of the cost: 0.0000002 + 0.00025 x 0.0000166667.
    curve = memory_cost_curve({128: 2, 256: 1})
    assert curve[0].duration == curve[1].duration == D("0.00025") * D("0.0000166667")
    assert curve[0].cost_per_invocation == D("0.0000002") + D("0.000000004166675")
