"""The exported JSON form of an :class:`Event` (``event.schema.json``), and back.

Every property is present; instants are ``YYYY-MM-DDTHH:MM:SSZ``. The same form is what the
SQLite store keeps, so a stored event reads back exactly as it was exported.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import json
from collections.abc import Mapping
from typing import Any

import msgspec

from .model import Attendee, Event, Kind, Person, Response, ShowAs, Status, Visibility, When

UTC = dt.UTC


def format_instant(value: dt.datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (isoformat slicing: strftime costs 2 µs a call on a hot path)."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="seconds")[:19] + "Z"


def parse_instant(text: str) -> dt.datetime:
    """RFC 3339 with ``Z`` or an offset (fractions dropped) → aware UTC."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"instant without offset: {text!r}")
    return value.astimezone(UTC).replace(microsecond=0)


def when_to_dict(w: When) -> dict[str, Any]:
    if w.date is not None:
        return {"date": w.date.isoformat()}
    assert w.instant is not None
    return {"datetime": format_instant(w.instant), "timezone": w.timezone}


def when_from_dict(d: Mapping[str, Any]) -> When:
    if "date" in d:
        return When(date=dt.date.fromisoformat(d["date"]))
    return When(instant=parse_instant(d["datetime"]), timezone=d.get("timezone"))


def _person(p: Person | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"email": p.email, "name": p.name, "id": p.id}


def _attendee(a: Attendee) -> dict[str, Any]:
    return {
        "email": a.email,
        "name": a.name,
        "id": a.id,
        "response": a.response.value,
        "optional": a.optional,
        "organizer": a.organizer,
        "resource": a.resource,
        "self": a.is_self,
    }


def event_to_dict(e: Event) -> dict[str, Any]:
    """The schema's JSON object for ``e``, keys in schema order."""
    return {
        "provider": e.provider,
        "account": e.account,
        "calendar_id": e.calendar_id,
        "id": e.id,
        "kind": e.kind.value,
        "series_id": e.series_id,
        "original_start": None if e.original_start is None else when_to_dict(e.original_start),
        "status": e.status.value,
        "title": e.title,
        "description": e.description,
        "location": e.location,
        "start": when_to_dict(e.start),
        "end": when_to_dict(e.end),
        "recurrence": list(e.recurrence),
        "organizer": _person(e.organizer),
        "attendees": [_attendee(a) for a in e.attendees],
        "show_as": e.show_as.value,
        "visibility": e.visibility.value,
        "meeting_url": e.meeting_url,
        "html_link": e.html_link,
        "created": None if e.created is None else format_instant(e.created),
        "updated": None if e.updated is None else format_instant(e.updated),
        "etag": e.etag,
        "ical_uid": e.ical_uid,
        "attendees_omitted": e.attendees_omitted,
    }


def event_from_dict(d: Mapping[str, Any]) -> Event:
    """Inverse of :func:`event_to_dict`."""
    org = d.get("organizer")
    return Event(
        provider=d["provider"],
        account=d["account"],
        calendar_id=d["calendar_id"],
        id=d["id"],
        kind=Kind(d["kind"]),
        series_id=d.get("series_id"),
        original_start=None if d.get("original_start") is None else when_from_dict(d["original_start"]),
        status=Status(d["status"]),
        title=d.get("title"),
        description=d.get("description"),
        location=d.get("location"),
        start=when_from_dict(d["start"]),
        end=when_from_dict(d["end"]),
        recurrence=tuple(d.get("recurrence") or ()),
        organizer=None if org is None else Person(email=org.get("email"), name=org.get("name"), id=org.get("id")),
        attendees=tuple(
            Attendee(
                email=a.get("email"),
                name=a.get("name"),
                id=a.get("id"),
                response=Response(a.get("response", "none")),
                optional=bool(a.get("optional", False)),
                organizer=bool(a.get("organizer", False)),
                resource=bool(a.get("resource", False)),
                is_self=bool(a.get("self", False)),  # rows stored before the key existed lack it
            )
            for a in d.get("attendees") or ()
        ),
        attendees_omitted=bool(d.get("attendees_omitted", False)),
        show_as=ShowAs(d.get("show_as", "unknown")),
        visibility=Visibility(d.get("visibility", "default")),
        meeting_url=d.get("meeting_url"),
        html_link=d.get("html_link"),
        created=None if d.get("created") is None else parse_instant(d["created"]),
        updated=None if d.get("updated") is None else parse_instant(d["updated"]),
        etag=d.get("etag"),
        ical_uid=d.get("ical_uid"),
    )


# The same JSON as event_to_dict's, without building it: msgspec encodes structs in field order
# (written in schema order here), datetimes as ``...Z`` (model instants are UTC to the second, so
# exactly format_instant's form), dates as ISO and the str enums as their values; no isoformat,
# ``.value`` or dict per event. ``tests/test_export_encoding.py`` pins it byte for byte to the dict.
class _Date(msgspec.Struct):
    date: dt.date


class _Instant(msgspec.Struct):
    datetime: dt.datetime
    timezone: str | None


class _Person(msgspec.Struct):
    email: str | None
    name: str | None
    id: str | None


class _Attendee(msgspec.Struct, rename={"is_self": "self"}):
    email: str | None
    name: str | None
    id: str | None
    response: str
    optional: bool
    organizer: bool
    resource: bool
    is_self: bool


class _Event(msgspec.Struct):
    provider: str
    account: str
    calendar_id: str
    id: str
    kind: str
    series_id: str | None
    original_start: _Date | _Instant | None
    status: str
    title: str | None
    description: str | None
    location: str | None
    start: _Date | _Instant
    end: _Date | _Instant
    recurrence: tuple[str, ...]
    organizer: _Person | None
    attendees: list[_Attendee]
    show_as: str
    visibility: str
    meeting_url: str | None
    html_link: str | None
    created: dt.datetime | None
    updated: dt.datetime | None
    etag: str | None
    ical_uid: str | None
    attendees_omitted: bool


def _when(w: When) -> _Date | _Instant:
    return _Date(w.date) if w.date is not None else _Instant(w.instant, w.timezone)  # type: ignore[arg-type]


_encode = msgspec.json.Encoder().encode


def event_to_json_bytes(e: Event) -> bytes:
    """:func:`event_to_json` as UTF-8 bytes (what the store hashes)."""
    o, p = e.original_start, e.organizer
    return _encode(
        _Event(
            e.provider, e.account, e.calendar_id, e.id, e.kind, e.series_id, None if o is None else _when(o),
            e.status, e.title, e.description, e.location, _when(e.start), _when(e.end), e.recurrence,
            None if p is None else _Person(p.email, p.name, p.id),
            [_Attendee(a.email, a.name, a.id, a.response, a.optional, a.organizer, a.resource, a.is_self)
             for a in e.attendees],
            e.show_as, e.visibility, e.meeting_url, e.html_link, e.created, e.updated, e.etag, e.ical_uid,
            e.attendees_omitted,
        )
    )  # fmt: skip


def event_to_json(e: Event) -> str:
    """Compact UTF-8 JSON of :func:`event_to_dict`, keys in schema order, without building the dict."""
    return event_to_json_bytes(e).decode()


@functools.cache
def event_schema() -> dict[str, Any]:
    """The shipped ``event.schema.json`` (JSON Schema 2020-12)."""
    text = importlib.resources.files("calbridge").joinpath("schema", "event.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
