"""Google Calendar v3 events (the ``_wire`` Structs) → calbridge :class:`~calbridge.model.Event` values,
under the contract's rules. Everything here is pure.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import sys

import attrs
import msgspec

from calbridge.build import new_event, new_upsert, when_at
from calbridge.errors import MalformedEvent
from calbridge.model import (
    Attendee,
    Change,
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
)  # fmt: skip
from calbridge.provider import Quarantined
from calbridge.recurrence import canonical_recurrence
from calbridge.toolkit import Coercions, DecodedPage, unescape
from calbridge.zones import canonical_zone, zone

from ._wire import EVENTS, EventDateTime, EventsPage, GAttendee, GEvent, GPerson

UTC = dt.UTC


_RESPONSES = {
    "accepted": Response.ACCEPTED, "declined": Response.DECLINED, "tentative": Response.TENTATIVE,
    "needsAction": Response.NEEDS_ACTION,
}  # fmt: skip
_STATUSES = {"confirmed": Status.CONFIRMED, "tentative": Status.TENTATIVE, "cancelled": Status.CANCELLED}
_VISIBILITY = {
    "default": Visibility.DEFAULT, "public": Visibility.PUBLIC, "private": Visibility.PRIVATE,
    "confidential": Visibility.CONFIDENTIAL,
}  # fmt: skip
_TRANSPARENCY = {"opaque": ShowAs.BUSY, "transparent": ShowAs.FREE}
# People repeat across a calendar: convert each distinct organizer and attendee list once.
_CACHE_LIMIT = 20_000
_people: dict[GPerson, Person] = {}
_attendee_lists: dict[tuple[GAttendee, ...], tuple[Attendee, ...]] = {}
_attendee_of: dict[GAttendee, Attendee] = {}
_junk_answers: set[GAttendee] = set()  # attendees whose responseStatus was unknown (read as none)
_junk_lists: dict[tuple[GAttendee, ...], int] = {}  # attendee lists holding some, and how many
_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<\s*(br\s*/?|/p|/div|/li)\s*>", re.IGNORECASE)


def plain_text(value: str | None) -> str | None:
    """Google descriptions may be HTML; the contract wants plain text."""
    if value is None or ("<" not in value and "&" not in value):
        return value
    return unescape(_TAG.sub("", _BREAK.sub("\n", value))).strip()


def _label(name: str | None, co: Coercions) -> str | None:
    """A zone that only labels an instant with an offset: unknown → None (the contract's null), counted."""
    if not name:
        return None
    canon = canonical_zone(name)
    if canon is None:
        co.note("timezone")
    return canon


def _when(value: EventDateTime | None, what: str, fallback_zone: str | None, co: Coercions) -> When:
    if value is None:
        raise MalformedEvent(f"no {what}")
    instant = value.date_time
    if instant is not None and instant.tzinfo is not None:  # the usual case
        if instant.tzinfo is not UTC:
            instant = instant.astimezone(UTC)
        return When(instant=instant, timezone=_label(value.time_zone, co))
    if value.date is not None:
        return When(date=value.date)
    instant = value.date_time
    if instant is None:
        raise MalformedEvent(f"{what} has neither date nor dateTime")
    name = canonical_zone(value.time_zone) if value.time_zone else None
    if value.time_zone and name is None:
        # The zone places a floating time: reading it in another zone would move the event.
        raise MalformedEvent(f"{what} has no offset and an unknown timeZone {value.time_zone[:60]!r}")
    # Google writes offsets on output; a naive value can only mean "in timeZone".
    zone_name = name or fallback_zone
    if zone_name is None:
        raise MalformedEvent(f"{what} has no offset and no timeZone")
    return When(instant=instant.replace(tzinfo=zone(zone_name)), timezone=name)


def _original(value: EventDateTime, series_zone: str | None, co: Coercions) -> When:
    """originalStartTime in the series' zone (its own timeZone when given, else the series')."""
    if value.date is not None:
        return When(date=value.date)
    when = _when(value, "originalStartTime", series_zone, co)
    if when.timezone is None and series_zone is not None:
        return When(instant=when.instant, timezone=series_zone)
    return when


def _stamp(value: dt.datetime | None, field: str, co: Coercions) -> dt.datetime | None:
    """created/updated: one without an offset (Google always writes one) or past UTC's range is unknown."""
    if value is None or (value.tzinfo is UTC and not value.microsecond):
        return value
    try:
        if value.tzinfo is not None:
            value.astimezone(UTC)
            return value
    except OverflowError:
        pass
    co.note(field)
    return None


def _meeting_url(ev: GEvent) -> str | None:
    if ev.conference_data is not None:
        for ep in ev.conference_data.entry_points:
            if ep.entry_point_type == "video" and ep.uri:
                return ep.uri
    return ev.hangout_link


def _show_as(ev: GEvent, co: Coercions) -> ShowAs:
    if ev.event_type == "outOfOffice":
        return ShowAs.OOF
    if ev.event_type == "workingLocation":
        return ShowAs.WORKING_ELSEWHERE
    transparency = ev.transparency
    if transparency is None:
        return ShowAs.BUSY  # opaque is the default (events resource: transparency)
    return co.pick(_TRANSPARENCY, transparency, ShowAs.UNKNOWN, "show_as")


@functools.lru_cache(maxsize=4096)
def _recurrence(lines: tuple[str, ...], all_day: bool, zone_name: str | None) -> tuple[str, ...]:
    return canonical_recurrence(lines, all_day=all_day, tz=zone(zone_name) if zone_name else None)


def _intern(text: str | None) -> str | None:
    return None if text is None else sys.intern(text)


def _person(p: GPerson) -> Person:
    if len(_people) > _CACHE_LIMIT:
        _people.clear()
    out = _people[p] = Person(email=_intern(p.email), name=_intern(p.display_name), id=p.id)
    return out


def _attendee(a: GAttendee) -> Attendee:
    # One string per person, however many answers and flags they come with (the mirror holds them all).
    response = _RESPONSES.get(a.response_status or "", Response.NONE)
    if response is Response.NONE and a.response_status:
        _junk_answers.add(a)
    out = _attendee_of[a] = Attendee(
        email=_intern(a.email), name=_intern(a.display_name), id=a.id,
        response=response,
        optional=a.optional, organizer=a.organizer, resource=a.resource, is_self=a.self_,
    )  # fmt: skip
    return out


def _attendees(items: tuple[GAttendee, ...]) -> tuple[Attendee, ...]:
    """Each distinct attendee (person and answer) is built once and shared by every list naming it:
    lists vary from event to event, the people in them and their answers mostly do not."""
    if len(_attendee_lists) > _CACHE_LIMIT or len(_attendee_of) > _CACHE_LIMIT:
        clear_caches()
    get = _attendee_of.get
    out = _attendee_lists[items] = tuple([get(a) or _attendee(a) for a in items])
    if _junk_answers:
        junk = sum(1 for a in items if a in _junk_answers)
        if junk:
            _junk_lists[items] = junk
    return out


def clear_caches() -> None:
    """Forget the people seen so far (a benchmark's cold start; the bound on what is kept)."""
    _people.clear()
    _attendee_lists.clear()
    _attendee_of.clear()
    _junk_answers.clear()
    _junk_lists.clear()


def _organizer_is_self(attendees: tuple[Attendee, ...]) -> tuple[Attendee, ...]:
    """``organizer.self`` without an attendee marked ``self``: the organizer's attendee is the account's."""
    if any(a.is_self for a in attendees):
        return attendees
    return tuple(attrs.evolve(a, is_self=True) if a.organizer else a for a in attendees)


def convert(
    ev: GEvent, *, provider: str, account: str, calendar_id: str, calendar_zone: str | None, occurrence: bool = False
) -> Change:
    """One decoded item → an Upsert, or a Delete for a cancelled stub that is not an occurrence.
    With ``occurrence`` (an events.instances item) an instance of a series is built as ``Kind.OCCURRENCE``.

    Raises:
        MalformedEvent: the item cannot be normalized.
    """
    return _convert(ev, provider, account, calendar_id, calendar_zone, occurrence, Coercions())


def _convert(
    ev: GEvent, provider: str, account: str, calendar_id: str, calendar_zone: str | None, occurrence: bool,
    co: Coercions,
) -> Change:  # fmt: skip
    """:func:`convert`, positional (keyword matching costs on every item of a page)."""
    eid = ev.id
    if not eid:
        raise MalformedEvent("event without id")
    status = _STATUSES.get(ev.status or "confirmed")
    if status is None:
        raise MalformedEvent(f"unknown status {ev.status!r}", event_id=eid)
    try:
        if status is Status.CANCELLED:
            if ev.recurring_event_id is None:
                return Delete(key=EventKey(account=account, calendar_id=calendar_id, id=eid))
            if ev.original_start_time is None:
                raise MalformedEvent("cancelled occurrence without originalStartTime")
            series_zone = canonical_zone(ev.original_start_time.time_zone) or calendar_zone
            original = _original(ev.original_start_time, series_zone, co)
            # A cancelled stub carries no times of its own: it sits, zero-length, on its slot.
            return Upsert(event=Event(
                provider=provider, account=account, calendar_id=calendar_id, id=eid, kind=Kind.EXCEPTION,
                start=original, end=original, status=status, series_id=ev.recurring_event_id,
                original_start=original, etag=ev.etag,
                ical_uid=ev.i_cal_u_i_d,
            ))  # fmt: skip
        # The usual case inline (offset dateTime and timeZone on both ends); _when handles the rest.
        s, e = ev.start, ev.end
        si = None if s is None else s.date_time
        ei = None if e is None else e.date_time
        if si is not None and ei is not None and si.tzinfo is not None and ei.tzinfo is not None:
            assert s is not None and e is not None
            name = canonical_zone(s.time_zone) if s.time_zone else None
            if name is None and s.time_zone:
                co.note("timezone")
            start = when_at(si if si.tzinfo is UTC else si.astimezone(UTC), name)
            # end.timeZone is optional on the wire: the start's zone stands in for a missing or unknown one
            end_name = name if e.time_zone == s.time_zone else (canonical_zone(e.time_zone) if e.time_zone else None)
            end = when_at(ei if ei.tzinfo is UTC else ei.astimezone(UTC), end_name or name)
        else:
            start = _when(s, "start", calendar_zone, co)
            end = _when(e, "end", calendar_zone, co)
            if end.timezone is None and end.instant is not None and start.timezone is not None:
                end = When(instant=end.instant, timezone=start.timezone)  # end.timeZone is optional on the wire
        recurrence: tuple[str, ...] = ()
        series_id = None
        original_start = None
        if ev.recurrence:
            kind = Kind.SERIES
            rz = start.timezone or calendar_zone
            recurrence = _recurrence(tuple(ev.recurrence), start.all_day, rz)
        elif ev.recurring_event_id is not None:
            kind = Kind.OCCURRENCE if occurrence else Kind.EXCEPTION
            series_id = ev.recurring_event_id
            ost = ev.original_start_time
            if ost is None:
                raise MalformedEvent("exception without originalStartTime")
            if (
                ost.date_time is not None
                and ost.time_zone
                and s is not None
                and (ost.date_time, ost.time_zone) == (s.date_time, s.time_zone)
            ):
                original_start = start  # an unmoved instance (most of an expansion): its slot is its start
            else:
                original_start = _original(ost, start.timezone or calendar_zone, co)
        else:
            kind = Kind.SINGLE
        org = ev.organizer
        organizer = None if org is None else (_people.get(org) or _person(org))
        attendees: tuple[Attendee, ...] = ()
        if ev.attendees:
            attendees = _attendee_lists.get(ev.attendees) or _attendees(ev.attendees)
            if _junk_lists and ev.attendees in _junk_lists:
                co.note("response", _junk_lists[ev.attendees])
            if org is not None and org.self_:
                attendees = _organizer_is_self(attendees)
        return new_upsert(new_event(  # Event's fields in order: provider … ical_uid
            provider, account, calendar_id, eid, kind, start, end, status, series_id, original_start,
            co.text(ev.summary, "title"), co.text(plain_text(ev.description), "description"),
            co.text(ev.location, "location"), recurrence, organizer, attendees, ev.attendees_omitted,
            _show_as(ev, co), co.pick(_VISIBILITY, ev.visibility, Visibility.DEFAULT, "visibility"),
            _meeting_url(ev), ev.html_link, _stamp(ev.created, "created", co), _stamp(ev.updated, "updated", co),
            ev.etag, ev.i_cal_u_i_d,
        ))  # fmt: skip
    except MalformedEvent as exc:
        exc.event_id = eid
        raise
    except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
        # ArithmeticError: year 1 at +05:00 or 9999-12-31T23:00-05:00 has no UTC datetime (OverflowError).
        raise MalformedEvent(f"{type(exc).__name__}: {exc}", event_id=eid) from None


class ConvertedPage(msgspec.Struct):
    """A page of events as calbridge changes, its quarantined items and its tokens."""

    changes: list[Change]
    quarantined: list[Quarantined]
    next_page_token: str | None
    next_sync_token: str | None
    coerced: dict[str, int] = {}


def convert_page(
    page: DecodedPage[EventsPage, GEvent], *, provider: str, account: str, calendar_id: str, occurrences: bool = False
) -> ConvertedPage:
    """A decoded events.list / events.instances page → changes plus quarantined items (in page order).

    With ``occurrences`` (events.instances) every instance becomes ``Kind.OCCURRENCE`` and cancelled
    ones are left out.
    """
    cal_zone = canonical_zone(page.page.time_zone) if page.page.time_zone else None
    co = Coercions()
    # The previous instance, its occurrence and what converting it coerced (occurrences only).
    last: list[tuple[GEvent, Event, dict[str, int]]] = []

    def change_of(ev: GEvent) -> Change | None:
        if last:
            prev, made, coerced = last[0]
            sibling = _sibling(ev, prev, made)
            if sibling is not None:
                co.merge(coerced)  # the same wire values as its sibling's: coerced the same way
                return new_upsert(sibling)
        own = Coercions(co.text_limit) if occurrences else co
        change = _convert(ev, provider, account, calendar_id, cal_zone, occurrences, own)
        if not occurrences:
            return change
        co.merge(own.counts)
        if not isinstance(change, Upsert) or change.event.status is Status.CANCELLED:
            return None
        if change.event.kind is Kind.OCCURRENCE:  # built so at once: no second Event (1,000 series: 93k of them)
            last[:] = [(ev, change.event, own.counts)]
            return change
        return Upsert(event=attrs.evolve(change.event, kind=Kind.OCCURRENCE))

    changes: list[Change]
    changes, quarantined = page.map_items(change_of)
    return ConvertedPage(changes=changes, quarantined=quarantined, next_page_token=page.page.next_page_token,
                         next_sync_token=page.page.next_sync_token, coerced=co.counts)  # fmt: skip


def _utc(instant: dt.datetime) -> dt.datetime:
    return instant if instant.tzinfo is UTC else instant.astimezone(UTC)


def _sibling(ev: GEvent, prev: GEvent, occurrence: Event) -> Event | None:
    """``ev`` (an events.instances item) as a copy of ``occurrence`` (what ``prev``, the instance
    before it, became) with its own id, times, link and etag — when every other field and every time
    zone is the same on the wire, as for most instances of a series; None otherwise (convert it)."""
    s, e, o, ps, pe, po = ev.start, ev.end, ev.original_start_time, prev.start, prev.end, prev.original_start_time
    if s is None or e is None or o is None or ps is None or pe is None or po is None:
        return None
    times = (s.date_time, e.date_time, o.date_time)
    if any(t is None or t.tzinfo is None for t in times) or ps.date_time is None or pe.date_time is None:
        return None  # all-day, naive or partial times take convert's longer path
    if (s.time_zone, e.time_zone, o.time_zone) != (ps.time_zone, pe.time_zone, po.time_zone) or po.date_time is None:
        return None
    same = msgspec.structs.replace(ev, id=prev.id, start=ps, end=pe, original_start_time=po, html_link=prev.html_link,
                                   etag=prev.etag)  # fmt: skip
    if same != prev or not ev.id or occurrence.original_start is None:
        return None
    st, en, og = (_utc(t) for t in times)  # type: ignore[arg-type]
    start = when_at(st, occurrence.start.timezone)
    zone_of_slot = occurrence.original_start.timezone
    original = start if og == st and zone_of_slot == start.timezone else when_at(og, zone_of_slot)
    t = occurrence
    return new_event(  # Event's fields in order, as _convert builds them
        t.provider, t.account, t.calendar_id, ev.id, t.kind, start, when_at(en, t.end.timezone), t.status,
        t.series_id, original, t.title, t.description, t.location, t.recurrence, t.organizer, t.attendees,
        t.attendees_omitted, t.show_as, t.visibility, t.meeting_url, ev.html_link, t.created, t.updated, ev.etag,
        t.ical_uid,
    )  # fmt: skip


def decode_page(
    body: bytes, *, provider: str, account: str, calendar_id: str, occurrences: bool = False
) -> ConvertedPage:
    """A whole events.list / events.instances response body → changes plus quarantined items.

    Raises:
        msgspec.DecodeError: the body is not JSON. msgspec.ValidationError: it is no events page.
    """
    return convert_page(EVENTS.decode(body), provider=provider, account=account, calendar_id=calendar_id,
                        occurrences=occurrences)  # fmt: skip
