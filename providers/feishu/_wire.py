"""Feishu event and attendee pages → msgspec Structs (only the fields calbridge keeps).

The client decodes ``{code, msg, data}`` with ``data`` straight into :class:`EventsData` in one pass
(see ``_client.decode_data``). When an item does not fit, the body is decoded again with each item
kept as raw JSON and the items decoded one by one, so that exactly the bad one is quarantined, with
its own JSON text, while the rest of the page lands. The text of an item that decoded but could not
be normalized is fetched the same way, on demand (rare).

Fields whose absence means something (``_expand`` takes them from the series master then) are
``UNSET`` when absent.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from calbridge.provider import Quarantined

from ._client import Envelope

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


class _RawData(msgspec.Struct, gc=False):
    items: list[msgspec.Raw] | None = None
    has_more: bool | None = None
    page_token: str | None = None
    sync_token: str | None = None


class _IdOnly(msgspec.Struct):
    event_id: Any = None


EVENTS = msgspec.json.Decoder(Envelope[EventsData])
ATTENDEES = msgspec.json.Decoder(Envelope[AttendeesData])
_raw = msgspec.json.Decoder(Envelope[_RawData])
_event_decoder = msgspec.json.Decoder(FEvent)
_attendee_decoder = msgspec.json.Decoder(FAttendee)


def item_text(raw: msgspec.Raw) -> str:
    """An item's own JSON text, as the quarantine keeps it."""
    return bytes(raw).decode("utf-8", "replace")[:PAYLOAD_LIMIT]


def _id_of(raw: msgspec.Raw) -> str | None:
    try:
        value = msgspec.json.decode(raw, type=_IdOnly).event_id
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return value if isinstance(value, str) and value else None


def _raw_items(body: bytes) -> list[msgspec.Raw]:
    data = _raw.decode(body).data
    return (data.items or []) if data is not None else []


class DecodedPage:
    """One decoded events page: ``events`` (the items that fit), ``quarantined`` (those that did not)."""

    __slots__ = ("_body", "_positions", "_raw", "events", "has_more", "page_token", "quarantined", "sync_token")

    def __init__(
        self,
        body: bytes,
        data: EventsData | _RawData,
        events: list[FEvent],
        *,
        quarantined: list[Quarantined] | None = None,
        positions: list[int] | None = None,
        raw: list[msgspec.Raw] | None = None,
    ) -> None:
        self._body = body
        self.events = events
        self.quarantined = quarantined if quarantined is not None else []
        self.has_more = bool(data.has_more)
        self.page_token = data.page_token or ""
        self.sync_token = data.sync_token or ""
        self._positions = positions  # index in ``items`` of each of ``events`` (None: the same)
        self._raw = raw

    def payload(self, k: int) -> str:
        """The exact JSON text of ``events[k]`` (decodes the body again the first time: rare)."""
        raw = self._raw
        if raw is None:
            raw = self._raw = _raw_items(self._body)
        return item_text(raw[k if self._positions is None else self._positions[k]])


def decode_events(body: bytes, data: EventsData | None) -> DecodedPage:
    """An events page from ``_client.get_data``: ``data`` as decoded, or None to go item by item.

    Raises:
        msgspec.DecodeError, msgspec.ValidationError: the body is no events page (``items`` not a list).
    """
    if data is not None:
        return DecodedPage(body, data, data.items or [])
    raw_data = _raw.decode(body).data or _RawData()
    events: list[FEvent] = []
    positions: list[int] = []
    quarantined: list[Quarantined] = []
    for index, raw in enumerate(raw_data.items or ()):
        try:
            events.append(_event_decoder.decode(raw))
        except msgspec.ValidationError as exc:
            quarantined.append(Quarantined(event_id=_id_of(raw), error=str(exc), payload=item_text(raw)))
            continue
        positions.append(index)
    return DecodedPage(body, raw_data, events, quarantined=quarantined, positions=positions, raw=raw_data.items or [])


def decode_attendees(body: bytes, data: AttendeesData | None) -> AttendeesData:
    """An attendee list page; items that do not fit are skipped (as non-objects always were).

    Raises:
        msgspec.DecodeError, msgspec.ValidationError: the body is no attendee page.
    """
    if data is not None:
        return data
    raw_data = _raw.decode(body).data or _RawData()
    items: list[FAttendee] = []
    for raw in raw_data.items or ():
        try:
            items.append(_attendee_decoder.decode(raw))
        except msgspec.ValidationError:
            continue
    return AttendeesData(items=items, has_more=raw_data.has_more, page_token=raw_data.page_token)
