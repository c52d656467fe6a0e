"""Graph events (decoded by ``_wire``) → :class:`~calbridge.model.Event` (pure; no I/O; a delta page
as changes is ``_changes``).

Graph writes ``dateTime`` without an offset beside a ``timeZone`` that may be ``UTC`` (what the
provider asks for with ``Prefer: outlook.timezone="UTC"``), a Windows name, an IANA name or a custom
``tzone://Microsoft/Custom``. The exported ``timezone`` comes from ``originalStartTimeZone``. A
``seriesMaster``'s ``patternedRecurrence`` becomes one canonical ``RRULE`` line (see the contract).
Anything that cannot be normalized raises :class:`~calbridge.errors.MalformedEvent`; on a page it is
quarantined with its JSON text and the rest of the page lands (``_changes``).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import sys
from collections.abc import Mapping

from msgspec import UNSET

from calbridge.build import new_event, when_at
from calbridge.errors import MalformedEvent
from calbridge.model import (
    Attendee,
    Event,
    Kind,
    Person,
    Response,
    ShowAs,
    Status,
    Visibility,
    When,
)  # fmt: skip
from calbridge.toolkit import Coercions, unescape
from calbridge.zones import canonical_zone, zone

from ._recurrence import pattern_to_rrule
from ._times import date_of, export_zone, parse_instant, parse_local, slot_of
from ._wire import EmailAddress, GAttendee, GEvent

logger = logging.getLogger(__name__)
UTC = dt.UTC
PROVIDER = "graph"

_KINDS = {
    "singleInstance": Kind.SINGLE,
    "seriesMaster": Kind.SERIES,
    "singleinstance": Kind.SINGLE,
    "occurrence": Kind.OCCURRENCE,
    "exception": Kind.EXCEPTION,
    "seriesmaster": Kind.SERIES,
}
_SHOW_AS = {
    "workingElsewhere": ShowAs.WORKING_ELSEWHERE,
    "free": ShowAs.FREE,
    "tentative": ShowAs.TENTATIVE,
    "busy": ShowAs.BUSY,
    "oof": ShowAs.OOF,
    "workingelsewhere": ShowAs.WORKING_ELSEWHERE,
}
_VISIBILITY = {
    "normal": Visibility.DEFAULT,
    "personal": Visibility.PRIVATE,
    "private": Visibility.PRIVATE,
    "confidential": Visibility.CONFIDENTIAL,
}
_RESPONSES = {
    "tentativelyAccepted": Response.TENTATIVE,
    "notResponded": Response.NEEDS_ACTION,
    "accepted": Response.ACCEPTED,
    "organizer": Response.ACCEPTED,
    "declined": Response.DECLINED,
    "tentativelyaccepted": Response.TENTATIVE,
    "notresponded": Response.NEEDS_ACTION,
    "none": Response.NONE,
}
_CACHE_LIMIT = 20_000
ONE_DAY = dt.timedelta(days=1)
_fromiso = dt.datetime.fromisoformat
# Enum members as module constants: ``Kind.SERIES`` is a class attribute lookup costing ~80 ns on 3.11.
SINGLE, SERIES, OCCURRENCE, EXCEPTION = Kind.SINGLE, Kind.SERIES, Kind.OCCURRENCE, Kind.EXCEPTION
CONFIRMED, CANCELLED = Status.CONFIRMED, Status.CANCELLED
UNKNOWN_SHOW_AS, DEFAULT_VISIBILITY, NO_RESPONSE = ShowAs.UNKNOWN, Visibility.DEFAULT, Response.NONE
# The same people recur across a mailbox: each distinct attendee list and organizer is built once.
_attendee_cache: dict[tuple[tuple[GAttendee, ...], str | None], tuple[Attendee, ...]] = {}
_attendee_of: dict[tuple[GAttendee, str | None], Attendee] = {}
_person_cache: dict[EmailAddress, tuple[Person | None, str | None]] = {}  # (organizer, its email lowercased)
_junk_answers: set[GAttendee] = set()  # attendees whose status.response was unknown (read as none)
_junk_lists: dict[tuple[GAttendee, ...], int] = {}  # attendee lists holding some, and how many
_TAGS = re.compile(r"<[^>]*>")
_BREAKS = re.compile(r"<\s*(br|/p|/div|/li|/tr|/h[1-6])\b[^>]*>", re.IGNORECASE)
_HIDDEN = re.compile(r"<(style|script|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


def html_to_text(content: str) -> str:
    """A readable plain-text rendering of an HTML body (line breaks kept, tags dropped)."""
    text = _HIDDEN.sub("", content)
    text = _BREAKS.sub("\n", text)
    text = _TAGS.sub("", text)
    text = unescape(text).replace("\xa0", " ")
    lines = [line.rstrip() for line in text.splitlines()]
    return "\n".join(lines).strip()


def _body(ev: GEvent) -> str | None:
    body = ev.body
    if body is None or not body.content:
        return None
    if body.content_type is not None and body.content_type.lower() == "html":
        return html_to_text(body.content) or None
    return body.content


def _attendee(a: GAttendee, org: str | None) -> Attendee:
    address = a.email_address
    # One string per person, however many answers and roles they come with (the mirror holds them all).
    email = sys.intern(address.address) if address is not None and address.address else None
    response = (a.status.response if a.status is not None else None) or "none"
    kind = a.type or "required"
    answer = _RESPONSES.get(response) or _RESPONSES.get(response.lower())
    if answer is None:
        _junk_answers.add(a)
    out = _attendee_of[(a, org)] = Attendee(
        email=email,
        name=sys.intern(address.name) if address is not None and address.name else None,
        response=answer or NO_RESPONSE,
        optional=kind == "optional",
        resource=kind == "resource",
        organizer=bool(email and org and email.lower() == org),
    )
    return out


def _attendees(items: tuple[GAttendee, ...], org: str | None) -> tuple[Attendee, ...]:
    """Each distinct attendee (with the organizer it is judged against) is built once and shared:
    lists vary from event to event, the people in them and their answers mostly do not."""
    if len(_attendee_cache) >= _CACHE_LIMIT or len(_attendee_of) >= _CACHE_LIMIT:
        clear_caches()
    get = _attendee_of.get
    found = _attendee_cache[(items, org)] = tuple([get((a, org)) or _attendee(a, org) for a in items])
    if _junk_answers:
        junk = sum(1 for a in items if a in _junk_answers)
        if junk:
            _junk_lists[items] = junk
    return found


def clear_caches() -> None:
    """Forget the people seen so far (a benchmark's cold start; the bound on what is kept)."""
    _attendee_cache.clear()
    _attendee_of.clear()
    _person_cache.clear()
    _junk_answers.clear()
    _junk_lists.clear()


def _own_answer(attendees: tuple[Attendee, ...], ev: GEvent, me: str, co: Coercions) -> tuple[Attendee, ...]:
    """The mailbox's attendee marked ``self``, with the mailbox's own ``responseStatus`` and
    ``isOrganizer`` (the attendee list's status for it is what the organizer last saw). No attendee
    names the mailbox (the organizer's own copy lists only the others): nothing is invented."""
    out = list(attendees)
    for i, a in enumerate(out):
        if a.email is not None and a.email.lower() == me:
            own = ev.response_status.response if ev.response_status is not None else None
            response = (_RESPONSES.get(own) or _RESPONSES.get(own.lower())) if own else NO_RESPONSE
            if response is None:
                co.note("response")
                response = NO_RESPONSE
            out[i] = Attendee(
                email=a.email, name=a.name, id=a.id, optional=a.optional, resource=a.resource, is_self=True,
                response=a.response if response is NO_RESPONSE else response,
                organizer=a.organizer or bool(ev.is_organizer),
            )  # fmt: skip
            return tuple(out)
    return attendees


def _organizer(address: EmailAddress) -> tuple[Person | None, str | None]:
    """The organizer's Person (None when its emailAddress names nobody) and its email lowercased."""
    if len(_person_cache) >= _CACHE_LIMIT:
        _person_cache.clear()
    email, name = address.address or None, address.name or None
    person = None if email is None and name is None else Person(email=email, name=name)
    found = _person_cache[address] = (person, email.lower() if email else None)
    return found


def convert_event(
    ev: GEvent,
    *,
    account: str,
    calendar_id: str,
    master: Event | None = None,
    me: str | None = None,
    series_zone: str | None = None,
    coerced: Coercions | None = None,
) -> Event:
    """One Graph event (single, occurrence, exception or series master) → Event.

    ``master`` is the normalized series master of an occurrence or exception: it supplies the
    zone of ``original_start`` and everything a skeletal occurrence leaves out. ``me`` is the
    mailbox's address lowercased (the account's ``user``), None when not known; ``series_zone`` the
    master's own zone (``_times.series_zone_of``), which places an all-day slot on its date;
    ``coerced`` counts the non-essential values read as the neutral value.

    Raises:
        MalformedEvent: the payload cannot be normalized (whatever went wrong converting it).
    """
    co = Coercions() if coerced is None else coerced
    try:
        return _event(ev, account, calendar_id, master, me, series_zone, co)
    except MalformedEvent:
        raise
    except Exception as exc:  # one item a converter cannot handle quarantines that item, never its page
        raise MalformedEvent(f"{type(exc).__name__}: {exc}", event_id=ev.id or None) from None


def _event(
    ev: GEvent, account: str, calendar_id: str, master: Event | None, me: str | None, series_zone: str | None,
    co: Coercions,
) -> Event:  # fmt: skip
    event_id = ev.id
    if not event_id:
        raise MalformedEvent("event without an id")
    etype = ev.type or "singleInstance"
    kind = _KINDS.get(etype) or _KINDS.get(etype.lower())
    if kind is None:
        raise MalformedEvent(f"unknown event type {etype[:40]!r}", event_id=event_id)
    if master is not None and ev.subject is UNSET:
        return hydrate(ev, master, series_zone)

    start_raw = ev.start
    end_raw = ev.end
    if end_raw is None or (end_raw.date_time is None and end_raw.time_zone is None):
        end_raw = start_raw  # an absent end (or {}) stands for the start
    if ev.is_all_day:
        sdate = date_of(start_raw, what="start", event_id=event_id)
        edate = date_of(end_raw, what="end", event_id=event_id)
        start, end = When(date=sdate), When(date=max(edate, sdate + ONE_DAY))
        tzname = None
    else:
        original = ev.original_start_time_zone
        tzname = canonical_zone(original) if original else None
        if tzname is None:
            tzname = export_zone(original, start_raw.time_zone if start_raw else None, event_id)
            if original:
                co.note("timezone")
        s = e = None
        if start_raw is not None and end_raw is not None and start_raw.time_zone == "UTC" == end_raw.time_zone:
            try:  # the usual case (Prefer: outlook.timezone="UTC") inline; parse_local has the rest
                s = _fromiso(start_raw.date_time[:19] + "+00:00")  # type: ignore[index]
                e = _fromiso(end_raw.date_time[:19] + "+00:00")  # type: ignore[index]
            except (ValueError, TypeError):
                s = None
        if s is None or e is None:
            s = parse_local(start_raw, what="start", event_id=event_id)
            e = parse_local(end_raw, what="end", event_id=event_id)
        start, end = when_at(s, tzname), when_at(e, tzname)

    series_id = None
    original_start = None
    recurrence: tuple[str, ...] = ()
    if kind is OCCURRENCE or kind is EXCEPTION:
        series_id = ev.series_master_id
        if not series_id:
            raise MalformedEvent(f"{kind.value} without seriesMasterId", event_id=event_id)
        original_start = slot_of(ev, start, master, tzname, series_zone)
    elif kind is SERIES:
        rec = ev.recurrence
        if not isinstance(rec, Mapping):
            raise MalformedEvent("seriesMaster without recurrence", event_id=event_id)
        try:
            rule_zone = zone(tzname) if tzname else None
            recurrence = (pattern_to_rrule(rec, all_day=bool(ev.is_all_day), series_zone=rule_zone),)
        except MalformedEvent as exc:
            raise MalformedEvent(str(exc), event_id=event_id) from None

    org = ev.organizer.email_address if ev.organizer is not None else None
    organizer = org_email = None
    if org is not None:
        try:
            organizer, org_email = _person_cache[org]
        except KeyError:
            organizer, org_email = _organizer(org)
    attendees: tuple[Attendee, ...] = ()
    if ev.attendees:
        attendees = _attendee_cache.get((ev.attendees, org_email)) or _attendees(ev.attendees, org_email)
        if _junk_lists and ev.attendees in _junk_lists:
            co.note("response", _junk_lists[ev.attendees])
        if me is not None:
            attendees = _own_answer(attendees, ev, me, co)
    show_as = ev.show_as or ""
    sensitivity = ev.sensitivity or ""
    online = ev.online_meeting
    body = ev.body
    if body is not None and body.content and body.content_type == "text":  # the usual body inline
        description: str | None = body.content
    else:
        description = _body(ev)
    c, u = ev.created_date_time, ev.last_modified_date_time
    try:  # the usual form (…Z) inline; parse_instant has the rest
        created = _fromiso(c[:19] + "+00:00") if c and c[-1] == "Z" else parse_instant(c)
    except ValueError:
        created = None
    try:
        updated = _fromiso(u[:19] + "+00:00") if u and u[-1] == "Z" else parse_instant(u)
    except ValueError:
        updated = None
    if created is None and c:
        co.note("created")
    if updated is None and u:
        co.note("updated")
    shown = _SHOW_AS.get(show_as) or _SHOW_AS.get(show_as.lower())
    if shown is None:
        if show_as and show_as.lower() != "unknown":
            co.note("show_as")
        shown = UNKNOWN_SHOW_AS
    visibility = _VISIBILITY.get(sensitivity) or _VISIBILITY.get(sensitivity.lower())
    if visibility is None:
        if sensitivity:
            co.note("visibility")
        visibility = DEFAULT_VISIBILITY
    try:
        return new_event(  # Event's fields in order: provider … ical_uid
            PROVIDER, account, calendar_id, event_id, kind, start, end, CANCELLED if ev.is_cancelled else CONFIRMED,
            series_id, original_start, co.text(ev.subject or None, "title"), co.text(description, "description"),
            co.text((ev.location.display_name or None) if ev.location is not None else None, "location"), recurrence,
            organizer, attendees, False, shown, visibility,
            (online.join_url if online is not None else None) or ev.online_meeting_url or None,
            ev.web_link or None, created, updated, ev.etag or ev.change_key or None, _series_uid(ev, kind, master),
        )  # fmt: skip
    except (ValueError, TypeError) as exc:
        raise MalformedEvent(str(exc), event_id=event_id) from None


def _series_uid(ev: GEvent, kind: Kind, master: Event | None) -> str | None:
    """The iCalendar UID: an occurrence's or exception's is its series' (UID + RECURRENCE-ID), but
    Graph gives each occurrence an ``iCalUId`` of its own (M4: it differs per occurrence)."""
    if kind is OCCURRENCE or kind is EXCEPTION:
        return master.ical_uid if master is not None else None
    return ev.i_cal_u_id or None


def hydrate(ev: GEvent, master: Event, series_zone: str | None = None) -> Event:
    """A skeletal occurrence (id, type, seriesMasterId, start, end) filled in from its master.

    Raises:
        MalformedEvent: its start or end cannot be read.
    """
    event_id = str(ev.id)
    etype = ev.type or "occurrence"
    kind = _KINDS.get(etype) or _KINDS.get(etype.lower(), OCCURRENCE)
    end_raw = ev.end
    if end_raw is None or (end_raw.date_time is None and end_raw.time_zone is None):
        end_raw = ev.start
    if master.start.all_day:
        sdate = date_of(ev.start, what="start", event_id=event_id)
        edate = date_of(end_raw, what="end", event_id=event_id)
        start, end = When(date=sdate), When(date=max(edate, sdate + ONE_DAY))
    else:
        tzname = master.start.timezone
        s = parse_local(ev.start, what="start", event_id=event_id)
        e = parse_local(end_raw, what="end", event_id=event_id)
        start, end = When(instant=s, timezone=tzname), When(instant=e, timezone=tzname)
    original = slot_of(ev, start, master, master.start.timezone, series_zone)
    try:
        return Event(
            provider=master.provider,
            account=master.account,
            calendar_id=master.calendar_id,
            id=event_id,
            kind=EXCEPTION if kind is EXCEPTION else OCCURRENCE,
            start=start,
            end=end,
            status=master.status,
            series_id=master.id,
            original_start=original,
            title=master.title,
            description=master.description,
            location=master.location,
            organizer=master.organizer,
            attendees=master.attendees,
            show_as=master.show_as,
            visibility=master.visibility,
            meeting_url=master.meeting_url,
            html_link=None,
            created=master.created,
            updated=master.updated,
            etag=ev.etag or None,
            ical_uid=master.ical_uid,
        )
    except (ValueError, TypeError) as exc:
        raise MalformedEvent(str(exc), event_id=event_id) from None
