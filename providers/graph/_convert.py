"""Graph event JSON → :class:`~calbridge.model.Event` (pure; no I/O).

Graph writes ``dateTime`` without an offset beside a ``timeZone`` that may be ``UTC`` (what the
provider asks for with ``Prefer: outlook.timezone="UTC"``), a Windows name, an IANA name or a custom
``tzone://Microsoft/Custom``. The exported ``timezone`` comes from ``originalStartTimeZone``. A
``seriesMaster``'s ``patternedRecurrence`` becomes one canonical ``RRULE`` line (see the contract).
Anything that cannot be normalized raises :class:`~calbridge.errors.MalformedEvent`.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import re
from collections.abc import Mapping
from typing import Any

from calbridge.errors import MalformedEvent
from calbridge.model import Attendee, Event, Kind, Person, Response, ShowAs, Status, Visibility, When
from calbridge.zones import canonical_zone, zone

from ._recurrence import pattern_to_rrule, zone_for

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
_EMPTY: Mapping[str, Any] = {}
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
_attendee_cache: dict[tuple[Any, ...], Attendee] = {}
_person_cache: dict[tuple[Any, Any], Person] = {}
_TAGS = re.compile(r"<[^>]*>")
_BREAKS = re.compile(r"<\s*(br|/p|/div|/li|/tr|/h[1-6])\b[^>]*>", re.IGNORECASE)
_HIDDEN = re.compile(r"<(style|script|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


def parse_local(value: Mapping[str, Any] | None, *, what: str, event_id: str | None) -> dt.datetime:
    """A ``dateTimeTimeZone`` → aware UTC instant.

    Raises:
        MalformedEvent: missing, unparseable, or a zone that cannot be resolved.
    """
    # type() first: isinstance against the Mapping ABC costs more than the parse on a hot path.
    if not value or (type(value) is not dict and not isinstance(value, Mapping)) or not value.get("dateTime"):
        raise MalformedEvent(f"missing {what}", event_id=event_id)
    text = value["dateTime"]
    if type(text) is not str:
        text = str(text)
    name = value.get("timeZone") or "UTC"
    try:
        # Graph sends seven fractional digits; the second is all calbridge keeps. Parsing with the
        # offset in the string is several times faster than replace(tzinfo=...) afterwards.
        if name == "UTC":
            return dt.datetime.fromisoformat(text[:19] + "+00:00")
        naive = dt.datetime.fromisoformat(text[:19])
    except ValueError:
        raise MalformedEvent(f"bad {what}.dateTime {text[:40]!r}", event_id=event_id) from None
    tz = zone_for(name)
    if tz is None:
        raise MalformedEvent(f"unknown time zone {str(name)[:60]!r} in {what}", event_id=event_id)
    return naive.replace(tzinfo=tz).astimezone(UTC)


def _date_of(value: Mapping[str, Any] | None, *, what: str, event_id: str | None) -> dt.date:
    if not value or (type(value) is not dict and not isinstance(value, Mapping)) or not value.get("dateTime"):
        raise MalformedEvent(f"missing {what}", event_id=event_id)
    try:
        return dt.date.fromisoformat(str(value["dateTime"])[:10])
    except ValueError:
        raise MalformedEvent(f"bad {what}.dateTime", event_id=event_id) from None


def parse_instant(text: str | None) -> dt.datetime | None:
    """``2024-05-01T12:51:51.1234567Z`` (or with an offset) → aware UTC; None when absent or bad."""
    if not text:
        return None
    try:
        if text[-1] in "Zz":
            return dt.datetime.fromisoformat(text[:19] + "+00:00")
        tail = text[19:].lstrip(".0123456789")
        return dt.datetime.fromisoformat(text[:19] + (tail or "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def export_zone(item: Mapping[str, Any], start_zone: str | None) -> str | None:
    """The exported ``timezone``: canonical ``originalStartTimeZone``, else the start's own zone
    unless that is only the UTC the response was written in; unknown → None (logged)."""
    original = item.get("originalStartTimeZone")
    canon = canonical_zone(original) if original else None
    if canon is not None:
        return canon
    fallback = canonical_zone(start_zone) if start_zone and start_zone != "UTC" else None
    if original:
        logger.info(
            "graph event %s: originalStartTimeZone %r is unknown; timezone %s",
            item.get("id"),
            str(original)[:60],
            f"falls back to {fallback}" if fallback else "is null",
        )
    return fallback


def html_to_text(content: str) -> str:
    """A readable plain-text rendering of an HTML body (line breaks kept, tags dropped)."""
    text = _HIDDEN.sub("", content)
    text = _BREAKS.sub("\n", text)
    text = _TAGS.sub("", text)
    text = html.unescape(text).replace("\xa0", " ")
    lines = [line.rstrip() for line in text.splitlines()]
    return "\n".join(lines).strip()


def _body(item: Mapping[str, Any]) -> str | None:
    body = item.get("body")
    if type(body) is not dict and not isinstance(body, Mapping):
        return None
    content = body.get("content")
    if not content:
        return None
    if str(body.get("contentType", "text")).lower() == "html":
        return html_to_text(str(content)) or None
    return str(content)


def _attendee(email: Any, name: Any, response: Any, kind: Any, org: str | None) -> Attendee:
    return Attendee(
        email=email,
        name=name,
        response=_RESPONSES.get(response) or _RESPONSES.get(str(response).lower(), Response.NONE),
        optional=kind == "optional",
        resource=kind == "resource",
        organizer=bool(email and org and email.lower() == org),
    )


def _attendees(items: Any, organizer_email: str | None) -> tuple[Attendee, ...]:
    if not items:
        return ()
    org = organizer_email.lower() if organizer_email else None
    out = []
    cache = _attendee_cache
    for a in items:
        email_obj = a.get("emailAddress") or _EMPTY
        email = email_obj.get("address") or None
        name = email_obj.get("name") or None
        response = (a.get("status") or _EMPTY).get("response") or "none"
        kind = a.get("type") or "required"
        # The same people recur across a mailbox: build each distinct attendee once (frozen, shared).
        key = (email, name, response, kind, org)
        try:
            found = cache.get(key)
        except TypeError:  # an unhashable value where a string belongs: build it uncached
            out.append(_attendee(email, name, response, kind, org))
            continue
        if found is None:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            found = cache[key] = _attendee(email, name, response, kind, org)
        out.append(found)
    return tuple(out)


def _organizer(org: Mapping[str, Any]) -> Person:
    email = org.get("address") or None
    name = org.get("name") or None
    try:
        found = _person_cache.get((email, name))
    except TypeError:
        return Person(email=email, name=name)
    if found is None:
        if len(_person_cache) >= _CACHE_LIMIT:
            _person_cache.clear()
        found = _person_cache[(email, name)] = Person(email=email, name=name)
    return found


def convert_event(
    item: Mapping[str, Any],
    *,
    account: str,
    calendar_id: str,
    master: Event | None = None,
) -> Event:
    """One Graph event (single, occurrence, exception or series master) → Event.

    ``master`` is the normalized series master of an occurrence or exception: it supplies the
    zone of ``original_start`` and everything a skeletal occurrence leaves out.

    Raises:
        MalformedEvent: the payload cannot be normalized.
    """
    get = item.get
    event_id = get("id")
    if not event_id or not isinstance(event_id, str):
        raise MalformedEvent("event without an id")
    etype = get("type") or "singleInstance"
    kind = _KINDS.get(etype) or _KINDS.get(str(etype).lower())
    if kind is None:
        raise MalformedEvent(f"unknown event type {str(item.get('type'))[:40]!r}", event_id=event_id)
    if master is not None and "subject" not in item:
        return hydrate(item, master)

    start_raw = get("start")
    all_day = bool(get("isAllDay"))
    if all_day:
        sdate = _date_of(start_raw, what="start", event_id=event_id)
        edate = _date_of(item.get("end") or start_raw, what="end", event_id=event_id)
        start, end = When(date=sdate), When(date=max(edate, sdate + dt.timedelta(days=1)))
        tzname = None
    else:
        start_is_map = type(start_raw) is dict or isinstance(start_raw, Mapping)
        tzname = export_zone(item, (start_raw or {}).get("timeZone") if start_is_map else None)
        s = parse_local(start_raw, what="start", event_id=event_id)
        e = parse_local(item.get("end") or start_raw, what="end", event_id=event_id)
        start, end = When(instant=s, timezone=tzname), When(instant=e, timezone=tzname)

    series_id = item.get("seriesMasterId") if kind in (Kind.OCCURRENCE, Kind.EXCEPTION) else None
    original_start = None
    recurrence: tuple[str, ...] = ()
    if kind in (Kind.OCCURRENCE, Kind.EXCEPTION):
        if not series_id:
            raise MalformedEvent(f"{kind.value} without seriesMasterId", event_id=event_id)
        original_start = _original_start(item, start, master, tzname)
    elif kind is Kind.SERIES:
        rec = item.get("recurrence")
        if not isinstance(rec, Mapping):
            raise MalformedEvent("seriesMaster without recurrence", event_id=event_id)
        try:
            series_zone = zone(tzname) if tzname else None
            recurrence = (pattern_to_rrule(rec, all_day=all_day, series_zone=series_zone),)
        except MalformedEvent as exc:
            raise MalformedEvent(str(exc), event_id=event_id) from None

    org = (get("organizer") or _EMPTY).get("emailAddress")
    organizer = _organizer(org) if org else None
    location = (get("location") or _EMPTY).get("displayName") or None
    online = get("onlineMeeting") or _EMPTY
    show_as = get("showAs") or ""
    sensitivity = get("sensitivity") or ""
    try:
        return Event(
            provider=PROVIDER,
            account=account,
            calendar_id=calendar_id,
            id=event_id,
            kind=kind,
            start=start,
            end=end,
            status=Status.CANCELLED if get("isCancelled") else Status.CONFIRMED,
            series_id=series_id,
            original_start=original_start,
            title=get("subject") or None,
            description=_body(item),
            location=location,
            recurrence=recurrence,
            organizer=organizer,
            attendees=_attendees(get("attendees"), organizer.email if organizer else None),
            show_as=_SHOW_AS.get(show_as) or _SHOW_AS.get(str(show_as).lower(), ShowAs.UNKNOWN),
            visibility=_VISIBILITY.get(sensitivity) or _VISIBILITY.get(str(sensitivity).lower(), Visibility.DEFAULT),
            meeting_url=online.get("joinUrl") or get("onlineMeetingUrl") or None,
            html_link=get("webLink") or None,
            created=parse_instant(get("createdDateTime")),
            updated=parse_instant(get("lastModifiedDateTime")),
            etag=get("@odata.etag") or get("changeKey") or None,
            ical_uid=get("iCalUId") or None,
        )
    except (ValueError, TypeError) as exc:
        raise MalformedEvent(str(exc), event_id=event_id) from None


def _original_start(item: Mapping[str, Any], start: When, master: Event | None, tzname: str | None) -> When:
    """The slot an occurrence or exception fills, in the series' zone (its date for all-day)."""
    raw = parse_instant(item.get("originalStart"))
    if start.all_day or (master is not None and master.start.all_day):
        if raw is None:
            assert start.date is not None
            return When(date=start.date)
        return When(date=raw.date())
    zone_name = master.start.timezone if master is not None else tzname
    if raw is None:
        if str(item.get("type")).lower() == "exception":
            raise MalformedEvent("exception without originalStart", event_id=item.get("id"))
        assert start.instant is not None
        raw = start.instant
    return When(instant=raw, timezone=zone_name)


def hydrate(item: Mapping[str, Any], master: Event) -> Event:
    """A skeletal occurrence (id, type, seriesMasterId, start, end) filled in from its master.

    Raises:
        MalformedEvent: its start or end cannot be read.
    """
    event_id = str(item["id"])
    etype = item.get("type") or "occurrence"
    kind = _KINDS.get(etype) or _KINDS.get(str(etype).lower(), Kind.OCCURRENCE)
    if master.start.all_day:
        sdate = _date_of(item.get("start"), what="start", event_id=event_id)
        edate = _date_of(item.get("end") or item.get("start"), what="end", event_id=event_id)
        start, end = When(date=sdate), When(date=max(edate, sdate + dt.timedelta(days=1)))
    else:
        tzname = master.start.timezone
        s = parse_local(item.get("start"), what="start", event_id=event_id)
        e = parse_local(item.get("end") or item.get("start"), what="end", event_id=event_id)
        start, end = When(instant=s, timezone=tzname), When(instant=e, timezone=tzname)
    original = _original_start(item, start, master, master.start.timezone)
    try:
        return Event(
            provider=master.provider,
            account=master.account,
            calendar_id=master.calendar_id,
            id=event_id,
            kind=Kind.EXCEPTION if kind is Kind.EXCEPTION else Kind.OCCURRENCE,
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
            etag=item.get("@odata.etag") or None,
            ical_uid=item.get("iCalUId") or None,
        )
    except (ValueError, TypeError) as exc:
        raise MalformedEvent(str(exc), event_id=event_id) from None
