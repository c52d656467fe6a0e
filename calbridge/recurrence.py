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
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from .errors import MalformedEvent
from .model import Event

_ORDER = (
    "FREQ", "UNTIL", "COUNT", "INTERVAL", "BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY",
    "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYMONTH", "BYSETPOS", "WKST",
)  # fmt: skip
_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_FREQS = frozenset({"SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
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
    for item in items:
        if item[-2:] not in _DAYS:
            raise MalformedEvent(f"bad BYDAY value {item!r}")
    return ",".join(sorted(items, key=key))


def _sort_numbers(value: str) -> str:
    try:
        return ",".join(str(n) for n in sorted(int(v) for v in value.split(",") if v.strip()))
    except ValueError:
        raise MalformedEvent(f"bad number list {value!r} in recurrence") from None


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
    if "UNTIL" in parts:
        parts["UNTIL"] = format_until(_parse_stamp(parts["UNTIL"], tz), all_day=all_day, tz=tz)
    try:
        interval = int(parts.get("INTERVAL", "1") or "1")
    except ValueError:
        raise MalformedEvent(f"bad INTERVAL in {rule!r}") from None
    if interval <= 1:
        parts.pop("INTERVAL", None)
    else:
        parts["INTERVAL"] = str(interval)
    if "BYDAY" in parts:
        parts["BYDAY"] = _sort_days(parts["BYDAY"])
    for key in ("BYSECOND", "BYMINUTE", "BYHOUR", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYMONTH", "BYSETPOS"):
        if key in parts:
            parts[key] = _sort_numbers(parts[key])
    wkst = parts.pop("WKST", "").upper()
    if wkst and freq == "WEEKLY" and interval > 1 and wkst != "MO":
        parts["WKST"] = wkst
    unknown = set(parts) - set(_ORDER)
    ordered = [f"{k}={parts[k]}" for k in _ORDER if k in parts]
    ordered += [f"{k}={parts[k]}" for k in sorted(unknown)]
    return "RRULE:" + ";".join(ordered)


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
    """When the last occurrence of ``series`` ends (UTC), or None when the rule never ends.

    Used to filter the series view by overlap: a series whose rule ended before ``--from`` is not in
    the range. COUNT is expanded with dateutil in the series' zone; UNTIL is read as is.
    """
    from dateutil.rrule import rrulestr

    from .zones import zone

    rules = [line for line in series.recurrence if line.startswith("RRULE:")]
    if not rules:
        return None  # RDATE-only or unknown: never hide it
    duration = series.end.utc() - series.start.utc()
    latest = series.start.utc()
    for line in rules:
        parts = dict(p.split("=", 1) for p in line[6:].split(";") if "=" in p)
        if "UNTIL" in parts:
            until = _parse_stamp(parts["UNTIL"], None)  # floating values are read as UTC
            end = until if isinstance(until, dt.datetime) else dt.datetime.combine(until, dt.time(), tzinfo=UTC)
            latest = max(latest, end + (dt.timedelta(days=1) if series.start.all_day else dt.timedelta(0)))
        elif "COUNT" in parts:
            tz = zone(series.start.timezone) if series.start.timezone else UTC
            start = series.start.utc().astimezone(tz).replace(tzinfo=None)
            occurrences = list(rrulestr(line[6:], dtstart=start))
            if occurrences:
                latest = max(latest, occurrences[-1].replace(tzinfo=tz).astimezone(UTC))
        else:
            return None
    return latest + duration
