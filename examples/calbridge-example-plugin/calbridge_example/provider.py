"""The example :class:`~calbridge.provider.Provider`: sync rounds over the events listing.

Cursor scheme ``example.events`` v1; its state is ``{"sync_token", "page_token"}``: a page's cursor
resumes the round right after it, the last page's cursor (page_token None) is the next round's.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp

from calbridge.cursor import Cursor
from calbridge.errors import (
    AuthError,
    CursorExpired,
    InvalidResponse,
    MalformedEvent,
    NotFound,
    RateLimited,
    TransientError,
)
from calbridge.export import parse_instant
from calbridge.model import Calendar, Change, Delete, Event, EventKey, Kind, Upsert, When, Window
from calbridge.provider import Capabilities, Expansion, MirrorView, Page, ProviderContext, Quarantined

from . import ExampleAuth

SCHEME, VERSION = "example.events", 1
PAGE_SIZE = 100


class ExampleProvider:
    """One configured ``example`` account. Singles only: nothing to expand."""

    capabilities = Capabilities()

    def __init__(self, ctx: ProviderContext) -> None:
        auth = ctx.account.auth
        if not isinstance(auth, ExampleAuth) or not ctx.account.base_url:
            raise TypeError("the example provider needs its parsed auth and a base_url")
        self._ctx = ctx
        self._token = auth.token
        self._base = ctx.account.base_url.rstrip("/")
        self._page_size = int(ctx.account.options.get("page_size", PAGE_SIZE))

    async def aclose(self) -> None:
        """Nothing to release: the session is borrowed."""

    async def _get(self, path: str, params: Mapping[str, str], what: str) -> dict[str, Any]:
        """One GET under the engine's retry policy; HTTP failures become calbridge's typed errors."""

        async def once() -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {self._token}"}
            ssl: Any = self._ctx.ssl if self._ctx.ssl is not None else True
            try:
                async with self._ctx.session.get(self._base + path, params=params, headers=headers, ssl=ssl) as resp:
                    body = await resp.read()
                    status, retry_after = resp.status, resp.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise TransientError(f"example {what}: {type(exc).__name__}", provider="example") from None
            if status == 200:
                data = json.loads(body)
                if not isinstance(data, dict):
                    raise InvalidResponse(f"example {what}: not an object", provider="example")
                return data
            kw: dict[str, Any] = {"provider": "example", "status": status}
            if status == 429:
                raise RateLimited(f"example {what}: slow down", retry_after=_seconds(retry_after), **kw)
            if status == 410:
                raise CursorExpired(f"example {what}: sync state expired", **kw)
            if status in (401, 403):
                raise AuthError(f"example {what}: credentials refused", **kw)
            if status == 404:
                raise NotFound(f"example {what}: not found", **kw)
            if status >= 500:
                raise TransientError(f"example {what}: HTTP {status}", **kw)
            raise InvalidResponse(f"example {what}: HTTP {status}", **kw)

        return await self._ctx.retry.call(once, what=f"example {what}")

    async def calendars(self) -> Sequence[Calendar]:
        data = await self._get("/calendars", {}, "calendars")
        return [Calendar(id=c["id"], name=c.get("name"), primary=i == 0) for i, c in enumerate(data["calendars"])]

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
            data = await self._get(f"/calendars/{calendar_id}/events", params, f"events {calendar_id}")
            changes: list[Change] = []
            quarantined: list[Quarantined] = []
            for item in data.get("items") or ():
                try:
                    changes.append(self._change(calendar_id, item))
                except MalformedEvent as exc:
                    quarantined.append(Quarantined(event_id=exc.event_id, error=str(exc), payload=json.dumps(item)))
            if data.get("next_page_token"):
                state = {**state, "page_token": data["next_page_token"]}
                yield Page(changes=changes, quarantined=quarantined, last=False,
                           cursor=Cursor(scheme=SCHEME, version=VERSION, state=state))  # fmt: skip
                continue
            if not data.get("next_sync_token"):
                raise InvalidResponse("example: last page without a sync token", provider="example")
            done = {"sync_token": data["next_sync_token"], "page_token": None}
            yield Page(changes=changes, quarantined=quarantined, last=True,
                       cursor=Cursor(scheme=SCHEME, version=VERSION, state=done))  # fmt: skip
            return

    def _change(self, calendar_id: str, item: Any) -> Change:
        account = self._ctx.account.name
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise MalformedEvent("example: an item without an id", event_id=None)
        if item.get("deleted"):
            return Delete(key=EventKey(account=account, calendar_id=calendar_id, id=item["id"]))
        try:
            start, end = parse_instant(item["start"]), parse_instant(item["end"])
            return Upsert(event=Event(provider="example", account=account, calendar_id=calendar_id, id=item["id"],
                                      kind=Kind.SINGLE, title=item.get("title"), start=When.at(start, "UTC"),
                                      end=When.at(end, "UTC")))  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedEvent(f"example: {type(exc).__name__}: {exc}", event_id=item["id"]) from None

    async def expand(
        self, calendar_id: str, series_ids: Sequence[str], *, window: Window, view: MirrorView
    ) -> AsyncIterator[Expansion]:
        """The example API has no recurring events: nothing ever needs expanding."""
        return
        yield  # an async generator that yields nothing


def _seconds(value: str | None) -> float | None:
    try:
        return None if value is None else max(float(value), 0.0)
    except ValueError:
        return None


