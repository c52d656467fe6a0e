"""Graph response bodies → msgspec Structs (only the fields calbridge keeps; the rest is skipped by
the decoder), and the page decoders built on them with the toolkit.

A page is decoded in one typed pass. When an item does not fit its Struct,
:class:`~calbridge.toolkit.PageDecoder` decodes the items one by one so that exactly the bad one is
quarantined, with its own JSON text, while the rest of the page lands; the exact text of an item
that decoded but could not be normalized is fetched the same way, on demand (rare).

Date-times stay strings: Graph writes seven fractional digits and calbridge truncates to the second,
where msgspec would round (``…59.9999999`` would become the next second).
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from calbridge.toolkit import PageDecoder


class DateTimeTimeZone(msgspec.Struct, rename="camel", gc=False):
    date_time: str | None = None
    time_zone: str | None = None


class EmailAddress(msgspec.Struct, frozen=True, gc=False):
    address: str | None = None
    name: str | None = None


class Recipient(msgspec.Struct, rename="camel", gc=False):
    email_address: EmailAddress | None = None


class ResponseStatus(msgspec.Struct, frozen=True, gc=False):
    response: str | None = None


class GAttendee(msgspec.Struct, rename="camel", frozen=True, gc=False):
    type: str | None = None
    status: ResponseStatus | None = None
    email_address: EmailAddress | None = None


class ItemBody(msgspec.Struct, rename="camel", gc=False):
    content_type: str | None = None
    content: str | None = None


class Location(msgspec.Struct, rename="camel", gc=False):
    display_name: str | None = None


class OnlineMeeting(msgspec.Struct, rename="camel", gc=False):
    join_url: str | None = None


class GEvent(msgspec.Struct, rename="camel", gc=False):
    """One Graph event resource (single, occurrence, exception, series master or ``@removed`` stub)."""

    id: str | None = None
    type: str | None = None
    # UNSET when absent: a skeletal occurrence has no subject (and is hydrated from its master).
    subject: str | UnsetType | None = UNSET
    # Any value (even null) marks a removal; UNSET when absent.
    removed: Any = msgspec.field(default=UNSET, name="@removed")
    start: DateTimeTimeZone | None = None
    end: DateTimeTimeZone | None = None
    is_all_day: bool | None = None
    is_cancelled: bool | None = None
    original_start_time_zone: str | None = None
    series_master_id: str | None = None
    original_start: str | None = None
    recurrence: Any = None  # a patternedRecurrence mapping (series masters only), read by _recurrence
    organizer: Recipient | None = None
    attendees: tuple[GAttendee, ...] | None = None
    response_status: ResponseStatus | None = None  # the mailbox's own answer
    is_organizer: bool | None = None
    location: Location | None = None
    online_meeting: OnlineMeeting | None = None
    online_meeting_url: str | None = None
    show_as: str | None = None
    sensitivity: str | None = None
    body: ItemBody | None = None
    web_link: str | None = None
    created_date_time: str | None = None
    last_modified_date_time: str | None = None
    etag: str | None = msgspec.field(default=None, name="@odata.etag")
    change_key: str | None = None
    i_cal_u_id: str | None = msgspec.field(default=None, name="iCalUId")


class EventsPage(msgspec.Struct, gc=False):
    """A calendarView delta or instances page: ``value`` and the links (checked by the provider)."""

    value: list[GEvent] | None = None
    next_link: Any = msgspec.field(default=None, name="@odata.nextLink")
    delta_link: Any = msgspec.field(default=None, name="@odata.deltaLink")


class CalendarEntry(msgspec.Struct, rename="camel"):
    id: Any = None
    name: Any = None
    is_default_calendar: Any = None
    can_edit: Any = None


class CalendarList(msgspec.Struct):
    value: list[CalendarEntry] | None = None
    next_link: Any = msgspec.field(default=None, name="@odata.nextLink")


EVENTS = PageDecoder(EventsPage, GEvent, items="value", id_field="id")
"""calendarView delta and instances pages; ``decode`` raises msgspec.DecodeError (not JSON) or
msgspec.ValidationError (not an object, or ``value`` not a list)."""
_calendar_list = msgspec.json.Decoder(CalendarList)


def decode_event(body: bytes) -> GEvent:
    """One event resource (``GET /events/{id}``).

    Raises:
        msgspec.DecodeError: not JSON. msgspec.ValidationError: not an event object.
    """
    return EVENTS.decode_item(body)


def decode_calendar_list(body: bytes) -> CalendarList:
    """A ``/calendars`` page (a bad one is refused whole: there is nothing to quarantine).

    Raises:
        msgspec.DecodeError, msgspec.ValidationError.
    """
    return _calendar_list.decode(body)
