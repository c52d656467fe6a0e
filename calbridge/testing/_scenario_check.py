"""What the mirror must hold for a scenario (the oracle), what it does hold (normalized), and the
comparison between the two under named exemptions.

Rows are plain dicts of the exported form (``event_to_dict``) without what a provider assigns:
``id``, ``series_id``, ``etag``, ``html_link``, ``created``, ``updated``, ``ical_uid``,
``provider``, ``account``, ``calendar_id``, and the ``id`` of organizer and attendees. Each row is
keyed by its *identity*: the scenario key of a single or series, ``{series key}@{original start}``
for an exception or occurrence (the contract's (series, original start)). Attendees are compared
as a set (sorted by email, then name). A cancelled occurrence is compared on its slot only: kind,
series, original start, status, start, end and title (what every provider that reports one says).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeAlias

import attrs
from dateutil import rrule as du

from ..export import when_to_dict
from ..model import Attendee, Event, Kind, Person, Status, When, Window
from .scenario import ORGANIZER, EventSpec, Guest, Local, Moved, Organizer, State

Row: TypeAlias = dict[str, Any]
Snapshot: TypeAlias = dict[str, Row]

EXEMPT = "<exempt>"
CANCELLED_OCCURRENCES = "cancelled_occurrences"
"""The pseudo-field of an exemption that removes cancelled occurrences (rows) instead of masking a field."""

_SLOT_FIELDS = ("kind", "series", "original_start", "status", "title", "start", "end")


def slot_text(when: When) -> str:
    """An original start as identity text: the date, or the UTC instant."""
    d = when_to_dict(when)
    return str(d.get("date") or d["datetime"])


# -- normalizing what the mirror holds ------------------------------------------------------------


def _person(p: Person | None) -> dict[str, Any] | None:
    return None if p is None else {"email": p.email, "name": p.name}


def _attendee(a: Attendee) -> dict[str, Any]:
    return {
        "email": a.email, "name": a.name, "response": a.response.value, "optional": a.optional,
        "organizer": a.organizer, "resource": a.resource,
    }  # fmt: skip


def _sorted_attendees(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda a: (a.get("email") or "", a.get("name") or ""))


def _slot_only(row: Row) -> Row:
    return {k: row[k] for k in _SLOT_FIELDS}


def normalize_event(event: Event, refs: Mapping[str, str]) -> tuple[str, Row]:
    """(identity, row) of one stored event; ``refs`` maps provider ids of singles/series to keys."""
    series = None
    if event.kind in (Kind.SINGLE, Kind.SERIES):
        ident = refs.get(event.id, f"?{event.id}")
    else:
        series = refs.get(event.series_id or "", f"?{event.series_id}")
        ident = f"{series}@{slot_text(event.original_start)}" if event.original_start else f"{series}@?{event.id}"
    row: Row = {
        "kind": event.kind.value,
        "series": series,
        "original_start": None if event.original_start is None else when_to_dict(event.original_start),
        "status": event.status.value,
        "title": event.title,
        "description": event.description,
        "location": event.location,
        "start": when_to_dict(event.start),
        "end": when_to_dict(event.end),
        "recurrence": list(event.recurrence),
        "organizer": _person(event.organizer),
        "attendees": _sorted_attendees(_attendee(a) for a in event.attendees),
        "show_as": event.show_as.value,
        "visibility": event.visibility.value,
        "meeting_url": event.meeting_url,
    }
    if event.kind is Kind.EXCEPTION and event.status is Status.CANCELLED:
        row = _slot_only(row)
    return ident, row


def normalize(events: Iterable[Event], refs: Mapping[str, str]) -> Snapshot:
    """Rows by identity; a second row with the same identity is kept as ``ident#2`` (and so differs)."""
    out: Snapshot = {}
    for event in events:
        ident, row = normalize_event(event, refs)
        n = 1
        key = ident
        while key in out:
            n += 1
            key = f"{ident}#{n}"
        out[key] = row
    return out


# -- the oracle -----------------------------------------------------------------------------------


def _when(spec: EventSpec, local: Local) -> When:
    if isinstance(local, dt.datetime):
        return When.at(spec.instant(local), spec.zone)
    return When.on(local)


def _guest(g: Guest) -> dict[str, Any]:
    return {"email": g.email, "name": g.name, "response": g.response.value, "optional": g.optional,
            "organizer": False, "resource": False}  # fmt: skip


def _base(spec: EventSpec, organizer: Organizer) -> Row:
    return {
        "status": spec.status.value,
        "title": spec.title,
        "description": spec.description,
        "location": spec.location,
        "organizer": {"email": organizer.email, "name": organizer.name},
        "attendees": _sorted_attendees(_guest(g) for g in spec.attendees),
        "show_as": spec.show_as.value,
        "visibility": spec.visibility.value,
        "meeting_url": spec.meeting_url,
    }


def _row(spec: EventSpec, organizer: Organizer, **fields: Any) -> Row:
    row: Row = {"kind": None, "series": None, "original_start": None}
    row.update(_base(spec, organizer))
    row.update(start=None, end=None, recurrence=[])
    row.update(fields)
    order = ("kind", "series", "original_start", "status", "title", "description", "location", "start", "end",
             "recurrence", "organizer", "attendees", "show_as", "visibility", "meeting_url")  # fmt: skip
    return {k: row[k] for k in order}


def _master(spec: EventSpec, organizer: Organizer) -> Row:
    return _row(
        spec, organizer, kind="series" if spec.rrule else "single", start=when_to_dict(_when(spec, spec.start)),
        end=when_to_dict(_when(spec, spec.end)), recurrence=list(spec.recurrence),
    )  # fmt: skip


def _moved(spec: EventSpec, moved: Moved, organizer: Organizer) -> Row:
    row = _row(
        spec, organizer, kind="exception", series=spec.key,
        original_start=when_to_dict(_when(spec, moved.original)),
        start=when_to_dict(_when(spec, moved.start)), end=when_to_dict(_when(spec, moved.end)),
    )  # fmt: skip
    for name in ("title", "description", "location"):
        value = getattr(moved, name)
        if value is not None:
            row[name] = value
    return row


def _plus(local: Local, delta: dt.timedelta) -> Local:
    return local + delta


def _cancelled(spec: EventSpec, original: Local, organizer: Organizer) -> Row:
    slot = when_to_dict(_when(spec, original))
    return _slot_only(_row(
        spec, organizer, kind="exception", series=spec.key, original_start=slot, status=Status.CANCELLED.value,
        start=slot, end=when_to_dict(_end_of(spec, original)),
    ))  # fmt: skip


def _end_of(spec: EventSpec, original: Local) -> When:
    """The end of the occurrence at ``original``: same length in absolute time (timed) or days."""
    if isinstance(original, dt.datetime):
        instant = spec.instant(original).astimezone(dt.UTC) + (spec.instant(spec.end) - spec.instant(spec.start))
        return When.at(instant, spec.zone)
    return When.on(_plus(original, spec.duration))


def expected_series(state: State, organizer: Organizer = ORGANIZER) -> Snapshot:
    """The series view: singles, masters, moved and cancelled occurrences."""
    out: Snapshot = {}
    for spec in state.values():
        out[spec.key] = _master(spec, organizer)
        for m in spec.moved:
            out[f"{spec.key}@{slot_text(_when(spec, m.original))}"] = _moved(spec, m, organizer)
        for c in spec.cancelled:
            out[f"{spec.key}@{slot_text(_when(spec, c))}"] = _cancelled(spec, c, organizer)
    return out


def slots(spec: EventSpec, until: dt.datetime) -> Iterator[Local]:
    """The rule's local slot starts (moved and cancelled ones included) starting before ``until``."""
    assert spec.rrule is not None
    body = spec.recurrence[0][len("RRULE:") :]
    if isinstance(spec.start, dt.datetime):
        assert spec.tz is not None
        rule = du.rrulestr(body, dtstart=spec.start.replace(tzinfo=spec.tz))
        for occ in rule:
            if occ.astimezone(dt.UTC) >= until:
                return
            yield occ.replace(tzinfo=None)
    else:
        rule = du.rrulestr(body, dtstart=dt.datetime.combine(spec.start, dt.time()))
        for occ in rule:
            if occ.replace(tzinfo=dt.UTC) >= until:
                return
            yield occ.date()


def _overlaps(window: Window, row: Row) -> bool:
    def utc(d: Mapping[str, Any]) -> dt.datetime:
        if "date" in d:
            day = dt.date.fromisoformat(d["date"])
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        return dt.datetime.fromisoformat(str(d["datetime"]).replace("Z", "+00:00"))

    return window.overlaps(utc(row["start"]), utc(row["end"]))


def expected_instances(state: State, window: Window, organizer: Organizer = ORGANIZER) -> Snapshot:
    """The instance view over ``window`` (cancelled occurrences included)."""
    out: Snapshot = {}
    margin = dt.timedelta(days=60)
    for spec in state.values():
        if spec.rrule is None:
            row = _master(spec, organizer)
            if _overlaps(window, row):
                out[spec.key] = row
            continue
        moved = {m.original: m for m in spec.moved}
        cancelled = set(spec.cancelled)
        for slot in slots(spec, window.end + margin):
            ident = f"{spec.key}@{slot_text(_when(spec, slot))}"
            if slot in cancelled:
                row = _cancelled(spec, slot, organizer)
            elif slot in moved:
                row = _moved(spec, moved[slot], organizer)
            else:
                row = _row(
                    spec, organizer, kind="occurrence", series=spec.key,
                    original_start=when_to_dict(_when(spec, slot)), start=when_to_dict(_when(spec, slot)),
                    end=when_to_dict(_end_of(spec, slot)),
                )  # fmt: skip
            if _overlaps(window, row):
                out[ident] = row
    return out


# -- exemptions and comparison ----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Exemption:
    """A named, justified difference: ``provider`` cannot express ``field`` in ``scenario`` (``*``: any).

    ``field`` is a row field, a dotted path into one (``organizer.email``, ``attendees.email``), or
    :data:`CANCELLED_OCCURRENCES` (those rows are left out on both sides).
    """

    name: str
    scenario: str
    provider: str
    field: str
    reason: str

    def applies(self, scenario: str, provider: str) -> bool:
        return self.provider == provider and self.scenario in ("*", scenario)


def _mask(value: Any, path: Sequence[str]) -> Any:
    if isinstance(value, list):
        return [_mask(v, path) for v in value]
    if not path or not isinstance(value, dict) or path[0] not in value:
        return value
    if len(path) == 1:
        value[path[0]] = EXEMPT
    else:
        value[path[0]] = _mask(value[path[0]], path[1:])
    return value


def exempted(rows: Snapshot, fields: Iterable[str]) -> Snapshot:
    """A copy of ``rows`` with each exempt field masked (and cancelled occurrences dropped when exempt)."""
    out = copy.deepcopy(rows)
    for f in fields:
        if f == CANCELLED_OCCURRENCES:
            out = {k: r for k, r in out.items() if not (r["kind"] == "exception" and r["status"] == "cancelled")}
            continue
        for row in out.values():
            _mask(row, f.split("."))
    return out


def diff(expected: Snapshot, actual: Snapshot, *, limit: int = 30) -> list[str]:
    """Human-readable differences, identity by identity and field by field."""
    out: list[str] = []
    for ident in sorted(set(expected) | set(actual)):
        if ident not in actual:
            out.append(f"missing {ident}: {_short(expected[ident])}")
        elif ident not in expected:
            out.append(f"unexpected {ident}: {_short(actual[ident])}")
        else:
            e, a = expected[ident], actual[ident]
            for name in sorted(set(e) | set(a)):
                if e.get(name) != a.get(name):
                    out.append(f"{ident}.{name}: expected {_clip(e.get(name))}, got {_clip(a.get(name))}")
    if len(out) > limit:
        out = [*out[:limit], f"... and {len(out) - limit} more"]
    return out


def _clip(value: Any, n: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


def _short(row: Row) -> str:
    return _clip({k: row.get(k) for k in ("kind", "status", "title", "start")})


@attrs.frozen(kw_only=True)
class Verdict:
    """One comparison: equal as is, equal only thanks to ``used`` exemptions, or ``problems``."""

    problems: tuple[str, ...]
    used: tuple[str, ...]  # names of the exemptions that made a difference

    @property
    def ok(self) -> bool:
        return not self.problems


def judge(expected: Snapshot, actual: Snapshot, exemptions: Sequence[Exemption]) -> Verdict:
    """Compare under ``exemptions``; an exemption counts as used only when the plain comparison
    differs in what it covers."""
    fields = [x.field for x in exemptions]
    problems = diff(exempted(expected, fields), exempted(actual, fields))
    if diff(expected, actual) == []:
        return Verdict(problems=tuple(problems), used=())
    used = []
    for x in exemptions:
        others = [f for f in fields if f != x.field]
        if diff(exempted(expected, others), exempted(actual, others)):
            used.append(x.name)
    return Verdict(problems=tuple(problems), used=tuple(used))


__all__ = [
    "CANCELLED_OCCURRENCES",
    "EXEMPT",
    "Exemption",
    "Row",
    "Snapshot",
    "Verdict",
    "diff",
    "exempted",
    "expected_instances",
    "expected_series",
    "judge",
    "normalize",
    "normalize_event",
    "slot_text",
    "slots",
]
