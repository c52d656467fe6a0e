"""The Graph emulator's data: event definitions, their versions, occurrence expansion and rendering.

Times are kept as wall-clock times in the event's zone, as Outlook does. A series expands with
dateutil straight from its ``patternedRecurrence`` in the series zone (independently of the
provider's RRULE conversion, which the tests compare against it). Every change appends a version,
so a delta token (a change-log position) can be answered exactly: what differs in the window
between the version at that position and now.
"""

from __future__ import annotations

import datetime as dt
import html
import zlib
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import attrs
from dateutil import rrule as du

from calbridge.zones import canonical_zone, zone

UTC = dt.UTC
_WEEKDAYS = {
    "monday": du.MO,
    "tuesday": du.TU,
    "wednesday": du.WE,
    "thursday": du.TH,
    "friday": du.FR,
    "saturday": du.SA,
    "sunday": du.SU,
}
_INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}


def resolve_zone(name: str) -> ZoneInfo:
    canon = canonical_zone(name)
    if canon is None:
        raise ValueError(f"unknown time zone {name!r}")
    return zone(canon)


@attrs.define(kw_only=True)
class EventDef:
    """One single event or series master as the mailbox holds it."""

    id: str
    calendar_id: str
    subject: str
    start: dt.datetime  # naive wall time in ``zone_name``
    end: dt.datetime
    zone_name: str  # as Outlook reports it in originalStartTimeZone (usually a Windows name)
    is_all_day: bool = False
    body: str = ""
    location: str | None = None
    attendees: list[dict[str, Any]] = attrs.field(factory=list)
    organizer: dict[str, Any] | None = None
    # The mailbox's own answer and role (responseStatus, isOrganizer): an invitation another
    # mailbox organizes sets organizer, is_organizer=False and the mailbox's response.
    response: str = "organizer"
    is_organizer: bool = True
    show_as: str = "busy"
    sensitivity: str = "normal"
    is_cancelled: bool = False
    join_url: str | None = None
    recurrence: dict[str, Any] | None = None
    exceptions: dict[str, dict[str, Any]] = attrs.field(factory=dict)  # slot id → overrides
    cancelled: set[str] = attrs.field(factory=set)  # slot ids
    created: dt.datetime = attrs.field(factory=lambda: dt.datetime.now(UTC))
    modified: dt.datetime = attrs.field(factory=lambda: dt.datetime.now(UTC))
    version: int = 1
    raw_overrides: dict[str, Any] = attrs.field(factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return resolve_zone(self.zone_name)

    def copy(self) -> EventDef:
        return attrs.evolve(
            self,
            attendees=[dict(a) for a in self.attendees],
            exceptions={k: dict(v) for k, v in self.exceptions.items()},
            cancelled=set(self.cancelled),
            recurrence=None if self.recurrence is None else _deep(self.recurrence),
            raw_overrides=_deep(self.raw_overrides),
        )


def _deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep(v) for v in value]
    return value


@attrs.frozen(kw_only=True)
class Instance:
    """What calendarView shows: a single, or one occurrence/exception of a series."""

    id: str
    type: str  # singleInstance | occurrence | exception
    start: dt.datetime  # aware UTC
    end: dt.datetime
    slot: dt.datetime | None = None  # aware UTC original start (occurrences and exceptions)
    overrides: tuple[tuple[str, Any], ...] = ()


def change_key(defn: EventDef) -> str:
    """The event's ``changeKey`` (``@odata.etag`` is ``W/"{changeKey}"``): bumped by every change."""
    return f"EZ9r3czxY0m2jz8c45cz{defn.version:08d}"


def build_rule(defn: EventDef) -> du.rrule:
    """dateutil's rule for a series, in naive wall time of the series zone."""
    assert defn.recurrence is not None
    pattern = defn.recurrence.get("pattern") or {}
    rng = defn.recurrence.get("range") or {}
    ptype = str(pattern.get("type", "")).lower()
    start_date = dt.date.fromisoformat(rng["startDate"]) if rng.get("startDate") else defn.start.date()
    kw: dict[str, Any] = {
        "dtstart": dt.datetime.combine(start_date, defn.start.time()),
        "interval": int(pattern.get("interval") or 1),
    }
    days = [_WEEKDAYS[d.lower()] for d in pattern.get("daysOfWeek") or ()]
    index = _INDEX[str(pattern.get("index") or "first").lower()]
    if ptype == "daily":
        freq = du.DAILY
    elif ptype == "weekly":
        freq = du.WEEKLY
        kw["byweekday"] = days
        kw["wkst"] = _WEEKDAYS[str(pattern.get("firstDayOfWeek") or "sunday").lower()]
    elif ptype == "absolutemonthly":
        freq = du.MONTHLY
        kw["bymonthday"] = int(pattern["dayOfMonth"])
    elif ptype == "relativemonthly":
        freq = du.MONTHLY
        kw["byweekday"] = days
        kw["bysetpos"] = index
    elif ptype == "absoluteyearly":
        freq = du.YEARLY
        kw["bymonth"] = int(pattern["month"])
        kw["bymonthday"] = int(pattern["dayOfMonth"])
    elif ptype == "relativeyearly":
        freq = du.YEARLY
        kw["bymonth"] = int(pattern["month"])
        kw["byweekday"] = days
        kw["bysetpos"] = index
    else:
        raise ValueError(f"the emulator cannot expand pattern type {ptype!r}")
    rtype = str(rng.get("type") or "noEnd").lower()
    if rtype == "enddate":
        kw["until"] = dt.datetime.combine(dt.date.fromisoformat(rng["endDate"]), dt.time(23, 59, 59))
    elif rtype == "numbered":
        kw["count"] = int(rng["numberOfOccurrences"])
    return du.rrule(freq, **kw)  # type: ignore[arg-type]  # freq is one of dateutil's constants


def slot_id(series_id: str, slot: dt.datetime) -> str:
    return f"{series_id}_{slot.astimezone(UTC):%Y%m%dT%H%M%S}"


def _aware(defn: EventDef, local: dt.datetime) -> dt.datetime:
    if defn.is_all_day:
        return local.replace(tzinfo=UTC)  # all-day is floating; calendarView places it at UTC midnight
    return local.replace(tzinfo=defn.tz).astimezone(UTC)


def overlaps(start: dt.datetime, end: dt.datetime, ws: dt.datetime, we: dt.datetime) -> bool:
    if start == end:
        return ws <= start < we
    return start < we and end > ws


def slots(defn: EventDef, ws: dt.datetime, we: dt.datetime) -> Iterator[dt.datetime]:
    """Naive local slot starts of a series whose occurrences may touch [ws, we)."""
    rule = build_rule(defn)
    tz = UTC if defn.is_all_day else defn.tz
    margin = (defn.end - defn.start) + dt.timedelta(days=2)
    lo = ws.astimezone(tz).replace(tzinfo=None) - margin
    hi = we.astimezone(tz).replace(tzinfo=None) + dt.timedelta(days=2)
    yield from rule.between(lo, hi, inc=True)


def instances(defn: EventDef | None, ws: dt.datetime, we: dt.datetime) -> list[Instance]:
    """What a calendarView over [ws, we) shows of ``defn`` (cancelled occurrences vanish)."""
    if defn is None:
        return []
    if defn.recurrence is None:
        s, e = _aware(defn, defn.start), _aware(defn, defn.end)
        return [Instance(id=defn.id, type="singleInstance", start=s, end=e)] if overlaps(s, e, ws, we) else []
    out = []
    duration = defn.end - defn.start
    for local in slots(defn, ws, we):
        slot = _aware(defn, local)
        sid = slot_id(defn.id, slot)
        if sid in defn.cancelled:
            continue
        over = defn.exceptions.get(sid)
        if over:
            s = _aware(defn, over.get("start", local))
            e = _aware(defn, over.get("end", local + duration))
            kind = "exception"
        else:
            s, e, kind = slot, _aware(defn, local + duration), "occurrence"
        if overlaps(s, e, ws, we):
            items = tuple(sorted((k, v) for k, v in (over or {}).items()))
            out.append(Instance(id=sid, type=kind, start=s, end=e, slot=slot, overrides=items))
    return out


def content(defn: EventDef, inst: Instance) -> tuple[Any, ...]:
    """What a client can see of one instance (delta compares these). The version is part of it:
    every instance carries its series' changeKey, so a series change re-reports all of them, as
    Graph's calendarView delta does."""
    return (
        defn.version,
        inst.type,
        inst.start,
        inst.end,
        inst.overrides,
        defn.subject,
        defn.body,
        defn.location,
        repr(defn.attendees),
        repr(defn.organizer),
        defn.response,
        defn.is_organizer,
        defn.show_as,
        defn.sensitivity,
        defn.is_cancelled,
        defn.join_url,
        defn.zone_name,
        defn.is_all_day,
        repr(defn.recurrence),
    )


def _dtz(value: dt.datetime, defn: EventDef, prefer_tz: str | None) -> dict[str, str]:
    """A dateTimeTimeZone: in the preferred zone, else the event's own (Windows) zone."""
    if defn.is_all_day:
        return {"dateTime": f"{value:%Y-%m-%dT00:00:00}.0000000", "timeZone": prefer_tz or defn.zone_name}
    if prefer_tz:
        local = value.astimezone(resolve_zone(prefer_tz))
        return {"dateTime": f"{local:%Y-%m-%dT%H:%M:%S}.0000000", "timeZone": prefer_tz}
    local = value.astimezone(defn.tz)
    return {"dateTime": f"{local:%Y-%m-%dT%H:%M:%S}.0000000", "timeZone": defn.zone_name}


def _stamp(value: dt.datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def render(
    defn: EventDef,
    inst: Instance | None,
    *,
    prefer_tz: str | None,
    text_body: bool,
    skeletal: bool,
    origin: str,
) -> dict[str, Any]:
    """The Graph JSON of a single, master (``inst`` None on a series) or occurrence/exception."""
    if inst is None:
        s, e = _aware(defn, defn.start), _aware(defn, defn.end)
        etype = "seriesMaster" if defn.recurrence is not None else "singleInstance"
        eid = defn.id
    else:
        s, e, etype, eid = inst.start, inst.end, inst.type, inst.id
    out: dict[str, Any] = {"@odata.type": "#microsoft.graph.event", "id": eid, "type": etype}
    if etype in ("occurrence", "exception"):
        out["seriesMasterId"] = defn.id
    out["start"] = _dtz(s, defn, prefer_tz)
    out["end"] = _dtz(e, defn, prefer_tz)
    change = change_key(defn)
    if skeletal and etype == "occurrence":
        out["@odata.etag"] = f'W/"{change}"'  # the delta's skeletal occurrences keep their etag
        return out
    over = dict(inst.overrides) if inst is not None else {}
    body = over.get("body", defn.body)
    out.update(
        {
            "@odata.etag": f'W/"{change}"',
            "changeKey": change,
            "createdDateTime": _stamp(defn.created),
            "lastModifiedDateTime": _stamp(defn.modified),
            "iCalUId": f"040000008200E00074C5B7101A82E008{zlib.crc32(eid.encode()):010d}",
            "subject": over.get("subject", defn.subject),
            "bodyPreview": body[:255],
            "body": (
                {"contentType": "text", "content": body}
                if text_body
                else {"contentType": "html", "content": f"<html><body><p>{html.escape(body)}</p></body></html>"}
            ),
            "isAllDay": defn.is_all_day,
            "isCancelled": defn.is_cancelled,
            "showAs": defn.show_as,
            "sensitivity": defn.sensitivity,
            "importance": "normal",
            "originalStartTimeZone": defn.zone_name,
            "originalEndTimeZone": defn.zone_name,
            "location": {"displayName": over.get("location", defn.location) or "", "locationType": "default"},
            "attendees": defn.attendees,
            "organizer": defn.organizer,
            "responseStatus": {"response": defn.response, "time": "0001-01-01T00:00:00Z"},
            "isOrganizer": defn.is_organizer,
            "isOnlineMeeting": defn.join_url is not None,
            "onlineMeeting": {"joinUrl": defn.join_url} if defn.join_url else None,
            "webLink": f"{origin}/owa/?itemid={eid}&exvsurl=1&path=/calendar/item",
            "recurrence": defn.recurrence if inst is None else None,
        }
    )
    if inst is not None and inst.slot is not None:
        slot = inst.slot
        if defn.is_all_day:  # Outlook's all-day slot is midnight in the series' own zone, written in UTC
            slot = slot.replace(tzinfo=defn.tz).astimezone(UTC)
        out["originalStart"] = slot.strftime("%Y-%m-%dT%H:%M:%SZ")
    if defn.raw_overrides and (inst is None or inst.type == "singleInstance"):
        out.update(_deep(defn.raw_overrides))
    return out
