"""The emulator's Python API for changing a mailbox (thread-safe), and the demo data."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ._model import UTC, EventDef, build_rule, instances, resolve_zone, slot_id

Attendees = Iterable[str | Mapping[str, Any]]


def _attendee(value: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(value, str):
        return {
            "type": "required",
            "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
            "emailAddress": {"name": value.split("@")[0].title(), "address": value},
        }
    return dict(value)


def _local(value: dt.datetime | dt.date, zone_name: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value
        return value.astimezone(resolve_zone(zone_name)).replace(tzinfo=None)
    return dt.datetime.combine(value, dt.time())


def _instant(value: dt.datetime | dt.date) -> dt.datetime:
    """An occurrence's key instant: an all-day date is its midnight UTC (as calendarView places it)."""
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)


class ServiceMixin:
    """Create, update and delete singles and series; cancel or move one occurrence."""

    _lock: threading.RLock
    _versions: dict[str, list[tuple[int, EventDef | None]]]
    _log: list[tuple[int, str]]
    _users: dict[str, dict[str, Any]]
    _counter: int
    seq: int
    default_user: str

    def _calendar_for(self, calendar: str, user: str | None) -> str:
        raise NotImplementedError

    if TYPE_CHECKING:  # PushMixin's: queue the change notifications of a commit

        def _notify(self, eid: str, old: EventDef | None, new: EventDef | None) -> None: ...

    def _commit(self, eid: str, defn: EventDef | None) -> None:
        previous = self._versions.get(eid)
        self._notify(eid, previous[-1][1] if previous else None, defn)
        self.seq += 1
        if defn is not None:
            defn.modified = dt.datetime.now(UTC)
        self._versions.setdefault(eid, []).append((self.seq, None if defn is None else defn.copy()))
        self._log.append((self.seq, eid))

    def _get(self, eid: str) -> EventDef:
        versions = self._versions.get(eid)
        defn = versions[-1][1] if versions else None
        if defn is None:
            raise KeyError(f"no event {eid!r}")
        return defn.copy()

    def create_event(
        self,
        subject: str,
        start: dt.datetime | dt.date,
        end: dt.datetime | dt.date,
        *,
        time_zone: str = "Pacific Standard Time",
        calendar: str = "primary",
        user: str | None = None,
        all_day: bool = False,
        body: str = "",
        location: str | None = None,
        attendees: Attendees = (),
        recurrence: Mapping[str, Any] | None = None,
        show_as: str = "busy",
        sensitivity: str = "normal",
        join_url: str | None = None,
        is_cancelled: bool = False,
    ) -> str:
        """A single (or, with a Graph ``patternedRecurrence``, a series); returns its id.

        Naive datetimes are wall times in ``time_zone`` (a Windows or IANA name); dates make
        all-day events. A series starts at its first occurrence, as Outlook's masters do.
        """
        with self._lock:
            upn = user or self.default_user
            self._counter += 1
            eid = f"AAMkADEvt{self._counter:05d}AAA="
            all_day = all_day or not isinstance(start, dt.datetime)
            defn = EventDef(
                id=eid,
                calendar_id=self._calendar_for(calendar, upn),
                subject=subject,
                start=_local(start, time_zone),
                end=_local(end, time_zone),
                zone_name=time_zone,
                is_all_day=all_day,
                body=body,
                location=location,
                attendees=[_attendee(a) for a in attendees],
                organizer={"emailAddress": {"name": self._users[upn]["name"], "address": upn}},
                show_as=show_as,
                sensitivity=sensitivity,
                join_url=join_url,
                is_cancelled=is_cancelled,
            )
            if recurrence is not None:
                defn.recurrence = self._normalized_recurrence(recurrence, defn)
                self._align(defn)
            self._commit(eid, defn)
            return eid

    def _normalized_recurrence(self, recurrence: Mapping[str, Any], defn: EventDef) -> dict[str, Any]:
        rec = {"pattern": dict(recurrence.get("pattern") or {}), "range": dict(recurrence.get("range") or {})}
        rng = rec["range"]
        rng.setdefault("type", "noEnd")
        rng.setdefault("startDate", defn.start.date().isoformat())
        rng.setdefault("recurrenceTimeZone", defn.zone_name)
        pattern = rec["pattern"]
        pattern.setdefault("interval", 1)
        if str(pattern.get("type", "")).lower() == "weekly":
            pattern.setdefault("firstDayOfWeek", "sunday")
        return rec

    def _align(self, defn: EventDef) -> None:
        try:
            first = next(iter(build_rule(defn)), None)
        except ValueError:
            return  # a pattern the emulator cannot expand (bad-input tests): leave it as given
        if first is not None and first != defn.start:
            duration = defn.end - defn.start
            defn.start, defn.end = first, first + duration

    def update_event(
        self, eid: str, *, calendar: str | None = None, title: str | None = None,
        start: dt.datetime | dt.date | None = None, end: dt.datetime | dt.date | None = None, **changes: Any,
    ) -> None:  # fmt: skip
        """Change fields of a single or series (``title``/``subject``, ``start``, ``end``, ``body``,
        ``location``, ``recurrence``, ``attendees``, ``show_as``, ``is_cancelled``...). Ids are unique
        across calendars, so ``calendar`` is only for the shared API's signature."""
        changes.update({k: v for k, v in (("subject", title), ("start", start), ("end", end)) if v is not None})
        with self._lock:
            defn = self._get(eid)
            for key, value in changes.items():
                if key in ("start", "end"):
                    value = _local(value, defn.zone_name)
                elif key == "attendees":
                    value = [_attendee(a) for a in value]
                elif key == "recurrence" and value is not None:
                    value = self._normalized_recurrence(value, defn)
                if not hasattr(defn, key):
                    raise AttributeError(f"events have no field {key!r}")
                setattr(defn, key, value)
            if "recurrence" in changes and defn.recurrence is not None:
                self._align(defn)
            defn.version += 1
            self._commit(eid, defn)

    def override_payload(self, eid: str, fields: Mapping[str, Any]) -> None:
        """Merge raw JSON into what the API returns for a single or series master (bad-input tests)."""
        with self._lock:
            defn = self._get(eid)
            defn.raw_overrides.update(fields)
            defn.version += 1
            self._commit(eid, defn)

    def delete_event(self, eid: str, *, calendar: str | None = None) -> None:
        with self._lock:
            self._get(eid)
            self._commit(eid, None)

    def occurrence_id(self, series_id: str, original_start: dt.datetime) -> str:
        """The id of the occurrence whose unmodified start is ``original_start`` (aware)."""
        return slot_id(series_id, original_start)

    def occurrences(self, series_id: str, start: dt.datetime, end: dt.datetime) -> list[tuple[str, dt.datetime]]:
        """(id, UTC start) of each occurrence or exception of a series inside [start, end)."""
        with self._lock:
            return [(i.id, i.start) for i in instances(self._get(series_id), start, end)]

    def cancel_occurrence(
        self, series_id: str, original_start: dt.datetime | dt.date, *, calendar: str | None = None
    ) -> str:
        """Cancel one occurrence: it vanishes from calendarView (delta reports it @removed)."""
        with self._lock:
            defn = self._get(series_id)
            sid = slot_id(series_id, _instant(original_start))
            defn.cancelled.add(sid)
            defn.version += 1
            self._commit(series_id, defn)
            return sid

    def move_occurrence(
        self, series_id: str, original_start: dt.datetime | dt.date, start: dt.datetime | dt.date,
        end: dt.datetime | dt.date, *, calendar: str | None = None, **fields: Any,
    ) -> str:  # fmt: skip
        """Make one occurrence an exception at a new time (aware datetimes); returns its id."""
        with self._lock:
            defn = self._get(series_id)
            sid = slot_id(series_id, _instant(original_start))
            over = {"start": _local(start, defn.zone_name), "end": _local(end, defn.zone_name), **fields}
            defn.exceptions[sid] = over
            defn.version += 1
            self._commit(series_id, defn)
            return sid

    def seed_demo(self) -> None:
        """A week-anchored sample calendar: a weekly series in a Windows zone, singles, an all-day day."""
        today = dt.datetime.now(UTC).date()
        monday = today - dt.timedelta(days=today.weekday())
        self.create_event(
            "Team standup",
            dt.datetime.combine(monday, dt.time(9, 30)),
            dt.datetime.combine(monday, dt.time(9, 45)),
            time_zone="Pacific Standard Time",
            body="Daily sync.",
            location="Teams",
            attendees=["bob@contoso.example", "carol@contoso.example"],
            join_url="https://teams.example/l/meetup-join/standup",
            recurrence={
                "pattern": {"type": "weekly", "daysOfWeek": ["monday", "wednesday", "friday"]},
                "range": {"type": "noEnd"},
            },
        )
        self.create_event(
            "Quarterly review",
            dt.datetime.combine(monday, dt.time(14)),
            dt.datetime.combine(monday, dt.time(15)),
            time_zone="W. Europe Standard Time",
            location="Room 4",
            recurrence={
                "pattern": {"type": "relativeMonthly", "daysOfWeek": ["thursday"], "index": "last"},
                "range": {"type": "numbered", "numberOfOccurrences": 6},
            },
        )
        self.create_event(
            "Lunch with Dana",
            dt.datetime.combine(today + dt.timedelta(days=2), dt.time(12)),
            dt.datetime.combine(today + dt.timedelta(days=2), dt.time(13)),
            time_zone="Tokyo Standard Time",
            location="Cafe",
            body="<b>bring</b> the notes",
        )
        self.create_event("Offsite", today + dt.timedelta(days=7), today + dt.timedelta(days=9))

    def demo_changes(self) -> list[str]:
        """A few server-side changes, one line each."""
        lines: list[str] = []
        with self._lock:
            ids = {d.subject: eid for eid, v in self._versions.items() if (d := v[-1][1]) is not None}
        now = dt.datetime.now(UTC)
        if "Lunch with Dana" in ids:
            self.update_event(ids["Lunch with Dana"], subject="Lunch with Dana and Eli")
            lines.append("renamed 'Lunch with Dana' to 'Lunch with Dana and Eli'")
        if "Team standup" in ids:
            upcoming = self.occurrences(ids["Team standup"], now, now + dt.timedelta(days=21))
            if len(upcoming) >= 2:
                self.cancel_occurrence(ids["Team standup"], upcoming[0][1])
                lines.append(f"cancelled the standup of {upcoming[0][1]:%Y-%m-%d}")
                moved = upcoming[1][1] + dt.timedelta(hours=1)
                self.move_occurrence(ids["Team standup"], upcoming[1][1], moved, moved + dt.timedelta(minutes=15))
                lines.append(f"moved the standup of {upcoming[1][1]:%Y-%m-%d} one hour later")
        if "Offsite" in ids:
            self.delete_event(ids["Offsite"])
            lines.append("deleted 'Offsite'")
        day = now.date() + dt.timedelta(days=3)
        self.create_event(
            "1:1 with Frank", dt.datetime.combine(day, dt.time(10)), dt.datetime.combine(day, dt.time(10, 30))
        )
        lines.append("created '1:1 with Frank'")
        return lines
