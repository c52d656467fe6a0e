"""Canonical RFC 5545 recurrence lines, the same whichever provider a series came from.

The contract's form: ``RRULE:`` first with parts in the order FREQ, UNTIL or COUNT, INTERVAL (left
out when 1), BYSECOND, BYMINUTE, BYHOUR, BYDAY, BYMONTHDAY, BYYEARDAY, BYWEEKNO, BYMONTH, BYSETPOS,
WKST (only for FREQ=WEEKLY with INTERVAL above 1, and never MO, the default); UNTIL as
``YYYYMMDDTHHMMSSZ`` for a timed series and ``YYYYMMDD`` for an all-day one; then ``EXDATE:`` lines,
one value each, sorted, in the same UTC or date form. Values inside a part are sorted too (BYDAY
from MO to SU) so that Graph's ``daysOfWeek`` order and Google's line order agree.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from .errors import MalformedEvent
from .model import Event, When
from .zones import zone

_ORDER = (
    "FREQ", "UNTIL", "COUNT", "INTERVAL", "BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY",
    "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYMONTH", "BYSETPOS", "WKST",
)  # fmt: skip
_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_FREQS = frozenset({"SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
# RFC 5545 3.3.10: the values each BY part may take (a signed part excludes 0). A value outside
# them cannot be expanded (dateutil refuses BYSETPOS=0, a server fails on it every sync).
_RANGES = {
    "BYSECOND": (0, 60, False), "BYMINUTE": (0, 59, False), "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True), "BYYEARDAY": (1, 366, True), "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False), "BYSETPOS": (1, 366, True),
}  # fmt: skip
UTC = dt.UTC


def _parse_stamp(value: str, tz: ZoneInfo | None) -> dt.datetime | dt.date:
    """An RFC 5545 DATE or DATE-TIME (``Z`` = UTC; floating = in ``tz``)."""
    value = value.strip()
    try:
        if "T" not in value:
            return dt.date(int(value[0:4]), int(value[4:6]), int(value[6:8]))
        # The usual YYYYMMDDTHHMMSS[Z] by hand: strptime costs ~20 µs a call, once per series.
        n = len(value)
        if (n == 15 or (n == 16 and value[15] == "Z")) and value[8] == "T" and (value[:8] + value[9:15]).isdigit():
            return dt.datetime(int(value[0:4]), int(value[4:6]), int(value[6:8]), int(value[9:11]),
                               int(value[11:13]), int(value[13:15]), tzinfo=UTC if n == 16 else tz or UTC)  # fmt: skip
        if value.endswith("Z"):
            return dt.datetime.strptime(value[:-1] + "+0000", "%Y%m%dT%H%M%S%z")
        local = dt.datetime.strptime(value + "+0000", "%Y%m%dT%H%M%S%z").replace(tzinfo=None)
    except ValueError:
        raise MalformedEvent(f"bad date-time {value!r} in recurrence") from None
    return local.replace(tzinfo=tz or UTC)


def format_until(value: dt.datetime | dt.date, *, all_day: bool, tz: ZoneInfo | None) -> str:
    """UNTIL in canonical form: a date for all-day series, else UTC seconds.

    A date UNTIL on a timed series means "through that day": 23:59:59 of it in the series zone.
    """
    if all_day:
        if isinstance(value, dt.datetime):
            value = value.astimezone(tz or UTC).date() if value.tzinfo else value.date()
        return value.strftime("%Y%m%d")
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time(23, 59, 59), tzinfo=tz or UTC)
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _sort_days(value: str) -> str:
    def key(item: str) -> tuple[int, int]:
        day = item[-2:]
        num = item[:-2]
        return (_DAYS.index(day) if day in _DAYS else 9, int(num) if num not in ("", "+", "-") else 0)

    items = [v.strip().upper() for v in value.split(",") if v.strip()]
    if not items:
        raise MalformedEvent("empty BYDAY in recurrence")
    for item in items:
        num = item[:-2]
        if item[-2:] not in _DAYS or not _ordinal(num):
            raise MalformedEvent(f"bad BYDAY value {item[:20]!r}")
    return ",".join(sorted(items, key=key))


def _ordinal(num: str) -> bool:
    """A BYDAY ordinal: none, or ±1..53."""
    if num in ("", "+", "-"):
        return num == ""
    digits = num[1:] if num[0] in "+-" else num
    return digits.isdigit() and len(digits) <= 2 and 1 <= int(digits) <= 53


def _sort_numbers(key: str, value: str) -> str:
    low, high, signed = _RANGES[key]
    try:
        numbers = sorted(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise MalformedEvent(f"bad number list {value[:40]!r} in {key}") from None
    if not numbers:
        raise MalformedEvent(f"empty {key} in recurrence")
    for n in numbers:
        if not (low <= (abs(n) if signed else n) <= high):
            raise MalformedEvent(f"{key} value {n} outside {'±' if signed else ''}{low}..{high}")
    return ",".join(str(n) for n in numbers)


def _positive(key: str, value: str) -> int:
    """COUNT or INTERVAL: a positive integer (INTERVAL=0 or COUNT=-1 has no faithful reading)."""
    text = value.strip()
    if not text.isdigit() or len(text) > 18 or int(text) < 1:
        raise MalformedEvent(f"bad {key} {value[:20]!r} in recurrence")
    return int(text)


def canonical_rrule(rule: str, *, all_day: bool, tz: ZoneInfo | None) -> str:
    """One canonical ``RRULE:`` line from an RRULE with or without its prefix (Feishu sends none)."""
    body = rule.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    parts: dict[str, str] = {}
    for chunk in body.split(";"):
        if not chunk.strip():
            continue
        if "=" not in chunk:
            raise MalformedEvent(f"bad RRULE part {chunk!r}")
        k, v = chunk.split("=", 1)
        parts[k.strip().upper()] = v.strip()
    freq = parts.get("FREQ", "").upper()
    if freq not in _FREQS:
        raise MalformedEvent(f"RRULE without a valid FREQ: {rule!r}")
    parts["FREQ"] = freq
    if "UNTIL" in parts and "COUNT" in parts:
        raise MalformedEvent("RRULE has both UNTIL and COUNT")
    unknown = set(parts) - set(_ORDER)
    if unknown:  # an X-name or RFC 7529 part: no expansion calbridge knows would honour it
        raise MalformedEvent(f"unsupported RRULE part {sorted(unknown)[0][:20]!r}")
    if "UNTIL" in parts:
        parts["UNTIL"] = format_until(_parse_stamp(parts["UNTIL"], tz), all_day=all_day, tz=tz)
    if "COUNT" in parts:
        parts["COUNT"] = str(_positive("COUNT", parts["COUNT"]))
    interval = _positive("INTERVAL", parts.get("INTERVAL", "1") or "1")
    if interval == 1:
        parts.pop("INTERVAL", None)
    else:
        parts["INTERVAL"] = str(interval)
    if "BYDAY" in parts:
        parts["BYDAY"] = _sort_days(parts["BYDAY"])
    for key in _RANGES:
        if key in parts:
            parts[key] = _sort_numbers(key, parts[key])
    wkst = parts.pop("WKST", "").upper()
    if wkst and wkst not in _DAYS:
        raise MalformedEvent(f"bad WKST {wkst[:20]!r}")
    if wkst and freq == "WEEKLY" and interval > 1 and wkst != "MO":
        parts["WKST"] = wkst
    return "RRULE:" + ";".join(f"{k}={parts[k]}" for k in _ORDER if k in parts)


def _date_lines(name: str, line: str, *, all_day: bool, tz: ZoneInfo | None) -> list[str]:
    head, _, values = line.partition(":")
    params = dict(p.split("=", 1) for p in head.split(";")[1:] if "=" in p)
    ptz = tz
    if "TZID" in params:
        from .zones import canonical_zone, zone

        cz = canonical_zone(params["TZID"].strip('"'))
        if cz is None:
            raise MalformedEvent(f"unknown TZID {params['TZID']!r} in {name}")
        ptz = zone(cz)
    out = []
    for value in values.split(","):
        if not value.strip():
            continue
        stamp = _parse_stamp(value, ptz)
        if all_day:
            day = stamp.astimezone(ptz or UTC).date() if isinstance(stamp, dt.datetime) else stamp
            out.append(f"{name}:{day.strftime('%Y%m%d')}")
        else:
            if not isinstance(stamp, dt.datetime):
                raise MalformedEvent(f"{name} date {value!r} on a timed series")
            out.append(f"{name}:{stamp.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}")
    return out


def canonical_recurrence(lines: Iterable[str], *, all_day: bool, tz: ZoneInfo | None) -> tuple[str, ...]:
    """Canonical lines: the RRULE(s), then sorted one-value EXDATE lines, then any RDATE/EXRULE."""
    rrules: list[str] = []
    exdates: set[str] = set()
    rdates: set[str] = set()
    others: list[str] = []
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        name = line.split(":", 1)[0].split(";", 1)[0].upper()
        if name == "RRULE" or ("=" in line and ":" not in line.split("=", 1)[0] and name.startswith("FREQ")):
            rrules.append(canonical_rrule(line, all_day=all_day, tz=tz))
        elif name == "EXDATE":
            exdates.update(_date_lines("EXDATE", line, all_day=all_day, tz=tz))
        elif name == "RDATE":
            rdates.update(_date_lines("RDATE", line, all_day=all_day, tz=tz))
        elif name == "EXRULE":
            others.append("EXRULE:" + canonical_rrule(line[6:], all_day=all_day, tz=tz)[6:])
        else:
            raise MalformedEvent(f"unsupported recurrence line {line[:40]!r}")
    return (*rrules, *sorted(exdates), *sorted(rdates), *others)


def last_end(series: Event) -> dt.datetime | None:
    """When the last occurrence of ``series`` ends (UTC), or None when the rule never ends (or ends
    past what calbridge will enumerate: see :data:`MAX_OCCURRENCES`).

    Used to filter the series view by overlap: a series whose rule ended before ``--from`` is not in
    the range. UNTIL is read as is; a COUNT is solved in closed form where the rule has no BY part,
    else enumerated with dateutil in the series' zone, at most :data:`MAX_OCCURRENCES` of them.
    """
    rules = [line for line in series.recurrence if line.startswith("RRULE:")]
    if not rules:
        return None  # RDATE-only or unknown: never hide it
    latest = series.start.utc()
    for line in rules:
        end = _rule_end(line, series.start)
        if end is None:
            return None
        latest = max(latest, end)
    for line in series.recurrence:
        if line.startswith("RDATE:"):
            stamp = _parse_stamp(line[6:], None)
            latest = max(latest, stamp if isinstance(stamp, dt.datetime) else _midnight(stamp))
    return latest + (series.end.utc() - series.start.utc())


MAX_OCCURRENCES = 10_000
"""The most occurrences :func:`last_end` enumerates for one rule it cannot solve in closed form; a
rule that counts more (``FREQ=SECONDLY;BYSECOND=…;COUNT=50000000``) is read as open-ended: its
series is in every range, never hidden by a wrong guess."""

_STEPS = {
    "SECONDLY": dt.timedelta(seconds=1), "MINUTELY": dt.timedelta(minutes=1), "HOURLY": dt.timedelta(hours=1),
    "DAILY": dt.timedelta(days=1), "WEEKLY": dt.timedelta(weeks=1),
}  # fmt: skip


class _Unbounded(Exception):
    """The rule's last occurrence lies past what a datetime holds (dateutil stops at year 9999)."""


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=UTC)


@functools.lru_cache(maxsize=4096)
def _rule_end(line: str, start: When) -> dt.datetime | None:
    """When the last occurrence of one canonical ``RRULE:`` line from ``start`` begins (UTC); None: never."""
    parts = dict(p.split("=", 1) for p in line[6:].split(";") if "=" in p)
    if "UNTIL" in parts:
        until = _parse_stamp(parts["UNTIL"], None)  # floating values are read as UTC
        if isinstance(until, dt.datetime):
            return until
        return _midnight(until) + (dt.timedelta(days=1) if start.all_day else dt.timedelta(0))
    if "COUNT" not in parts:
        return None
    count = int(parts["COUNT"])
    tz = zone(start.timezone) if start.timezone else UTC
    local = start.utc().astimezone(tz).replace(tzinfo=None)  # dateutil expands wall-clock times
    try:
        last = _closed_form(parts, local, count)
        if last is None:
            if count > MAX_OCCURRENCES:
                return None
            last = _enumerated(parts, local, count)
            if last is None:
                return None
        return last.replace(tzinfo=tz).astimezone(UTC)
    except (_Unbounded, OverflowError, ValueError):  # ValueError: dateutil finds no hour, minute or second to use
        return None


_CYCLE = 400  # years: the Gregorian calendar repeats exactly (146,097 days, 20,871 weeks)
SCAN_YEARS = 800
"""At most how many years of a rule :func:`last_end` enumerates (at least 400): a COUNT not reached
within them is read as open-ended."""


def _enumerated(parts: dict[str, str], local: dt.datetime, count: int) -> dt.datetime | None:
    """The COUNT-th occurrence by enumeration, None when it lies past the scanned years.

    dateutil checks UNTIL only on the occurrences it yields, so a rule that yields rarely or never
    (``BYMONTH=2;BYMONTHDAY=30``) scans day by day to year 9999: seconds of CPU. The scan runs
    instead on the same dates whole 400-year cycles later, close to 9999, where dateutil stops.
    """
    from dateutil.rrule import rrulestr

    shift = max(0, (dt.MAXYEAR - local.year - SCAN_YEARS) // _CYCLE + 1) * _CYCLE
    start = local.replace(year=local.year + shift)
    rule = rrulestr(";".join(f"{k}={v}" for k, v in parts.items()), dtstart=start)
    n, last = 0, None
    for n, last in enumerate(itertools.islice(rule, count), 1):  # noqa: B007
        pass
    if n < count or last is None:
        return None
    return last.replace(year=last.year - shift)


def _closed_form(parts: dict[str, str], local: dt.datetime, count: int) -> dt.datetime | None:
    """The COUNT-th occurrence of a rule with no BY part (each step a fixed one from the start), None
    when steps may be skipped (the 31st in MONTHLY, 29 February in YEARLY) or BY parts select them.

    Raises:
        _Unbounded: the last occurrence is past year 9999.
    """
    if any(key.startswith("BY") for key in parts):
        return None
    steps = (count - 1) * int(parts.get("INTERVAL", "1"))
    freq = parts["FREQ"]
    try:
        if freq in _STEPS:
            return local + steps * _STEPS[freq]
        if freq == "MONTHLY" and local.day <= 28:
            months = steps
        elif freq == "YEARLY" and (local.month, local.day) != (2, 29):
            months = 12 * steps
        else:
            return None
        years, month = divmod(local.month - 1 + months, 12)
        return local.replace(year=local.year + years, month=month + 1)
    except (OverflowError, ValueError):
        raise _Unbounded from None
