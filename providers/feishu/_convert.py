"""Feishu event payloads → calbridge events (pure functions, no I/O).

- ``timestamp``: Unix seconds as a string; a non-empty ``date`` means all-day, and Feishu's
  all-day ``end_time.date`` is inclusive, so one day is added (calbridge's end is exclusive).
- ids: singles and series masters are ``{uid}_0``, exceptions and occurrences
  ``{uid}_{original start seconds}``. ``recurring_event_id`` comes with and without ``_0``
  (apis.md 1.B.1), so series ids are rebuilt from the uid part as ``{uid}_0``.
- ``status: cancelled`` on a single or master is a deletion; on an exception it is a cancelled
  occurrence, kept as a cancelled exception.
- ``recurrence`` is a bare RRULE (no ``RRULE:`` prefix) → canonical lines.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any

from calbridge.errors import MalformedEvent
from calbridge.model import (
    Attendee,
    Delete,
    Event,
    EventKey,
    Kind,
    Person,
    Response,
    ShowAs,
    Status,
    Upsert,
    Visibility,
    When,
)
from calbridge.recurrence import canonical_recurrence
from calbridge.zones import canonical_zone, zone

PROVIDER = "feishu"
UTC = dt.UTC
ONE_DAY = dt.timedelta(days=1)

_RSVP = {
    "accept": Response.ACCEPTED,
    "decline": Response.DECLINED,
    "tentative": Response.TENTATIVE,
    "needs_action": Response.NEEDS_ACTION,
}
_STATUS = {"confirmed": Status.CONFIRMED, "tentative": Status.TENTATIVE, "cancelled": Status.CANCELLED}
_SHOW_AS = {"busy": ShowAs.BUSY, "free": ShowAs.FREE}
_VISIBILITY = {"default": Visibility.DEFAULT, "public": Visibility.PUBLIC, "private": Visibility.PRIVATE}


def uid_of(event_id: str) -> str:
    """The uid part of ``{uid}_{suffix}`` (the id itself when it has no suffix)."""
    head, sep, tail = event_id.rpartition("_")
    return head if sep and tail.isdigit() else event_id


def series_id_of(event_id: str) -> str:
    """The master's id ``{uid}_0`` for any id of the series (bare uid or ``{uid}_...``)."""
    return uid_of(event_id) + "_0"


def original_seconds(event_id: str) -> int | None:
    """The original start encoded in an exception or occurrence id (None for ``_0`` or no suffix)."""
    _, sep, tail = event_id.rpartition("_")
    if not sep or not tail.isdigit() or tail == "0":
        return None
    return int(tail)


@functools.lru_cache(maxsize=1024)
def _zone_name(name: str | None) -> str | None:
    return canonical_zone(name) if name else None


@functools.lru_cache(maxsize=4096)
def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


@functools.lru_cache(maxsize=2048)
def _recurrence(rule: str, all_day: bool, tz: str | None) -> tuple[str, ...]:
    return canonical_recurrence([rule], all_day=all_day, tz=zone(tz) if tz else None)


def _instant(seconds: str | int) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(seconds), UTC)


def _when(info: Any, end: bool, eid: str) -> When:
    if not isinstance(info, dict):
        raise MalformedEvent(f"event {eid}: {'end_time' if end else 'start_time'} missing", event_id=eid)
    day = info.get("date")
    try:
        if day:
            d = _date(day)
            return When(date=d + ONE_DAY if end else d)
        stamp = info.get("timestamp")
        if not stamp:
            raise ValueError("no timestamp")
        return When(instant=dt.datetime.fromtimestamp(int(stamp), UTC), timezone=_zone_name(info.get("timezone")))
    except (ValueError, TypeError, OverflowError) as exc:
        raise MalformedEvent(f"event {eid}: bad {'end_time' if end else 'start_time'}: {exc}", event_id=eid) from None


def _original(seconds: int, start: When) -> When:
    """The slot an exception or occurrence replaces, in the series' form (date or zoned instant)."""
    instant = _instant(seconds)
    if start.date is not None:
        return When(date=instant.date())
    return When(instant=instant, timezone=start.timezone)


@functools.lru_cache(maxsize=1024)
def _person(user_id: str | None, name: str | None) -> Person:
    """Organizers repeat across a calendar; the frozen value is shared."""
    return Person(id=user_id, name=name)


def _location(loc: Any) -> str | None:
    if not isinstance(loc, dict):
        return None
    name = loc.get("name") or ""
    address = loc.get("address") or ""
    if name and address and address not in name:
        return f"{name}, {address}"
    return name or address or None


def attendees_from(items: Any) -> tuple[Attendee, ...]:
    """Attendees from an event's ``attendees`` or the attendee list API; removed ones are dropped."""
    if not isinstance(items, list):
        return ()
    out = []
    for a in items:
        if not isinstance(a, dict):
            continue
        rsvp = a.get("rsvp_status")
        if rsvp == "removed":
            continue
        kind = a.get("type")
        if kind == "resource":
            ident = a.get("room_id") or a.get("attendee_id")
        elif kind == "chat":
            ident = a.get("chat_id") or a.get("attendee_id")
        else:
            ident = a.get("user_id") or a.get("attendee_id")
        out.append(
            Attendee(
                email=a.get("third_party_email") or None,
                name=a.get("display_name") or None,
                id=ident or None,
                response=_RSVP.get(rsvp or "", Response.NONE),
                optional=bool(a.get("is_optional")),
                organizer=bool(a.get("is_organizer")),
                resource=kind == "resource",
            )
        )
    return tuple(out)


def event_from(item: Mapping[str, Any], *, account: str, calendar_id: str, occurrence: bool = False) -> Event:
    """One list, get, instances or instance_view item as an :class:`Event`.

    With ``occurrence`` every item of a series becomes ``kind: occurrence`` (expansion results).

    Raises:
        MalformedEvent: the payload cannot be normalized.
    """
    eid = item.get("event_id")
    if not isinstance(eid, str) or not eid:
        raise MalformedEvent("event without an event_id", event_id=None)
    start = _when(item.get("start_time"), False, eid)
    end = _when(item.get("end_time"), True, eid)
    if (start.date is None) != (end.date is None):
        raise MalformedEvent(f"event {eid}: start and end mix all-day and timed", event_id=eid)
    orig = original_seconds(eid)
    recurring = item.get("recurring_event_id")
    series_id: str | None = None
    original: When | None = None
    rule = item.get("recurrence")
    recurrence: tuple[str, ...] = ()
    if orig is not None:
        series_id = series_id_of(recurring or eid)
        original = _original(orig, start)
        kind = Kind.OCCURRENCE if occurrence else Kind.EXCEPTION
    elif item.get("is_exception"):
        raise MalformedEvent(f"event {eid}: exception id carries no original start", event_id=eid)
    elif rule:
        try:
            recurrence = _recurrence(rule, start.date is not None, start.timezone)
        except MalformedEvent as exc:
            raise MalformedEvent(f"event {eid}: {exc}", event_id=eid) from None
        kind = Kind.SERIES
    else:
        kind = Kind.SINGLE
    get = item.get
    org = get("event_organizer")
    organizer = None
    if isinstance(org, dict) and (org.get("user_id") or org.get("display_name")):
        organizer = _person(org.get("user_id") or None, org.get("display_name") or None)
    vchat = get("vchat")
    meeting = vchat.get("meeting_url") or None if isinstance(vchat, dict) else None
    created = get("create_time")
    attendees = get("attendees")
    try:
        return Event(
            provider=PROVIDER,
            account=account,
            calendar_id=calendar_id,
            id=eid,
            kind=kind,
            start=start,
            end=end,
            status=_STATUS.get(get("status") or "confirmed", Status.CONFIRMED),
            series_id=series_id,
            original_start=original,
            title=get("summary") or None,
            description=get("description") or None,
            location=_location(get("location")),
            recurrence=recurrence,
            organizer=organizer,
            attendees=attendees_from(attendees) if attendees else (),
            show_as=_SHOW_AS.get(get("free_busy_status") or "", ShowAs.UNKNOWN),
            visibility=_VISIBILITY.get(get("visibility") or "", Visibility.DEFAULT),
            meeting_url=meeting,
            html_link=get("app_link") or None,
            created=_instant(created) if created and created != "0" else None,
        )
    except (ValueError, TypeError) as exc:
        raise MalformedEvent(f"event {eid}: {exc}", event_id=eid) from None


def _cancelled_slot(eid: str, item: Mapping[str, Any]) -> tuple[When, When]:
    """Start/end for a cancelled exception that carries no times: its original slot, zero-length."""
    orig = original_seconds(eid)
    assert orig is not None
    zone_hint = item.get("start_time")
    tz = _zone_name(zone_hint.get("timezone")) if isinstance(zone_hint, dict) else None
    w = When(instant=_instant(orig), timezone=tz)
    return w, w


def change_from(item: Mapping[str, Any], *, account: str, calendar_id: str) -> Upsert | Delete:
    """One item of a list/sync page as a change: cancelled singles and masters are deletions.

    Raises:
        MalformedEvent: the payload cannot be normalized.
    """
    eid = item.get("event_id")
    if not isinstance(eid, str) or not eid:
        raise MalformedEvent("event without an event_id", event_id=None)
    if item.get("status") == "cancelled":
        if original_seconds(eid) is None:
            return Delete(key=EventKey(account=account, calendar_id=calendar_id, id=eid))
        if not isinstance(item.get("end_time"), dict):
            # Cancelled items may carry little more than their id (apis.md 1.A.4).
            start, end = _cancelled_slot(eid, item)
            return Upsert(
                event=Event(
                    provider=PROVIDER,
                    account=account,
                    calendar_id=calendar_id,
                    id=eid,
                    kind=Kind.EXCEPTION,
                    start=start,
                    end=end,
                    status=Status.CANCELLED,
                    series_id=series_id_of(item.get("recurring_event_id") or eid),
                    original_start=start,
                )
            )
    return Upsert(event=event_from(item, account=account, calendar_id=calendar_id))
