"""The example :class:`~calbridge.provider.Provider`: sync rounds over the events listing.

Cursor scheme ``example.events`` v1; its state is ``{"sync_token", "page_token"}``: a page's cursor
resumes the round right after it, the last page's cursor (page_token None) is the next round's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec

from calbridge.cursor import Cursor
from calbridge.errors import (
    AuthError,
    CursorExpired,
    InvalidResponse,
    MalformedEvent,
    NotFound,
    ProviderError,
    RateLimited,
    TransientError,
)
from calbridge.export import parse_instant
from calbridge.model import Calendar, Change, Delete, Event, EventKey, Kind, Upsert, When, Window
from calbridge.provider import Capabilities, Expansion, MirrorView, Page, ProviderContext
from calbridge.toolkit import HttpClient, PageDecoder, Response, StaticTokenSource, request_timeout, retry_after_seconds

from . import ExampleAuth
from .push import ExampleSubscriptions

SCHEME, VERSION = "example.events", 1
PAGE_SIZE = 100


class Item(msgspec.Struct):
    """One event of the listing, as the wire has it (``deleted`` marks a removal)."""

    id: str
    title: str | None = None
    start: str | None = None
    end: str | None = None
    deleted: bool = False


class EventsPage(msgspec.Struct):
    items: list[Item] = []
    next_page_token: str | None = None
    next_sync_token: str | None = None


class CalendarEntry(msgspec.Struct):
    id: str
    name: str | None = None


class Calendars(msgspec.Struct):
    calendars: list[CalendarEntry] = []


EVENTS = PageDecoder(EventsPage, Item)  # one typed pass; an off-shape item is quarantined alone


def error_for(response: Response, what: str) -> ProviderError | None:
    """The example API's error table: the typed error a response means (None: success)."""
    status = response.status
    if 200 <= status < 300:
        return None
    kw: dict[str, Any] = {"provider": "example", "status": status}
    if status == 429:
        return RateLimited(f"{what}: slow down", retry_after=retry_after_seconds(response.headers.get("Retry-After")),
                           **kw)  # fmt: skip
    if status == 410:
        return CursorExpired(f"{what}: sync state expired", **kw)
    if status in (401, 403):
        return AuthError(f"{what}: credentials refused", **kw)
    if status == 404:
        return NotFound(f"{what}: not found", **kw)
    if status >= 500:
        return TransientError(f"{what}: HTTP {status}", **kw)
    return InvalidResponse(f"{what}: HTTP {status}", **kw)


class ExampleProvider(ExampleSubscriptions):
    """One configured ``example`` account. Singles only: nothing to expand. It can push
    (:class:`~calbridge.push.PushProvider`, from :class:`~calbridge_example.push.ExampleSubscriptions`)."""

    capabilities = Capabilities()

    def __init__(self, ctx: ProviderContext) -> None:
        auth = ctx.account.auth
        if not isinstance(auth, ExampleAuth) or not ctx.account.base_url:
            raise TypeError("the example provider needs its parsed auth and a base_url")
        self._ctx = ctx
        options = ctx.account.options
        self._page_size = int(options.get("page_size", PAGE_SIZE))
        # Retries, Retry-After, the deadline, the account's TLS, the origin check: the toolkit's.
        self._http = HttpClient(
            ctx, provider="example", base_url=ctx.account.base_url, errors=error_for,
            tokens=StaticTokenSource(auth.token), timeout=request_timeout(options, provider="example"),
        )  # fmt: skip
        super().__init__(self._http, account=ctx.account.name)

    async def aclose(self) -> None:
        """Nothing to release: the session is borrowed."""

    async def calendars(self) -> Sequence[Calendar]:
        decode = msgspec.json.Decoder(Calendars).decode
        data = await self._http.request_decoded("GET", "/calendars", decode, what="calendars")
        return [Calendar(id=c.id, name=c.name, primary=i == 0) for i, c in enumerate(data.calendars)]

    async def sync(
        self, calendar_id: str, cursor: Cursor | None, *, window: Window, view: MirrorView
    ) -> AsyncIterator[Page]:
        """One round from ``cursor`` (None: a full listing). Raises CursorExpired on 410."""
        state: dict[str, Any] = {"sync_token": None, "page_token": None}
        if cursor is not None:
            state.update(cursor.require(SCHEME, VERSION))
        while True:
            params = {"limit": str(self._page_size)}
            if state["page_token"]:
                params["page_token"] = state["page_token"]
            elif state["sync_token"]:
                params["sync_token"] = state["sync_token"]
            what = f"events {calendar_id}"
            page = await self._http.request_decoded("GET", f"/calendars/{calendar_id}/events", EVENTS.decode,
                                                    params=params, what=what)  # fmt: skip
            # Items that did not fit, or fail to normalize, are quarantined with their JSON text.
            changes: list[Change]
            changes, quarantined = page.map_items(lambda item: self._change(calendar_id, item))
            if page.page.next_page_token:
                state = {**state, "page_token": page.page.next_page_token}
                yield Page(changes=changes, quarantined=quarantined, last=False,
                           cursor=Cursor(scheme=SCHEME, version=VERSION, state=state))  # fmt: skip
                continue
            if not page.page.next_sync_token:
                raise InvalidResponse("example: last page without a sync token", provider="example")
            done = {"sync_token": page.page.next_sync_token, "page_token": None}
            yield Page(changes=changes, quarantined=quarantined, last=True,
                       cursor=Cursor(scheme=SCHEME, version=VERSION, state=done))  # fmt: skip
            return

    def _change(self, calendar_id: str, item: Item) -> Change:
        account = self._ctx.account.name
        if item.deleted:
            return Delete(key=EventKey(account=account, calendar_id=calendar_id, id=item.id))
        if item.start is None or item.end is None:
            raise MalformedEvent("example: an event without start or end", event_id=item.id)
        try:
            start, end = parse_instant(item.start), parse_instant(item.end)
            return Upsert(event=Event(provider="example", account=account, calendar_id=calendar_id, id=item.id,
                                      kind=Kind.SINGLE, title=item.title, start=When.at(start, "UTC"),
                                      end=When.at(end, "UTC")))  # fmt: skip
        except (TypeError, ValueError) as exc:
            raise MalformedEvent(f"example: {type(exc).__name__}: {exc}", event_id=item.id) from None

    async def expand(
        self, calendar_id: str, series_ids: Sequence[str], *, window: Window, view: MirrorView
    ) -> AsyncIterator[Expansion]:
        """The example API has no recurring events: nothing ever needs expanding."""
        return
        yield  # an async generator that yields nothing
