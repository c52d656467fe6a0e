"""Feishu response bodies → msgspec Structs (only the fields calbridge keeps; the rest is skipped by
the decoder), and the page decoders built on them with the toolkit.

Business APIs answer ``{"code": 0, "msg": "success", "data": {...}}``: an events or attendee page is
the whole envelope decoded in one typed pass, ``data`` included (``_client`` reads ``code`` before
the page is used). When one item does not fit its Struct, :class:`~calbridge.toolkit.PageDecoder`
decodes the items one by one so that exactly that item is quarantined, with its own JSON text,
while the rest of the page lands.

Fields whose absence means something (``_expand`` takes them from the series master then) are
``UNSET`` when absent.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from calbridge.toolkit import DecodedPage, PageDecoder

PAYLOAD_LIMIT = 20_000  # characters of an item's JSON text kept with its quarantine


class FTime(msgspec.Struct, gc=False):
    date: str | None = None
    timestamp: str | int | None = None  # Unix seconds, as a string on the wire
    timezone: str | None = None


class FLocation(msgspec.Struct, gc=False):
    name: str | None = None
    address: str | None = None


class FOrganizer(msgspec.Struct, gc=False):
    user_id: str | None = None
    display_name: str | None = None


class FVchat(msgspec.Struct, gc=False):
    meeting_url: str | None = None


class FAttendee(msgspec.Struct, gc=False):
    type: str | None = None
    attendee_id: str | None = None
    user_id: str | None = None
    chat_id: str | None = None
    room_id: str | None = None
    third_party_email: str | None = None
    display_name: str | None = None
    rsvp_status: str | None = None
    is_optional: bool | None = None
    is_organizer: bool | None = None


class FEvent(msgspec.Struct, gc=False):
    """One item of the events list, get, instances or instance_view APIs."""

    event_id: str | None = None
    summary: str | None = None
    description: str | None = None
    start_time: FTime | None = None
    end_time: FTime | None = None
    status: str | None = None
    is_exception: bool | None = None
    recurring_event_id: str | None = None
    recurrence: str | None = None
    location: FLocation | None = None
    event_organizer: FOrganizer | UnsetType | None = UNSET
    vchat: FVchat | UnsetType | None = UNSET
    free_busy_status: str | UnsetType | None = UNSET
    visibility: str | UnsetType | None = UNSET
    attendees: list[FAttendee] | UnsetType | None = UNSET
    app_link: str | None = None
    create_time: str | int | None = None


class EventsData(msgspec.Struct, gc=False):
    items: list[FEvent] | None = None
    has_more: bool | None = None
    page_token: str | None = None
    sync_token: str | None = None


class AttendeesData(msgspec.Struct, gc=False):
    items: list[FAttendee] | None = None
    has_more: bool | None = None
    page_token: str | None = None


class EventsEnvelope(msgspec.Struct, gc=False):
    """An events list, instances or instance_view answer: ``code`` and ``msg`` as sent (any JSON)."""

    code: Any = None
    msg: Any = None
    data: EventsData | None = None


class AttendeesEnvelope(msgspec.Struct, gc=False):
    """An attendee list answer."""

    code: Any = None
    msg: Any = None
    data: AttendeesData | None = None


EVENTS = PageDecoder(EventsEnvelope, FEvent, items="data.items", id_field="event_id", payload_limit=PAYLOAD_LIMIT)
"""Events list, instances and instance_view pages."""
ATTENDEES = PageDecoder(AttendeesEnvelope, FAttendee, items="data.items", id_field="attendee_id",
                        payload_limit=PAYLOAD_LIMIT)  # fmt: skip
"""Attendee list pages (an item that does not fit is skipped: attendees are not quarantined)."""

EventsPage = DecodedPage[EventsEnvelope, FEvent]
AttendeesPage = DecodedPage[AttendeesEnvelope, FAttendee]
_NO_EVENTS = EventsData()
_NO_ATTENDEES = AttendeesData()


def events_data(page: EventsPage) -> EventsData:
    """The page-level fields of an events page (``has_more``, tokens); an empty one when ``data`` was absent."""
    return page.page.data or _NO_EVENTS


def attendees_data(page: AttendeesPage) -> AttendeesData:
    """The page-level fields of an attendee page; an empty one when ``data`` was absent."""
    return page.page.data or _NO_ATTENDEES
