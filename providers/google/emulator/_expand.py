"""Recurrence expansion for the emulator's ``events.instances``: a series master plus its stored
exceptions → the instance payloads Google would return, in start order.

Occurrences are generated with dateutil's rrule on an aware ``dtstart`` in the series' own zone, so
wall-clock times survive DST changes exactly as Google keeps them. EXDATE lines are applied here
(dateutil's parser knows neither ``VALUE=DATE`` nor IANA ``TZID`` reliably across versions).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from dateutil import rrule

UTC = dt.UTC
_MAX_INSTANCES = 5000  # an unbounded series without timeMax stops here, as Google's own cap does


def parse_rfc3339(text: str) -> dt.datetime:
    """RFC 3339 with ``Z`` or an offset → aware datetime."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"no offset in {text!r}")
    return value


def format_local(value: dt.datetime) -> str:
    """``2024-03-12T09:00:00-04:00``, the way Google writes an event's dateTime."""
    return value.isoformat(timespec="seconds")


def slot_key(when: Mapping[str, Any], tz: ZoneInfo) -> str:
    """The identity of an occurrence slot: ``yyyymmdd`` (all-day) or UTC ``yyyymmddThhmmssZ``."""
    if "date" in when:
        return str(when["date"]).replace("-", "")
    instant = dt.datetime.fromisoformat(str(when["dateTime"]).replace("Z", "+00:00"))
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=tz)
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _exdates(lines: list[str], tz: ZoneInfo, all_day: bool) -> set[str]:
    out: set[str] = set()
    for line in lines:
        head, _, values = line.partition(":")
        if head.split(";")[0].upper() != "EXDATE":
            continue
        params = dict(p.split("=", 1) for p in head.split(";")[1:] if "=" in p)
        ptz = ZoneInfo(params["TZID"]) if "TZID" in params else tz
        for value in values.split(","):
            value = value.strip()
            if not value:
                continue
            if all_day or "T" not in value:
                out.add(value[:8])
            elif value.endswith("Z"):
                out.add(value)
            else:
                local = dt.datetime.strptime(value, "%Y%m%dT%H%M%S").replace(tzinfo=ptz)
                out.add(local.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"))
    return out


def series_zone(master: Mapping[str, Any], calendar_zone: str) -> ZoneInfo:
    return ZoneInfo(master.get("start", {}).get("timeZone") or calendar_zone)


def occurrences(
    master: Mapping[str, Any], calendar_zone: str, *, until: dt.datetime | None
) -> Iterator[dict[str, Any]]:
    """The rule's occurrences as ``{"start", "end", "originalStartTime", "slot"}`` (no exceptions applied)."""
    tz = series_zone(master, calendar_zone)
    lines = [str(x) for x in master.get("recurrence", ())]
    rules = [x for x in lines if x.upper().startswith("RRULE:")]
    start, end = master["start"], master["end"]
    all_day = "date" in start
    skip = _exdates(lines, tz, all_day)
    if all_day:
        first = dt.date.fromisoformat(start["date"])
        length = dt.date.fromisoformat(end["date"]) - first
        dtstart = dt.datetime(first.year, first.month, first.day, tzinfo=UTC)
    else:
        dtstart = parse_rfc3339(start["dateTime"]).astimezone(tz)
        length = parse_rfc3339(end["dateTime"]) - parse_rfc3339(start["dateTime"])
    rset = rrule.rruleset()
    for line in rules:
        body = line[6:]
        # A date UNTIL (Google accepts it on timed series too); dateutil wants it aware like dtstart.
        body = ";".join(
            (p + "T235959Z" if p.upper().startswith("UNTIL=") and "T" not in p else p) for p in body.split(";")
        )
        rset.rrule(rrule.rrulestr(body, dtstart=dtstart))  # type: ignore[arg-type]
    count = 0
    for occ in rset:
        if until is not None and occ.astimezone(UTC) >= until:
            break
        count += 1
        if count > _MAX_INSTANCES:
            break
        if all_day:
            day = occ.date()
            slot = day.strftime("%Y%m%d")
            if slot in skip:
                continue
            when: dict[str, Any] = {"date": day.isoformat()}
            yield {
                "start": when,
                "end": {"date": (day + length).isoformat()},
                "originalStartTime": dict(when),
                "slot": slot,
            }
        else:
            local = occ.replace(tzinfo=tz)
            slot = local.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
            if slot in skip:
                continue
            name = str(tz.key)
            when = {"dateTime": format_local(local), "timeZone": name}
            end_local = (local.astimezone(UTC) + length).astimezone(tz)
            yield {
                "start": when,
                "end": {"dateTime": format_local(end_local), "timeZone": name},
                "originalStartTime": dict(when),
                "slot": slot,
            }


def _bounds(payload: Mapping[str, Any], tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    def instant(when: Mapping[str, Any]) -> dt.datetime:
        if "date" in when:
            d = dt.date.fromisoformat(when["date"])
            return dt.datetime(d.year, d.month, d.day, tzinfo=UTC)
        return parse_rfc3339(when["dateTime"])

    return instant(payload["start"]), instant(payload["end"])


def instances(
    master: Mapping[str, Any],
    exceptions: Mapping[str, Mapping[str, Any]],
    calendar_zone: str,
    *,
    time_min: dt.datetime | None,
    time_max: dt.datetime | None,
    show_deleted: bool,
) -> list[dict[str, Any]]:
    """Instance payloads of ``master`` in [time_min, time_max) with ``exceptions`` (slot → payload) applied.

    timeMin is an inclusive bound on an instance's end and timeMax an exclusive bound on its start
    (the instances method's documented semantics).
    """
    tz = series_zone(master, calendar_zone)
    sid = master["id"]
    base = {k: v for k, v in master.items() if k not in ("recurrence", "id", "start", "end", "etag")}
    out: list[tuple[dt.datetime, dict[str, Any]]] = []
    seen: set[str] = set()
    for occ in occurrences(master, calendar_zone, until=time_max + dt.timedelta(days=400) if time_max else None):
        slot = occ["slot"]
        seen.add(slot)
        exc = exceptions.get(slot)
        if exc is not None:
            payload = dict(exc)
        else:
            payload = dict(base)
            payload.update(
                id=f"{sid}_{slot}",
                recurringEventId=sid,
                start=occ["start"],
                end=occ["end"],
                originalStartTime=occ["originalStartTime"],
                etag=master.get("etag"),
            )
        out.append((_bounds(payload, tz)[0] if "start" in payload else dt.datetime.min.replace(tzinfo=UTC), payload))
    result = []
    for _, payload in sorted(out, key=lambda p: p[0]):
        if payload.get("status") == "cancelled":
            if not show_deleted:
                continue
            result.append(payload)
            continue
        start, end = _bounds(payload, tz)
        if time_max is not None and start >= time_max:
            continue
        if time_min is not None and end < time_min:
            continue
        result.append(payload)
    return result
