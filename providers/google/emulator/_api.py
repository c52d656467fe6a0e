"""The Google emulator's side of :class:`calbridge.testing.emulator_api.SeriesEmulatorAPI`: the same
verbs as every shipped emulator, written into :class:`GoogleState` in Google's wire form."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from calbridge.testing.emulator_api import Answered, apply_seed, seed_plan

from ._state import GoogleState

DEFAULT_CALENDAR = "emulator@calbridge.example"
Instant = dt.datetime | dt.date


def _when(value: Instant, zone: str) -> dict[str, str]:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("emulator times must be aware")
        return {"dateTime": value.astimezone(ZoneInfo(zone)).isoformat(timespec="seconds"), "timeZone": zone}
    return {"date": value.isoformat()}


class GoogleAPI:
    """Mixin for :class:`GoogleEmulator` (needs ``self.state``)."""

    state: GoogleState

    def _calendar(self, calendar: str | None) -> str:
        with self.state.lock:
            if calendar is not None:
                return calendar
            primary = self.state.calendar("primary")
            if primary is None:
                self.state.add_calendar(DEFAULT_CALENDAR, summary="Emulator", primary=True)
                return DEFAULT_CALENDAR
            return primary.id

    def _zone_of(self, calendar: str, event_id: str) -> str:
        event = self.state.get_event(calendar, event_id) or {}
        return str(event.get("start", {}).get("timeZone") or "UTC")

    def new_calendar(self, name: str) -> str:
        """A fresh calendar whose id is ``name`` (made unique) in zone UTC."""
        with self.state.lock:
            cid, n = name, 1
            while cid in self.state.calendars:
                n += 1
                cid = f"{name}-{n}"
            self.state.add_calendar(cid, time_zone="UTC")
            return cid

    def add_event(
        self, title: str, start: Instant, end: Instant, *, calendar: str | None = None, rrule: str | None = None,
        time_zone: str = "UTC",
    ) -> str:  # fmt: skip
        payload: dict[str, Any] = {"summary": title, "start": _when(start, time_zone), "end": _when(end, time_zone)}
        if rrule is not None:
            payload["recurrence"] = [f"RRULE:{rrule}"]
        return str(self.state.put_event(self._calendar(calendar), payload)["id"])

    def update_event(
        self, event_id: str, *, calendar: str | None = None, title: str | None = None, start: Instant | None = None,
        end: Instant | None = None, **fields: Any,
    ) -> None:  # fmt: skip
        """Also takes Google's own fields (``description=``, ``attendees=``...)."""
        with self.state.lock:
            cal = self._calendar(calendar)
            zone = self._zone_of(cal, event_id)
            if title is not None:
                fields["summary"] = title
            if start is not None:
                fields["start"] = _when(start, zone)
            if end is not None:
                fields["end"] = _when(end, zone)
            self.state.update_event(cal, event_id, **fields)

    def delete_event(self, event_id: str, *, calendar: str | None = None) -> None:
        self.state.delete_event(self._calendar(calendar), event_id)

    def cancel_occurrence(self, series_id: str, original_start: Instant, *, calendar: str | None = None) -> str:
        with self.state.lock:
            cal = self._calendar(calendar)
            return self.state.cancel_occurrence(cal, series_id, _when(original_start, self._zone_of(cal, series_id)))

    def move_occurrence(
        self, series_id: str, original_start: Instant, start: Instant, end: Instant, *, calendar: str | None = None,
        **fields: Any,
    ) -> str:  # fmt: skip
        with self.state.lock:
            cal = self._calendar(calendar)
            zone = self._zone_of(cal, series_id)
            moved = self.state.move_occurrence(cal, series_id, _when(original_start, zone), start=_when(start, zone),
                                               end=_when(end, zone), **fields)  # fmt: skip
            return str(moved["id"])

    def expire_cursors(self) -> None:
        self.state.expire_sync_tokens()

    def fail_next(self, status: int, *, count: int = 1, retry_after: float | None = None) -> None:
        self.state.inject(status, times=count, retry_after=retry_after, path_contains="/calendar/v3")

    def request_paths(self) -> list[str]:
        """The API paths answered so far (``calbridge.testing.emulator_api.RequestLog``)."""
        with self.state.lock:
            return [r.path for r in self.state.requests if r.path.startswith("/calendar/v3")]

    def answered(self) -> list[Answered]:
        """Every request answered so far, ``/token`` included (``RequestLog``)."""
        with self.state.lock:
            return [Answered(method=r.method, path=r.path, query=dict(r.query),
                             identity=not r.path.startswith("/calendar/v3")) for r in self.state.requests]  # fmt: skip

    def clear_faults(self) -> None:
        with self.state.lock:
            self.state.faults.clear()

    def seed(self, n_events: int, n_series: int = 0, *, calendar: str | None = None) -> Sequence[str]:
        return apply_seed(self, seed_plan(n_events, n_series), calendar=self._calendar(calendar))
