"""Provider-neutral conformance scenarios: one logical calendar, described once.

A :class:`Scenario` holds the events a calendar starts with (:class:`EventSpec`: singles and series,
their moved and cancelled occurrences, attendees...) and scripted server-side changes in ``steps``
(each step a tuple of :data:`ScriptedChange`, followed by an incremental sync). Times are *local*:
naive datetimes in the event's IANA ``zone``, or dates for all-day events (``end`` exclusive).
Recurrence is one RFC 5545 ``RRULE:`` line; :attr:`EventSpec.recurrence` gives its canonical form
(a date ``UNTIL`` on a timed series means "through that day" in the series zone, the only UNTIL
every provider can express).

Each emulator ships a loader (``calbridge_providers.<p>.emulator._scenario.load``) that writes a
scenario into the emulator in that provider's native form and returns a :class:`LoadedCalendar`
that applies the scripted changes. :mod:`calbridge.testing._scenario_check` computes what the
mirror must hold (the oracle), normalizes what it does hold and compares the two.
:mod:`calbridge.testing._scenario_catalog` is the built-in catalog (:data:`SCENARIOS`).

::

    state = scenario.initial_state()
    for step in scenario.steps:
        for change in step:
            state = apply_change(state, change)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TypeAlias
from zoneinfo import ZoneInfo

import attrs

from ..model import Response, ShowAs, Status, Visibility
from ..recurrence import canonical_rrule
from ..zones import canonical_zone

Local: TypeAlias = dt.datetime | dt.date
"""A naive local datetime (in the event's zone) or a date (all-day)."""


class NotExpressible(ValueError):
    """A loader cannot write this part of a scenario in its provider's native form."""


def _is_date(value: Local) -> bool:
    return not isinstance(value, dt.datetime)


@attrs.frozen(kw_only=True)
class Organizer:
    email: str
    name: str


ORGANIZER = Organizer(email="organizer@conformance.example", name="Olga Organizer")
"""The organizer of every scenario event (Graph: the mailbox the account reads)."""


@attrs.frozen(kw_only=True)
class Guest:
    """An attendee, identified by email."""

    email: str
    name: str
    response: Response = Response.NEEDS_ACTION
    optional: bool = False


@attrs.frozen(kw_only=True)
class Moved:
    """One occurrence moved and/or edited: ``original`` is its unmodified local start."""

    original: Local
    start: Local
    end: Local
    title: str | None = None  # None: the series' value
    description: str | None = None
    location: str | None = None


def _guests(value: Iterable[Guest]) -> tuple[Guest, ...]:
    return tuple(value)


def _moved(value: Iterable[Moved]) -> tuple[Moved, ...]:
    return tuple(value)


def _locals(value: Iterable[Local]) -> tuple[Local, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class EventSpec:
    """A single or a series, with its exceptions; ``key`` names it across providers."""

    key: str
    title: str
    start: Local
    end: Local
    zone: str | None = None  # IANA; required for timed events, None for all-day
    rrule: str | None = None
    description: str | None = None
    location: str | None = None
    attendees: tuple[Guest, ...] = attrs.field(default=(), converter=_guests)
    show_as: ShowAs = ShowAs.BUSY
    visibility: Visibility = Visibility.DEFAULT
    status: Status = Status.CONFIRMED
    meeting_url: str | None = None
    moved: tuple[Moved, ...] = attrs.field(default=(), converter=_moved)
    cancelled: tuple[Local, ...] = attrs.field(default=(), converter=_locals)

    def __attrs_post_init__(self) -> None:
        if _is_date(self.start) != _is_date(self.end):
            raise ValueError(f"{self.key}: start and end mix all-day and timed")
        if self.all_day and self.zone is not None:
            raise ValueError(f"{self.key}: an all-day event has no zone")
        if not self.all_day and not self.zone:
            raise ValueError(f"{self.key}: a timed event needs an IANA zone")
        if self.zone is not None and canonical_zone(self.zone) != self.zone:
            raise ValueError(f"{self.key}: zone {self.zone!r} is not a canonical IANA name")
        if self.end < self.start:
            raise ValueError(f"{self.key}: ends before it starts")
        if self.rrule is None and (self.moved or self.cancelled):
            raise ValueError(f"{self.key}: only a series has moved or cancelled occurrences")
        for when in (*self.cancelled, *(m.original for m in self.moved)):
            if _is_date(when) != self.all_day:
                raise ValueError(f"{self.key}: occurrence {when} does not match the series' kind")

    @property
    def all_day(self) -> bool:
        return _is_date(self.start)

    @property
    def tz(self) -> ZoneInfo | None:
        return None if self.zone is None else ZoneInfo(self.zone)

    @property
    def recurrence(self) -> tuple[str, ...]:
        """The canonical recurrence lines (empty for a single)."""
        if self.rrule is None:
            return ()
        return (canonical_rrule(self.rrule, all_day=self.all_day, tz=self.tz),)

    @property
    def duration(self) -> dt.timedelta:
        return self.end - self.start

    def instant(self, local: Local) -> dt.datetime:
        """The aware instant of a local time of this event (an all-day date: its midnight UTC)."""
        if isinstance(local, dt.datetime):
            assert self.tz is not None
            return local.replace(tzinfo=self.tz)
        return dt.datetime(local.year, local.month, local.day, tzinfo=dt.UTC)


# -- scripted server-side changes -------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Create:
    event: EventSpec


@attrs.frozen(kw_only=True)
class Update:
    """Change fields of a single or a whole series (None: unchanged)."""

    key: str
    title: str | None = None
    description: str | None = None
    location: str | None = None
    start: Local | None = None
    end: Local | None = None
    attendees: tuple[Guest, ...] | None = None
    show_as: ShowAs | None = None
    visibility: Visibility | None = None
    meeting_url: str | None = None


@attrs.frozen(kw_only=True)
class Delete:
    key: str


@attrs.frozen(kw_only=True)
class CancelOccurrence:
    key: str
    original: Local


@attrs.frozen(kw_only=True)
class MoveOccurrence:
    key: str
    moved: Moved


@attrs.frozen(kw_only=True)
class Split:
    """Edit "this and following": the series ``key`` ends on ``last_day`` (its UNTIL becomes that day,
    through 23:59:59 in the series zone) and ``follow`` is the new series that carries on."""

    key: str
    last_day: dt.date
    follow: EventSpec


ScriptedChange: TypeAlias = Create | Update | Delete | CancelOccurrence | MoveOccurrence | Split
State: TypeAlias = Mapping[str, EventSpec]


def _events(value: Iterable[EventSpec]) -> tuple[EventSpec, ...]:
    return tuple(value)


def _steps(value: Iterable[Iterable[ScriptedChange]]) -> tuple[tuple[ScriptedChange, ...], ...]:
    return tuple(tuple(step) for step in value)


@attrs.frozen(kw_only=True)
class Scenario:
    name: str
    events: tuple[EventSpec, ...] = attrs.field(converter=_events)
    steps: tuple[tuple[ScriptedChange, ...], ...] = attrs.field(default=(), converter=_steps)
    about: str = ""

    def __attrs_post_init__(self) -> None:
        keys = [e.key for e in self.events]
        if len(keys) != len(set(keys)):
            raise ValueError(f"scenario {self.name}: duplicate event keys")

    def initial_state(self) -> dict[str, EventSpec]:
        return {e.key: e for e in self.events}

    def states(self) -> list[dict[str, EventSpec]]:
        """The logical calendar after loading and after each step."""
        state = self.initial_state()
        out = [dict(state)]
        for step in self.steps:
            for change in step:
                state = apply_change(state, change)
            out.append(dict(state))
        return out


def truncated_rrule(spec: EventSpec, last_day: dt.date) -> str:
    """The series' RRULE ending through ``last_day`` (COUNT/UNTIL replaced)."""
    assert spec.rrule is not None
    body = spec.rrule[6:] if spec.rrule.upper().startswith("RRULE:") else spec.rrule
    parts = [p for p in body.split(";") if p and p.split("=", 1)[0].upper() not in ("COUNT", "UNTIL")]
    parts.append(f"UNTIL={last_day:%Y%m%d}")
    return "RRULE:" + ";".join(parts)


def apply_change(state: State, change: ScriptedChange) -> dict[str, EventSpec]:
    """The logical calendar after one scripted change (pure)."""
    out = dict(state)
    if isinstance(change, Create):
        if change.event.key in out:
            raise ValueError(f"{change.event.key} exists already")
        out[change.event.key] = change.event
    elif isinstance(change, Delete):
        del out[change.key]
    elif isinstance(change, Update):
        fields = {k: v for k, v in attrs.asdict(change, recurse=False).items() if k != "key" and v is not None}
        out[change.key] = attrs.evolve(out[change.key], **fields)
    elif isinstance(change, CancelOccurrence):
        spec = out[change.key]
        moved = tuple(m for m in spec.moved if m.original != change.original)
        out[change.key] = attrs.evolve(spec, moved=moved, cancelled=(*spec.cancelled, change.original))
    elif isinstance(change, MoveOccurrence):
        spec = out[change.key]
        moved = tuple(m for m in spec.moved if m.original != change.moved.original)
        out[change.key] = attrs.evolve(spec, moved=(*moved, change.moved))
    elif isinstance(change, Split):
        spec = out[change.key]
        out[change.key] = attrs.evolve(spec, rrule=truncated_rrule(spec, change.last_day))
        if change.follow.key in out:
            raise ValueError(f"{change.follow.key} exists already")
        out[change.follow.key] = change.follow
    else:  # pragma: no cover - exhaustive
        raise TypeError(f"unknown scripted change {change!r}")
    return out


class LoadedCalendar(Protocol):
    """A scenario written into an emulator: its calendar, the provider ids of its events, and the
    way to apply scripted changes there."""

    calendar_id: str
    """What the account config lists under ``calendars``."""

    ids: Mapping[str, str]
    """Scenario event key → the provider's id of that single or series master."""

    def apply(self, change: ScriptedChange) -> None: ...

    def account_config(self, *, name: str, base_url: str, ca_file: str | None) -> dict[str, Any]: ...


class ScenarioLoader:
    """Base for the emulators' loaders: keeps the logical state and the id map, and turns each
    scripted change into one of the hooks a loader implements in its provider's native form."""

    calendar_id: str
    emu: Any  # the emulator the loader writes into (it has ``account_config``)

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.state: dict[str, EventSpec] = {}
        self.ids: dict[str, str] = {}
        self.lossy: set[str] = set()  # fields the provider could not be given (need an exemption)

    def load(self) -> None:
        """Write the scenario's initial events."""
        for spec in self.scenario.events:
            self.apply(Create(event=spec))

    def apply(self, change: ScriptedChange) -> None:
        new = apply_change(self.state, change)
        if isinstance(change, Create):
            self.ids[change.event.key] = self.create(change.event)
        elif isinstance(change, Delete):
            self.delete(self.ids[change.key], self.state[change.key])
        elif isinstance(change, Update):
            self.update(self.ids[change.key], new[change.key])
        elif isinstance(change, CancelOccurrence):
            self.cancel(self.ids[change.key], new[change.key], change.original)
        elif isinstance(change, MoveOccurrence):
            self.move(self.ids[change.key], new[change.key], change.moved)
        elif isinstance(change, Split):
            self.truncate(self.ids[change.key], new[change.key])
            self.ids[change.follow.key] = self.create(change.follow)
        self.state = new

    def account_config(self, *, name: str, base_url: str, ca_file: str | None) -> dict[str, Any]:
        """The emulator's account entry, reading this scenario's calendar."""
        entry: dict[str, Any] = self.emu.account_config(name=name, base_url=base_url, ca_file=ca_file)
        entry["calendars"] = [self.calendar_id]
        return entry

    # -- hooks ------------------------------------------------------------------------------

    def create(self, spec: EventSpec) -> str:
        """Create ``spec`` with its moved and cancelled occurrences; return the provider's id."""
        raise NotImplementedError

    def update(self, event_id: str, spec: EventSpec) -> None:
        """Rewrite the single or master ``event_id`` to ``spec`` (exceptions untouched)."""
        raise NotImplementedError

    def delete(self, event_id: str, spec: EventSpec) -> None:
        raise NotImplementedError

    def cancel(self, event_id: str, spec: EventSpec, original: Local) -> None:
        raise NotImplementedError

    def move(self, event_id: str, spec: EventSpec, moved: Moved) -> None:
        raise NotImplementedError

    def truncate(self, event_id: str, spec: EventSpec) -> None:
        """Give the series ``event_id`` the recurrence of ``spec`` (which now ends earlier)."""
        raise NotImplementedError


__all__ = [
    "ORGANIZER",
    "CancelOccurrence",
    "Create",
    "Delete",
    "EventSpec",
    "Guest",
    "LoadedCalendar",
    "Local",
    "MoveOccurrence",
    "Moved",
    "NotExpressible",
    "Organizer",
    "Scenario",
    "ScenarioLoader",
    "ScriptedChange",
    "Split",
    "State",
    "Update",
    "apply_change",
    "truncated_rrule",
]
