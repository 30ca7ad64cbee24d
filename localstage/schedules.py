"""EventBridge schedule expressions: ``rate(...)`` and AWS's six-field ``cron(...)``, in UTC.

https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html

``cron(minutes hours day-of-month month day-of-week year)``: ``*``, ``,``,
``-``, ``/`` and ``?`` are supported, with month (``JAN``-``DEC``) and weekday
(``SUN``-``SAT``, 1 = Sunday) names. One of day-of-month and day-of-week must
be ``?``, as AWS requires. ``L``, ``W`` and ``#`` are valid on AWS but not
modelled here: they raise ``UnsupportedScheduleError`` rather than fire at a
wrong time.

``rate(value unit)``: ``minute(s)``, ``hour(s)``, ``day(s)``, singular exactly
when the value is 1 (AWS rejects ``rate(1 minutes)``). A rate schedule fires one
period after the rule is first seen, then every period.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

MONTH_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
MONTHS = {name: i for i, name in enumerate(MONTH_NAMES, start=1)}
WEEKDAYS = {name: i for i, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}
RATE_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
# (low, high, names) for minutes, hours, day-of-month, month, day-of-week, year.
CRON_FIELDS: list[tuple[int, int, dict[str, int]]] = [
    (0, 59, {}),
    (0, 23, {}),
    (1, 31, {}),
    (1, 12, MONTHS),
    (1, 7, WEEKDAYS),
    (1970, 2199, {}),
]


class ScheduleError(ValueError):
    """Not a valid schedule expression (EventBridge answers ValidationException)."""


class UnsupportedScheduleError(ScheduleError):
    """Valid on AWS, but uses a cron feature (``L``, ``W``, ``#``) the local scheduler does not model."""


@dataclass(frozen=True)
class RateSchedule:
    period: timedelta

    def next_after(self, after: datetime) -> datetime | None:
        return after + self.period


@dataclass(frozen=True)
class CronSchedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None  # None: "?"
    months: frozenset[int]
    days_of_week: frozenset[int] | None  # None: "?"; 1 = Sunday
    years: frozenset[int]

    def _day_matches(self, moment: datetime) -> bool:
        if self.days_of_month is not None:
            return moment.day in self.days_of_month
        assert self.days_of_week is not None
        return moment.isoweekday() % 7 + 1 in self.days_of_week

    def next_after(self, after: datetime) -> datetime | None:
        """The first whole minute strictly after ``after`` that matches, or None if none is left."""
        moment = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        last_year = max(self.years)
        while moment.year <= last_year:
            if moment.year not in self.years:
                moment = moment.replace(year=moment.year + 1, month=1, day=1, hour=0, minute=0)
            elif moment.month not in self.months:
                year, month = divmod(moment.month, 12)
                moment = moment.replace(year=moment.year + year, month=month + 1, day=1, hour=0, minute=0)
            elif not self._day_matches(moment):
                moment = (moment + timedelta(days=1)).replace(hour=0, minute=0)
            elif moment.hour not in self.hours:
                moment = (moment + timedelta(hours=1)).replace(minute=0)
            elif moment.minute not in self.minutes:
                moment += timedelta(minutes=1)
            else:
                return moment
        return None


Schedule = RateSchedule | CronSchedule


def parse_schedule(expression: str) -> Schedule:
    """Parse ``rate(...)`` or ``cron(...)``.

    >>> parse_schedule("rate(5 minutes)")
    RateSchedule(period=datetime.timedelta(seconds=300))
    """
    match = re.fullmatch(r"\s*(rate|cron)\((.*)\)\s*", expression)
    if not match:
        raise ScheduleError(f"Parameter ScheduleExpression is not valid: {expression!r}")
    kind, body = match.groups()
    return _parse_rate(body) if kind == "rate" else _parse_cron(body)


def _parse_rate(body: str) -> RateSchedule:
    match = re.fullmatch(r"\s*(\d+)\s+(minute|hour|day)(s?)\s*", body)
    if not match:
        raise ScheduleError(f"invalid rate({body})")
    value, unit, plural = int(match.group(1)), match.group(2), match.group(3)
    if value < 1 or (value == 1) == bool(plural):
        raise ScheduleError(f"invalid rate({body}): use a positive value, singular unit only for 1")
    return RateSchedule(RATE_UNITS[unit] * value)


def _parse_cron(body: str) -> CronSchedule:
    fields = body.split()
    if len(fields) != 6:
        raise ScheduleError(f"cron({body}) needs 6 fields: minutes hours day-of-month month day-of-week year")
    if re.search(r"[LW#]", fields[2] + fields[4].replace("WED", "")):
        raise UnsupportedScheduleError(f"cron({body}): L, W and # are not supported by the local scheduler")
    dom, dow = fields[2], fields[4]
    if (dom == "?") == (dow == "?"):
        raise ScheduleError(f"cron({body}): exactly one of day-of-month and day-of-week must be '?'")
    values = [None if f == "?" else _parse_field(f, *CRON_FIELDS[i]) for i, f in enumerate(fields)]
    for i, value in enumerate(values):
        if value is None and i not in (2, 4):
            raise ScheduleError(f"cron({body}): '?' is only allowed in day-of-month and day-of-week")
    minutes, hours, days, months, weekdays, years = values
    assert minutes is not None and hours is not None and months is not None and years is not None
    return CronSchedule(minutes, hours, days, months, weekdays, years)


def _parse_field(text: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    result: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = _number(step_text, 1, high, {}) if step_text else 1
        if span == "*":
            start, stop = low, high
        elif "-" in span:
            first, _, last = span.partition("-")
            start, stop = _number(first, low, high, names), _number(last, low, high, names)
        else:
            start = _number(span, low, high, names)
            stop = high if step_text else start
        if start > stop:
            raise ScheduleError(f"invalid cron range {part!r}")
        result.update(range(start, stop + 1, step))
    return frozenset(result)


def _number(text: str, low: int, high: int, names: dict[str, int]) -> int:
    upper = text.upper()
    if upper in names:
        return names[upper]
    if not text.isdigit() or not low <= int(text) <= high:
        raise ScheduleError(f"cron value {text!r} is not in {low}-{high}")
    return int(text)
