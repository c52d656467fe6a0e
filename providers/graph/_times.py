"""Graph's times (pure): ``dateTimeTimeZone`` and ``DateTimeOffset`` values, the exported zone, and
the slot (``original_start``) an occurrence or exception fills.

Date-times are strings with seven fractional digits; calbridge keeps the second.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping

from calbridge.errors import MalformedEvent
from calbridge.model import Event, When
from calbridge.zones import canonical_zone

from ._recurrence import zone_for
from ._wire import DateTimeTimeZone, GEvent

# The name the conversion has always logged under (these helpers were split out of ``_convert``).
logger = logging.getLogger("calbridge_providers.graph._convert")
UTC = dt.UTC


def parse_local(value: DateTimeTimeZone | None, *, what: str, event_id: str | None) -> dt.datetime:
    """A ``dateTimeTimeZone`` → aware UTC instant.

    Raises:
        MalformedEvent: missing, unparseable, or a zone that cannot be resolved.
    """
    if value is None or not value.date_time:
        raise MalformedEvent(f"missing {what}", event_id=event_id)
    text = value.date_time
    name = value.time_zone or "UTC"
    try:
        # Graph sends seven fractional digits; the second is all calbridge keeps. Parsing with the
        # offset in the string is several times faster than replace(tzinfo=...) afterwards.
        if name == "UTC":
            return dt.datetime.fromisoformat(text[:19] + "+00:00")
        naive = dt.datetime.fromisoformat(text[:19])
    except ValueError:
        raise MalformedEvent(f"bad {what}.dateTime {text[:40]!r}", event_id=event_id) from None
    tz = zone_for(name)
    if tz is None:
        raise MalformedEvent(f"unknown time zone {name[:60]!r} in {what}", event_id=event_id)
    return naive.replace(tzinfo=tz).astimezone(UTC)


def date_of(value: DateTimeTimeZone | None, *, what: str, event_id: str | None) -> dt.date:
    if value is None or not value.date_time:
        raise MalformedEvent(f"missing {what}", event_id=event_id)
    try:
        return dt.date.fromisoformat(value.date_time[:10])
    except ValueError:
        raise MalformedEvent(f"bad {what}.dateTime", event_id=event_id) from None


def parse_instant(text: str | None) -> dt.datetime | None:
    """``2024-05-01T12:51:51.1234567Z`` (or with an offset) → aware UTC; None when absent or bad."""
    if not text:
        return None
    try:
        if text[-1] in "Zz":
            return dt.datetime.fromisoformat(text[:19] + "+00:00")
        tail = text[19:].lstrip(".0123456789")
        return dt.datetime.fromisoformat(text[:19] + (tail or "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 east of UTC has no UTC datetime
        return None


def export_zone(original: str | None, start_zone: str | None, event_id: str | None = None) -> str | None:
    """The exported ``timezone``: canonical ``originalStartTimeZone``, else the start's own zone
    unless that is only the UTC the response was written in; unknown → None (logged)."""
    canon = canonical_zone(original) if original else None
    if canon is not None:
        return canon
    fallback = canonical_zone(start_zone) if start_zone and start_zone != "UTC" else None
    if original:
        logger.info(
            "graph event %s: originalStartTimeZone %r is unknown; timezone %s",
            event_id,
            original[:60],
            f"falls back to {fallback}" if fallback else "is null",
        )
    return fallback


def series_zone_of(master: GEvent) -> str | None:
    """The zone a series' slots are laid out in: ``originalStartTimeZone``, else the pattern's
    ``range.recurrenceTimeZone`` (either may be a Windows name)."""
    rec = master.recurrence
    rng = rec.get("range") if isinstance(rec, Mapping) else None
    pattern_zone = rng.get("recurrenceTimeZone") if isinstance(rng, Mapping) else None
    for name in (master.original_start_time_zone, pattern_zone):
        if isinstance(name, str) and zone_for(name) is not None:
            return name
    return None


def slot_of(ev: GEvent, start: When, master: Event | None, tzname: str | None, series_zone: str | None = None) -> When:
    """The slot an occurrence or exception fills, in the series' zone (its date for all-day).

    Raises:
        MalformedEvent: an exception without ``originalStart``.
    """
    raw = parse_instant(ev.original_start)
    if start.all_day or (master is not None and master.start.all_day):
        if raw is None or str(ev.type).lower() == "occurrence":
            assert start.date is not None
            return When(date=start.date)  # an unmodified occurrence sits on its own slot
        # originalStart is the UTC instant of the slot's midnight in the series' zone: its UTC date
        # is a day early east of UTC (M4: originalStart is a DateTimeOffset in UTC).
        tz = zone_for(ev.original_start_time_zone) or zone_for(series_zone)
        return When(date=(raw.astimezone(tz) if tz is not None else raw).date())
    zone_name = master.start.timezone if master is not None else tzname
    if raw is None:
        if str(ev.type).lower() == "exception":
            raise MalformedEvent("exception without originalStart", event_id=ev.id)
        assert start.instant is not None
        raw = start.instant
    return When(instant=raw, timezone=zone_name)
