"""Series expansion for the Feishu emulator: dateutil rrule in the event's own zone, with cancelled
and moved exceptions applied, over wire-format event dicts."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from collections.abc import Callable, Iterable
from typing import Any

from dateutil import rrule as du

UTC = dt.UTC

Wire = dict[str, Any]


@functools.cache
def _tz(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def start_seconds(info: Wire) -> int:
    if info.get("date"):
        d = dt.date.fromisoformat(info["date"])
        return int(dt.datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())
    return int(info["timestamp"])


def end_seconds(info: Wire) -> int:
    """Exclusive end in seconds (Feishu's all-day end date is inclusive)."""
    if info.get("date"):
        return start_seconds(info) + 86400
    return int(info["timestamp"])


def span(event: Wire) -> tuple[int, int]:
    return start_seconds(event["start_time"]), end_seconds(event["end_time"])


def time_info(seconds: int, *, all_day: bool, timezone: str, end: bool = False) -> Wire:
    if all_day:
        day = dt.datetime.fromtimestamp(seconds, UTC).date()
        if end:
            day -= dt.timedelta(days=1)  # back to Feishu's inclusive end date
        midnight = int(dt.datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
        return {"date": day.isoformat(), "timestamp": str(midnight), "timezone": "UTC"}
    return {"timestamp": str(seconds), "timezone": timezone}


def _rule(master: Wire) -> du.rrule:
    start = master["start_time"]
    all_day = bool(start.get("date"))
    tz = UTC if all_day else _tz(start.get("timezone") or "Asia/Shanghai")
    dtstart = dt.datetime.fromtimestamp(start_seconds(start), tz)
    parts = [p for p in master["recurrence"].split(";") if p]
    until = [p for p in parts if p.upper().startswith("UNTIL=")]
    body = ";".join(p for p in parts if not p.upper().startswith("UNTIL="))
    rule = du.rrulestr("RRULE:" + body, dtstart=dtstart)
    assert isinstance(rule, du.rrule)
    if until:
        value = until[0].split("=", 1)[1]
        if "T" in value:
            local = dt.datetime.strptime(value.rstrip("Z") + "+0000", "%Y%m%dT%H%M%S%z")
            stamp = local.replace(tzinfo=UTC if value.endswith("Z") else tz)
        else:
            day = dt.datetime.strptime(value + "+0000", "%Y%m%d%z")
            stamp = day.replace(hour=23, minute=59, second=59, tzinfo=tz)
        rule = rule.replace(until=stamp)
    return rule


def occurrences(
    master: Wire,
    exceptions: Iterable[Wire],
    lo: int,
    hi: int,
    keep: Callable[[int, int], bool],
) -> list[Wire]:
    """Instances of ``master`` whose (start, end) seconds pass ``keep``; starts scanned in [lo, hi]."""
    uid = master["event_id"].rsplit("_", 1)[0]
    s0, e0 = span(master)
    duration = e0 - s0
    all_day = bool(master["start_time"].get("date"))
    tz_name = master["start_time"].get("timezone") or "UTC"
    by_orig = {int(x["event_id"].rsplit("_", 1)[1]): x for x in exceptions}
    out: list[Wire] = []
    after = dt.datetime.fromtimestamp(lo - duration - 1, UTC)
    before = dt.datetime.fromtimestamp(hi + 1, UTC)
    for when in _rule(master).between(after, before, inc=True):
        orig = int(when.timestamp())
        if orig in by_orig:
            continue
        if not keep(orig, orig + duration):
            continue
        occ = {k: v for k, v in master.items() if k not in ("recurrence",)}
        occ["event_id"] = f"{uid}_{orig}"
        occ["start_time"] = time_info(orig, all_day=all_day, timezone=tz_name)
        occ["end_time"] = time_info(orig + duration, all_day=all_day, timezone=tz_name, end=True)
        occ["is_exception"] = False
        occ["recurring_event_id"] = f"{uid}_0"
        out.append(occ)
    for exc in by_orig.values():
        if exc.get("status") == "cancelled":
            continue
        s, e = span(exc)
        if keep(s, e):
            out.append(dict(exc))
    return out
