"""Graph response bodies → msgspec Structs (only the fields calbridge keeps; the rest is skipped).

A page is decoded in one typed pass. When an item does not fit its Struct, the page is decoded again
with each item kept as raw JSON and the items decoded one by one, so that exactly the bad one is
quarantined, with its own JSON text, while the rest of the page lands. The exact text of an item that
decoded but could not be normalized is fetched the same way, on demand (rare).

Date-times stay strings: Graph writes seven fractional digits and calbridge truncates to the second,
where msgspec would round (``…59.9999999`` would become the next second).
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from calbridge.provider import Quarantined

PAYLOAD_LIMIT = 100_000  # characters of an item's JSON text kept with its quarantine


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


class _Page(msgspec.Struct, gc=False):
    value: list[GEvent] | None = None
    next_link: Any = msgspec.field(default=None, name="@odata.nextLink")
    delta_link: Any = msgspec.field(default=None, name="@odata.deltaLink")


class _RawPage(msgspec.Struct, gc=False):
    value: list[msgspec.Raw] | None = None
    next_link: Any = msgspec.field(default=None, name="@odata.nextLink")
    delta_link: Any = msgspec.field(default=None, name="@odata.deltaLink")


class _IdOnly(msgspec.Struct):
    id: Any = None


_page_decoder = msgspec.json.Decoder(_Page)
_raw_page_decoder = msgspec.json.Decoder(_RawPage)
_event_decoder = msgspec.json.Decoder(GEvent)


def item_text(raw: msgspec.Raw) -> str:
    """An item's own JSON text, as the quarantine keeps it."""
    return bytes(raw).decode("utf-8", "replace")[:PAYLOAD_LIMIT]


def _id_of(raw: msgspec.Raw) -> str | None:
    try:
        value = msgspec.json.decode(raw, type=_IdOnly).id
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return value if isinstance(value, str) and value else None


class DecodedPage:
    """One decoded page: ``events`` (the items that fit), ``quarantined`` (those that did not), the links."""

    __slots__ = ("_body", "_positions", "_raw", "delta_link", "events", "next_link", "quarantined")

    def __init__(
        self,
        body: bytes,
        events: list[GEvent] | None,
        *,
        next_link: Any,
        delta_link: Any,
        quarantined: list[Quarantined] | None = None,
        positions: list[int] | None = None,
        raw: list[msgspec.Raw] | None = None,
    ) -> None:
        self._body = body
        self.events = events  # None: the page has no ``value`` list
        self.quarantined = quarantined if quarantined is not None else []
        self.next_link = next_link
        self.delta_link = delta_link
        self._positions = positions  # index in ``value`` of each of ``events`` (None: the same)
        self._raw = raw

    def payload(self, k: int) -> str:
        """The exact JSON text of ``events[k]`` (decodes the page again the first time: rare)."""
        raw = self._raw
        if raw is None:
            raw = self._raw = _raw_page_decoder.decode(self._body).value or []
        return item_text(raw[k if self._positions is None else self._positions[k]])


def decode_page(body: bytes) -> DecodedPage:
    """A ``{value, @odata.nextLink, @odata.deltaLink}`` body → its events, off-shape items quarantined.

    Raises:
        msgspec.DecodeError: not JSON. msgspec.ValidationError: not an object, or ``value`` not a list.
    """
    try:
        page = _page_decoder.decode(body)
        return DecodedPage(body, page.value, next_link=page.next_link, delta_link=page.delta_link)
    except msgspec.ValidationError:
        raw_page = _raw_page_decoder.decode(body)  # one item is off-shape: find it, keep the rest
    if raw_page.value is None:
        return DecodedPage(body, None, next_link=raw_page.next_link, delta_link=raw_page.delta_link)
    events: list[GEvent] = []
    positions: list[int] = []
    quarantined: list[Quarantined] = []
    for index, raw in enumerate(raw_page.value):
        try:
            events.append(_event_decoder.decode(raw))
        except msgspec.ValidationError as exc:
            quarantined.append(Quarantined(event_id=_id_of(raw), error=str(exc), payload=item_text(raw)))
            continue
        positions.append(index)
    return DecodedPage(
        body,
        events,
        next_link=raw_page.next_link,
        delta_link=raw_page.delta_link,
        quarantined=quarantined,
        positions=positions,
        raw=raw_page.value,
    )


def decode_event(body: bytes) -> GEvent:
    """One event resource (``GET /events/{id}``).

    Raises:
        msgspec.DecodeError: not JSON. msgspec.ValidationError: not an event object.
    """
    return _event_decoder.decode(body)
