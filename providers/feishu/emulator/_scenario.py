"""Write a provider-neutral scenario (:mod:`calbridge.testing.scenario`) into the Feishu emulator:
bare RRULEs, exceptions ``{uid}_{original start seconds}``, cancelled occurrences as cancelled
exceptions, inclusive all-day end dates, ``free_busy_status``, ``visibility``, ``vchat`` and
third-party (email) attendees with ``rsvp_status``. Each scenario gets its own calendar."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import TYPE_CHECKING, Any

from calbridge.model import Response, ShowAs, Visibility
from calbridge.testing.scenario import ORGANIZER, EventSpec, Local, Moved, NotExpressible, Scenario, ScenarioLoader

if TYPE_CHECKING:
    from . import FeishuEmulator

_RSVP = {
    Response.ACCEPTED: "accept", Response.DECLINED: "decline", Response.TENTATIVE: "tentative",
    Response.NEEDS_ACTION: "needs_action",
}  # fmt: skip
_VISIBILITY = {Visibility.DEFAULT: "default", Visibility.PUBLIC: "public", Visibility.PRIVATE: "private"}
_FREE_BUSY = {ShowAs.BUSY: "busy", ShowAs.FREE: "free"}


def _time(spec: EventSpec, local: Local, *, end: bool = False) -> dt.datetime | dt.date:
    """What the emulator's API takes: an aware datetime, or Feishu's inclusive all-day end date."""
    if isinstance(local, dt.datetime):
        return spec.instant(local)
    return local - dt.timedelta(days=1) if end else local


def _attendees(spec: EventSpec) -> list[dict[str, Any]]:
    out = []
    for g in spec.attendees:
        if g.response not in _RSVP:
            raise NotExpressible(f"feishu has no rsvp_status for {g.response.value!r}")
        out.append({
            "type": "third_party", "attendee_id": "at_" + hashlib.sha1(g.email.encode()).hexdigest()[:12],
            "third_party_email": g.email, "display_name": g.name, "rsvp_status": _RSVP[g.response],
            "is_optional": g.optional, "is_organizer": False, "is_external": True,
        })  # fmt: skip
    return out


def _fields(spec: EventSpec) -> dict[str, Any]:
    if spec.visibility not in _VISIBILITY:
        raise NotExpressible(f"feishu has no visibility {spec.visibility.value!r}")
    if spec.show_as not in _FREE_BUSY:
        raise NotExpressible(f"feishu has no free_busy_status {spec.show_as.value!r}")
    return {
        "summary": spec.title,
        "description": spec.description or "",
        "location": {"name": spec.location} if spec.location else None,
        "visibility": _VISIBILITY[spec.visibility],
        "free_busy_status": _FREE_BUSY[spec.show_as],
        "status": spec.status.value,
        "vchat": (
            {"vc_type": "third_party", "meeting_url": spec.meeting_url}
            if spec.meeting_url
            else {"vc_type": "no_meeting"}
        ),
        "event_organizer": {"user_id": "ou_conformance_organizer", "display_name": ORGANIZER.name},
    }


def _rule(spec: EventSpec) -> str:
    return spec.recurrence[0][len("RRULE:"):] if spec.rrule else ""


class FeishuScenario(ScenarioLoader):
    """A scenario loaded into its own calendar of a :class:`FeishuEmulator`."""

    def __init__(self, emu: FeishuEmulator, scenario: Scenario, calendar_id: str | None = None) -> None:
        super().__init__(scenario)
        self.emu: FeishuEmulator = emu
        self.calendar_id = calendar_id = calendar_id or f"feishu.cn_{scenario.name}@group.calendar.feishu.cn"
        if calendar_id not in emu.calendars:
            emu.add_calendar(calendar_id, summary=scenario.name)

    def create(self, spec: EventSpec) -> str:
        eid = self.emu.create_event(
            start=_time(spec, spec.start), end=_time(spec, spec.end, end=True), timezone=spec.zone or "UTC",
            recurrence=_rule(spec), attendees=_attendees(spec), calendar_id=self.calendar_id, **_fields(spec),
        )  # fmt: skip
        for m in spec.moved:
            self.move(eid, spec, m)
        for c in spec.cancelled:
            self.cancel(eid, spec, c)
        return eid

    def update(self, event_id: str, spec: EventSpec) -> None:
        self.emu.update_event(
            event_id, calendar=self.calendar_id, start=_time(spec, spec.start),
            end=_time(spec, spec.end), attendees=_attendees(spec), recurrence=_rule(spec), **_fields(spec),
        )  # fmt: skip

    def delete(self, event_id: str, spec: EventSpec) -> None:
        self.emu.delete_event(event_id, calendar=self.calendar_id)

    def cancel(self, event_id: str, spec: EventSpec, original: Local) -> None:
        self.emu.cancel_occurrence(event_id, _time(spec, original), calendar=self.calendar_id)

    def move(self, event_id: str, spec: EventSpec, moved: Moved) -> None:
        fields = {k: v for k, v in (("summary", moved.title), ("description", moved.description),
                                    ("location", {"name": moved.location} if moved.location else None))
                  if v is not None}  # fmt: skip
        self.emu.move_occurrence(
            event_id, _time(spec, moved.original), _time(spec, moved.start), _time(spec, moved.end),
            calendar=self.calendar_id, **fields,
        )  # fmt: skip

    def truncate(self, event_id: str, spec: EventSpec) -> None:
        self.emu.update_event(event_id, calendar=self.calendar_id, recurrence=_rule(spec))


def load(emu: FeishuEmulator, scenario: Scenario, calendar_id: str | None = None) -> FeishuScenario:
    """Create ``calendar_id`` (when missing) and write ``scenario``'s events into it."""
    loaded = FeishuScenario(emu, scenario, calendar_id)
    loaded.load()
    return loaded
