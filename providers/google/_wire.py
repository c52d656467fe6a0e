"""Google Calendar v3 response bodies → msgspec Structs (only the fields calbridge keeps; the rest is
skipped by the decoder), and the page decoders built on them with the toolkit.

RFC 3339 strings are parsed straight into datetimes. An events page is decoded in one typed pass;
when one item does not fit its Struct, :class:`~calbridge.toolkit.PageDecoder` decodes the items one
by one so that only that item is quarantined, with its exact JSON text.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from calbridge.toolkit import PageDecoder


class EventDateTime(msgspec.Struct, rename="camel", gc=False):
    date: dt.date | None = None
    date_time: dt.datetime | None = None
    time_zone: str | None = None


class GPerson(msgspec.Struct, rename="camel", frozen=True, gc=False):
    email: str | None = None
    display_name: str | None = None
    id: str | None = None
    self_: bool = msgspec.field(default=False, name="self")


class GAttendee(msgspec.Struct, rename="camel", frozen=True, gc=False):
    email: str | None = None
    display_name: str | None = None
    id: str | None = None
    response_status: str | None = None
    optional: bool = False
    organizer: bool = False
    resource: bool = False
    self_: bool = msgspec.field(default=False, name="self")


class EntryPoint(msgspec.Struct, rename="camel", gc=False):
    entry_point_type: str | None = None
    uri: str | None = None


class ConferenceData(msgspec.Struct, rename="camel", gc=False):
    entry_points: list[EntryPoint] = []


class GEvent(msgspec.Struct, rename="camel", gc=False):
    """The fields of an events resource calbridge keeps; the rest is skipped by the decoder."""

    id: str | None = None
    status: str | None = None
    summary: str | None = None
    description: str | None = None
    location: str | None = None
    start: EventDateTime | None = None
    end: EventDateTime | None = None
    recurrence: list[str] | None = None
    recurring_event_id: str | None = None
    original_start_time: EventDateTime | None = None
    organizer: GPerson | None = None
    attendees: tuple[GAttendee, ...] | None = None
    attendees_omitted: bool = False
    transparency: str | None = None
    visibility: str | None = None
    event_type: str | None = None
    hangout_link: str | None = None
    conference_data: ConferenceData | None = None
    html_link: str | None = None
    etag: str | None = None
    i_cal_u_i_d: str | None = msgspec.field(default=None, name="iCalUID")
    created: dt.datetime | None = None
    updated: dt.datetime | None = None


class EventsPage(msgspec.Struct, rename="camel", gc=False):
    items: list[GEvent] = []
    time_zone: str | None = None
    next_page_token: str | None = None
    next_sync_token: str | None = None


class CalendarEntry(msgspec.Struct, rename="camel"):
    id: str
    summary: str | None = None
    summary_override: str | None = None
    primary: bool = False
    time_zone: str | None = None
    access_role: str | None = None


class CalendarList(msgspec.Struct, rename="camel"):
    items: list[CalendarEntry] = []
    next_page_token: str | None = None


EVENTS = PageDecoder(EventsPage, GEvent, items="items", id_field="id")
"""events.list and events.instances pages."""
_calendar_list = msgspec.json.Decoder(CalendarList)


def decode_calendar_list(body: bytes) -> CalendarList:
    """A calendarList page (a bad one is refused whole: there is nothing to quarantine).

    Raises:
        msgspec.DecodeError, msgspec.ValidationError.
    """
    return _calendar_list.decode(body)
