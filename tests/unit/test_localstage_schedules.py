"""EventBridge schedule expressions: rate() and AWS's six-field cron(), next fire times in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from localstage.schedules import (
    CronSchedule,
    RateSchedule,
    ScheduleError,
    UnsupportedScheduleError,
    parse_schedule,
)

T0 = datetime(2030, 1, 1, 10, 7, 30, tzinfo=UTC)  # a Tuesday


def _next(expression: str, after: datetime = T0) -> datetime | None:
    return parse_schedule(expression).next_after(after)


@pytest.mark.parametrize(
    ("expression", "period"),
    [
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(5 minutes)", timedelta(minutes=5)),
        ("rate(2 days)", timedelta(days=2)),
    ],
)
def test_given_a_rate_then_it_fires_one_period_later(expression: str, period: timedelta) -> None:
    assert parse_schedule(expression) == RateSchedule(period)
    assert _next(expression) == T0 + period


@pytest.mark.parametrize(
    "expression", ["rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)", "rate(5 weeks)", "every 5 min"]
)
def test_given_an_invalid_rate_then_it_is_rejected_as_aws_rejects_it(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(expression)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cron(0 12 * * ? *)", datetime(2030, 1, 1, 12, 0, tzinfo=UTC)),
        ("cron(0/15 * * * ? *)", datetime(2030, 1, 1, 10, 15, tzinfo=UTC)),
        ("cron(*/5 10 * * ? *)", datetime(2030, 1, 1, 10, 10, tzinfo=UTC)),
        ("cron(0 8 ? * MON-FRI *)", datetime(2030, 1, 2, 8, 0, tzinfo=UTC)),
        ("cron(0 9 ? * 1 *)", datetime(2030, 1, 6, 9, 0, tzinfo=UTC)),  # 1 = Sunday
        ("cron(30 2 1 * ? *)", datetime(2030, 2, 1, 2, 30, tzinfo=UTC)),
        ("cron(0 0 1 JAN,JUL ? 2031)", datetime(2031, 1, 1, 0, 0, tzinfo=UTC)),
        ("cron(0 10-12/2 * * ? *)", datetime(2030, 1, 1, 12, 0, tzinfo=UTC)),
        ("cron(0 0 31 DEC ? *)", datetime(2030, 12, 31, 0, 0, tzinfo=UTC)),
    ],
)
def test_given_a_cron_then_the_next_fire_time_is_the_first_matching_minute_after(
    expression: str, expected: datetime
) -> None:
    assert isinstance(parse_schedule(expression), CronSchedule)
    assert _next(expression) == expected


def test_given_a_cron_in_a_past_year_then_it_never_fires_again() -> None:
    assert _next("cron(0 0 1 1 ? 2020)") is None


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 12 * * * *)",
        "cron(0 12 ? * ? *)",
        "cron(0 12 * *)",
        "cron(60 * * * ? *)",
        "cron(0 12 ? * FOO *)",
        "cron(? 12 * * ? *)",
    ],
)
def test_given_an_invalid_cron_then_it_is_rejected(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(expression)


@pytest.mark.parametrize(
    "expression", ["cron(0 12 L * ? *)", "cron(0 12 15W * ? *)", "cron(0 12 ? * 6#3 *)", "cron(0 12 ? * 6L *)"]
)
def test_given_l_w_or_hash_then_it_is_rejected_as_unsupported_not_misread(expression: str) -> None:
    with pytest.raises(UnsupportedScheduleError):
        parse_schedule(expression)
