"""Write a provider-neutral scenario (:mod:`calbridge.testing.scenario`) into the Graph emulator:
``patternedRecurrence`` (pattern + range with Windows zone names), exceptions and cancelled
occurrences by original start, attendees with ``status.response``, ``showAs``, ``sensitivity``,
online meetings. Each scenario gets its own calendar in the organizer's mailbox."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from tzlocal.windows_tz import tz_win

from calbridge.model import Response, ShowAs, Status, Visibility
from calbridge.testing.scenario import ORGANIZER, EventSpec, Local, Moved, NotExpressible, Scenario, ScenarioLoader

if TYPE_CHECKING:
    from . import GraphEmulator

UTC = dt.UTC
_DAYS = {"MO": "monday", "TU": "tuesday", "WE": "wednesday", "TH": "thursday", "FR": "friday", "SA": "saturday",
         "SU": "sunday"}  # fmt: skip
_INDEX = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}
_RESPONSES = {
    Response.ACCEPTED: "accepted", Response.DECLINED: "declined", Response.TENTATIVE: "tentativelyAccepted",
    Response.NEEDS_ACTION: "notResponded", Response.NONE: "none",
}  # fmt: skip
_SENSITIVITY = {Visibility.DEFAULT: "normal", Visibility.PRIVATE: "private", Visibility.CONFIDENTIAL: "confidential"}
_SHOW_AS = {ShowAs.BUSY: "busy", ShowAs.FREE: "free", ShowAs.TENTATIVE: "tentative", ShowAs.OOF: "oof",
            ShowAs.WORKING_ELSEWHERE: "workingElsewhere"}  # fmt: skip


def windows_zone(iana: str) -> str:
    """The Windows name Outlook writes for an IANA zone."""
    name = tz_win.get(iana)
    if name is None:
        raise NotExpressible(f"no Windows zone for {iana}")
    return name


def _ordinal_day(value: str) -> tuple[int | None, str]:
    num, day = value[:-2], value[-2:]
    return (int(num) if num not in ("", "+") else None), day


def patterned(spec: EventSpec) -> dict[str, Any]:
    """The ``patternedRecurrence`` of a series from its canonical RRULE.

    Raises:
        NotExpressible: a rule Graph has no pattern for (several ordinal days, BYSETPOS, an UNTIL
            that is not the end of a day in the series zone...).
    """
    line = spec.recurrence[0]
    parts = dict(p.split("=", 1) for p in line[len("RRULE:"):].split(";"))
    freq = parts.pop("FREQ")
    pattern: dict[str, Any] = {"interval": int(parts.pop("INTERVAL", "1"))}
    byday = [_ordinal_day(v) for v in parts.pop("BYDAY", "").split(",") if v]
    monthday = parts.pop("BYMONTHDAY", None)
    month = parts.pop("BYMONTH", None)
    wkst = parts.pop("WKST", "MO")
    count, until = parts.pop("COUNT", None), parts.pop("UNTIL", None)
    if parts:
        raise NotExpressible(f"graph has no pattern for {sorted(parts)} in {line}")
    ordinals = {n for n, _ in byday}
    if freq == "DAILY" and not (byday or monthday or month):
        pattern["type"] = "daily"
    elif freq == "WEEKLY" and byday and ordinals == {None} and not (monthday or month):
        pattern.update(type="weekly", daysOfWeek=[_DAYS[day] for _, day in byday], firstDayOfWeek=_DAYS[wkst])
    elif freq in ("MONTHLY", "YEARLY") and monthday and not byday and "," not in monthday:
        pattern.update(type="absoluteMonthly" if freq == "MONTHLY" else "absoluteYearly", dayOfMonth=int(monthday))
    elif freq in ("MONTHLY", "YEARLY") and len(byday) == 1 and byday[0][0] in _INDEX and not monthday:
        index, day = byday[0]
        assert index is not None
        pattern.update(type="relativeMonthly" if freq == "MONTHLY" else "relativeYearly", daysOfWeek=[_DAYS[day]],
                       index=_INDEX[index])  # fmt: skip
    else:
        raise NotExpressible(f"graph has no pattern for {line}")
    if freq == "YEARLY":
        if month is None or "," in month:
            raise NotExpressible(f"graph yearly patterns name one month: {line}")
        pattern["month"] = int(month)
    elif month is not None:
        raise NotExpressible(f"graph has no BYMONTH outside yearly patterns: {line}")
    start_day = spec.start if not isinstance(spec.start, dt.datetime) else spec.start.date()
    rng: dict[str, Any] = {"type": "noEnd", "startDate": start_day.isoformat()}
    if count is not None:
        rng.update(type="numbered", numberOfOccurrences=int(count))
    elif until is not None:
        rng.update(type="endDate", endDate=_end_date(spec, until).isoformat())
    return {"pattern": pattern, "range": rng}


def _end_date(spec: EventSpec, until: str) -> dt.date:
    if spec.all_day:
        return dt.date(int(until[0:4]), int(until[4:6]), int(until[6:8]))
    assert spec.tz is not None
    local = dt.datetime.strptime(until, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).astimezone(spec.tz)
    if local.time() != dt.time(23, 59, 59):
        raise NotExpressible(f"graph's range ends with a day; UNTIL={until} is not the end of one in {spec.zone}")
    return local.date()


def _attendees(spec: EventSpec) -> list[dict[str, Any]]:
    return [
        {
            "type": "optional" if g.optional else "required",
            "status": {"response": _RESPONSES[g.response], "time": "0001-01-01T00:00:00Z"},
            "emailAddress": {"name": g.name, "address": g.email},
        }
        for g in spec.attendees
    ]


class GraphScenario(ScenarioLoader):
    """A scenario loaded into its own calendar of the organizer's mailbox."""

    def __init__(self, emu: GraphEmulator, scenario: Scenario, calendar_name: str | None = None) -> None:
        super().__init__(scenario)
        self.emu: GraphEmulator = emu
        if emu._find_user(ORGANIZER.email) is None:
            emu.add_user(ORGANIZER.email, display_name=ORGANIZER.name)
        self.user = ORGANIZER.email
        self.calendar_id = emu.add_calendar(self.user, calendar_name or scenario.name)

    def _zone(self, spec: EventSpec) -> str:
        return "UTC" if spec.zone is None else windows_zone(spec.zone)

    def _fields(self, spec: EventSpec) -> dict[str, Any]:
        if spec.status is not Status.CONFIRMED:
            self.lossy.add("status")  # Graph events have no status besides isCancelled
        if spec.visibility not in _SENSITIVITY:
            raise NotExpressible(f"graph has no visibility {spec.visibility.value!r}")
        return {
            "subject": spec.title,
            "body": spec.description or "",
            "location": spec.location,
            "attendees": _attendees(spec),
            "show_as": _SHOW_AS[spec.show_as],
            "sensitivity": _SENSITIVITY[spec.visibility],
            "join_url": spec.meeting_url,
        }

    def _aware(self, spec: EventSpec, local: Local) -> dt.datetime:
        """The instant the emulator keys an occurrence by (an all-day date: its midnight UTC)."""
        return spec.instant(local)

    def create(self, spec: EventSpec) -> str:
        fields = self._fields(spec)
        eid = self.emu.create_event(
            fields.pop("subject"), spec.start, spec.end, time_zone=self._zone(spec), calendar=self.calendar_id,
            user=self.user, all_day=spec.all_day, recurrence=patterned(spec) if spec.rrule else None, **fields,
        )  # fmt: skip
        for m in spec.moved:
            self.move(eid, spec, m)
        for c in spec.cancelled:
            self.cancel(eid, spec, c)
        return eid

    def update(self, event_id: str, spec: EventSpec) -> None:
        self.emu.update_event(event_id, start=spec.start, end=spec.end, **self._fields(spec))

    def delete(self, event_id: str, spec: EventSpec) -> None:
        self.emu.delete_event(event_id)

    def cancel(self, event_id: str, spec: EventSpec, original: Local) -> None:
        self.emu.cancel_occurrence(event_id, self._aware(spec, original))

    def move(self, event_id: str, spec: EventSpec, moved: Moved) -> None:
        fields = {k: v for k, v in (("subject", moved.title), ("body", moved.description),
                                    ("location", moved.location)) if v is not None}  # fmt: skip
        self.emu.move_occurrence(event_id, self._aware(spec, moved.original), self._aware(spec, moved.start),
                                 self._aware(spec, moved.end), **fields)  # fmt: skip

    def truncate(self, event_id: str, spec: EventSpec) -> None:
        self.emu.update_event(event_id, recurrence=patterned(spec))

    def account_config(self, *, name: str, base_url: str, ca_file: str | None) -> dict[str, Any]:
        """The emulator's account entry, reading this scenario's calendar of the organizer's mailbox."""
        entry = super().account_config(name=name, base_url=base_url, ca_file=ca_file)
        entry["user"] = self.user
        return entry


def load(emu: GraphEmulator, scenario: Scenario, calendar_name: str | None = None) -> GraphScenario:
    """A new calendar (named ``calendar_name``, default the scenario's name) in the organizer's
    mailbox holding ``scenario``'s events; Graph assigns the calendar's id."""
    loaded = GraphScenario(emu, scenario, calendar_name)
    loaded.load()
    return loaded
