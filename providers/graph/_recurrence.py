"""Graph ``patternedRecurrence`` → one canonical RFC 5545 ``RRULE`` line (pure; see the contract).

Pattern and range types are matched case-insensitively (older documents write ``EndDate``);
``range.endDate`` becomes UNTIL at 23:59:59 of that date in ``recurrenceTimeZone``, in UTC;
``firstDayOfWeek`` becomes WKST where it can change the expansion; ``index`` becomes a BYDAY
ordinal for one weekday or BYSETPOS for several.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from calbridge.errors import MalformedEvent
from calbridge.recurrence import canonical_rrule, format_until
from calbridge.zones import canonical_zone, zone

_DAYS = {
    "monday": "MO", "tuesday": "TU", "wednesday": "WE", "thursday": "TH",
    "friday": "FR", "saturday": "SA", "sunday": "SU",
}  # fmt: skip
_INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}


def zone_for(name: str | None) -> ZoneInfo | None:
    """The ZoneInfo behind a Graph zone name (UTC fast path), or None when it is unknown."""
    if not name:
        return None
    if name == "UTC":
        return zone("UTC")
    canon = canonical_zone(name)
    return None if canon is None else zone(canon)


def pattern_to_rrule(recurrence: Mapping[str, Any], *, all_day: bool, series_zone: ZoneInfo | None) -> str:
    """A Graph ``patternedRecurrence`` → one canonical ``RRULE:`` line.

    Raises:
        MalformedEvent: unknown pattern or range type, or a pattern missing what its type needs.
    """
    pattern = recurrence.get("pattern") or {}
    rng = recurrence.get("range") or {}
    ptype = str(pattern.get("type") or "").lower()
    parts: dict[str, str] = {}
    interval = int(pattern.get("interval") or 1)
    days = [_DAYS.get(str(d).lower()) for d in pattern.get("daysOfWeek") or ()]
    if None in days:
        raise MalformedEvent(f"bad daysOfWeek {pattern.get('daysOfWeek')!r}")
    index = _INDEX.get(str(pattern.get("index") or "first").lower())
    if index is None:
        raise MalformedEvent(f"bad recurrence index {pattern.get('index')!r}")

    def need(key: str) -> str:
        value = pattern.get(key)
        if value in (None, "", 0, []):
            raise MalformedEvent(f"{pattern.get('type')} recurrence without {key}")
        return str(value)

    def relative_days() -> None:
        if not days:
            raise MalformedEvent(f"{pattern.get('type')} recurrence without daysOfWeek")
        if len(days) == 1:
            parts["BYDAY"] = f"{index}{days[0]}"
        else:
            parts["BYDAY"] = ",".join(d for d in days if d)
            parts["BYSETPOS"] = str(index)

    if ptype == "daily":
        parts["FREQ"] = "DAILY"
    elif ptype == "weekly":
        parts["FREQ"] = "WEEKLY"
        if not days:
            raise MalformedEvent("weekly recurrence without daysOfWeek")
        parts["BYDAY"] = ",".join(d for d in days if d)
        first = _DAYS.get(str(pattern.get("firstDayOfWeek") or "sunday").lower(), "SU")
        parts["WKST"] = first  # canonical_rrule keeps it only where it changes the expansion
    elif ptype == "absolutemonthly":
        parts["FREQ"] = "MONTHLY"
        parts["BYMONTHDAY"] = need("dayOfMonth")
    elif ptype == "relativemonthly":
        parts["FREQ"] = "MONTHLY"
        relative_days()
    elif ptype == "absoluteyearly":
        parts["FREQ"] = "YEARLY"
        parts["BYMONTH"] = need("month")
        parts["BYMONTHDAY"] = need("dayOfMonth")
    elif ptype == "relativeyearly":
        parts["FREQ"] = "YEARLY"
        parts["BYMONTH"] = need("month")
        relative_days()
    else:
        raise MalformedEvent(f"unknown recurrence pattern type {str(pattern.get('type'))[:40]!r}")
    if interval > 1:
        parts["INTERVAL"] = str(interval)

    rtype = str(rng.get("type") or "noEnd").lower()
    if rtype == "enddate":
        try:
            end = dt.date.fromisoformat(str(rng.get("endDate")))
        except ValueError:
            raise MalformedEvent(f"bad range.endDate {rng.get('endDate')!r}") from None
        rzone = rng.get("recurrenceTimeZone")
        tz = zone_for(rzone) if rzone else series_zone
        parts["UNTIL"] = format_until(end, all_day=all_day, tz=tz or series_zone)
    elif rtype == "numbered":
        count = int(rng.get("numberOfOccurrences") or 0)
        if count <= 0:
            raise MalformedEvent("numbered recurrence range without numberOfOccurrences")
        parts["COUNT"] = str(count)
    elif rtype != "noend":
        raise MalformedEvent(f"unknown recurrence range type {str(rng.get('type'))[:40]!r}")
    return canonical_rrule(";".join(f"{k}={v}" for k, v in parts.items()), all_day=all_day, tz=series_zone)
