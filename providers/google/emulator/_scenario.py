"""Write a provider-neutral scenario (:mod:`calbridge.testing.scenario`) into the Google emulator:
events with ``recurrence`` lines, exceptions ``{series}_{slot}`` with ``originalStartTime``, cancelled
occurrences as cancelled stubs, guests with ``responseStatus``, ``transparency``, conference data."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from calbridge.model import Response, ShowAs, Visibility
from calbridge.testing.scenario import ORGANIZER, EventSpec, Local, Moved, NotExpressible, Scenario, ScenarioLoader

if TYPE_CHECKING:
    from . import GoogleEmulator

_RESPONSES = {
    Response.ACCEPTED: "accepted", Response.DECLINED: "declined", Response.TENTATIVE: "tentative",
    Response.NEEDS_ACTION: "needsAction",
}  # fmt: skip
_VISIBILITY = {
    Visibility.DEFAULT: "default", Visibility.PUBLIC: "public", Visibility.PRIVATE: "private",
    Visibility.CONFIDENTIAL: "confidential",
}  # fmt: skip


def when(spec: EventSpec, local: Local) -> dict[str, Any]:
    """Google's EventDateTime for a local time of ``spec``."""
    if isinstance(local, dt.datetime):
        return {"dateTime": spec.instant(local).isoformat(timespec="seconds"), "timeZone": spec.zone}
    return {"date": local.isoformat()}


def payload(spec: EventSpec) -> dict[str, Any]:
    """The events resource of a single or series master (no server fields)."""
    if spec.show_as not in (ShowAs.BUSY, ShowAs.FREE):
        raise NotExpressible(f"google has no show_as {spec.show_as.value!r}")
    out: dict[str, Any] = {
        "summary": spec.title,
        "start": when(spec, spec.start),
        "end": when(spec, spec.end),
        "status": spec.status.value,
        "organizer": {"email": ORGANIZER.email, "displayName": ORGANIZER.name, "self": True},
        "transparency": "transparent" if spec.show_as is ShowAs.FREE else "opaque",
        "visibility": _VISIBILITY[spec.visibility],
        "recurrence": list(spec.recurrence),
        "attendees": [],
    }
    if spec.description is not None:
        out["description"] = spec.description
    if spec.location is not None:
        out["location"] = spec.location
    for g in spec.attendees:
        if g.response not in _RESPONSES:
            raise NotExpressible(f"google has no attendee response {g.response.value!r}")
        out["attendees"].append(
            {"email": g.email, "displayName": g.name, "responseStatus": _RESPONSES[g.response], "optional": g.optional}
        )
    if spec.meeting_url is not None:
        out["conferenceData"] = {"entryPoints": [{"entryPointType": "video", "uri": spec.meeting_url}]}
    return out


class GoogleScenario(ScenarioLoader):
    """A scenario loaded into one calendar of a :class:`GoogleEmulator`."""

    def __init__(self, emu: GoogleEmulator, scenario: Scenario, calendar_id: str | None = None) -> None:
        super().__init__(scenario)
        self.emu: GoogleEmulator = emu
        self.calendar_id = calendar_id = calendar_id or f"{scenario.name}@conformance.example"
        if emu.state.calendar(calendar_id) is None:
            emu.state.add_calendar(calendar_id, summary=scenario.name, time_zone="UTC")

    def _fields(self, moved: Moved, spec: EventSpec) -> dict[str, Any]:
        fields: dict[str, Any] = {"start": when(spec, moved.start), "end": when(spec, moved.end)}
        for name, key in (("title", "summary"), ("description", "description"), ("location", "location")):
            value = getattr(moved, name)
            if value is not None:
                fields[key] = value
        return fields

    def create(self, spec: EventSpec) -> str:
        state = self.emu.state
        event = state.put_event(self.calendar_id, {"id": state.new_id(), **payload(spec)})
        eid = str(event["id"])
        for m in spec.moved:
            self.move(eid, spec, m)
        for c in spec.cancelled:
            self.cancel(eid, spec, c)
        return eid

    def update(self, event_id: str, spec: EventSpec) -> None:
        self.emu.state.update_event(self.calendar_id, event_id, **payload(spec))

    def delete(self, event_id: str, spec: EventSpec) -> None:
        self.emu.state.delete_event(self.calendar_id, event_id)

    def cancel(self, event_id: str, spec: EventSpec, original: Local) -> None:
        self.emu.state.cancel_occurrence(self.calendar_id, event_id, when(spec, original))

    def move(self, event_id: str, spec: EventSpec, moved: Moved) -> None:
        self.emu.state.move_occurrence(self.calendar_id, event_id, when(spec, moved.original),
                                       **self._fields(moved, spec))  # fmt: skip

    def truncate(self, event_id: str, spec: EventSpec) -> None:
        self.emu.state.update_event(self.calendar_id, event_id, recurrence=list(spec.recurrence))


def load(emu: GoogleEmulator, scenario: Scenario, calendar_id: str | None = None) -> GoogleScenario:
    """Create ``calendar_id`` (when missing) and write ``scenario``'s events into it."""
    loaded = GoogleScenario(emu, scenario, calendar_id)
    loaded.load()
    return loaded

