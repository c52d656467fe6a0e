"""Helpers for the google provider tests: a dict-backed mirror that applies pages the way the engine
does, providers wired to an emulator, payload builders."""

from __future__ import annotations

import datetime as dt
from typing import Any

import aiohttp

from calbridge.config import AccountConfig, Settings
from calbridge.cursor import Cursor
from calbridge.model import Delete, Event, EventKey, Upsert, Window
from calbridge.provider import Page, Provider
from calbridge.retry import Retrier, RetryPolicy
from calbridge.testing.context import make_context
from calbridge.testing.server import ThreadedServer
from calbridge_providers.google import plugin
from calbridge_providers.google.emulator import GoogleEmulator

CAL = "alice@example.com"
WINDOW = Window(start=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), end=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))


class NoView:
    async def get(self, ids: Any) -> dict[str, Event]:
        return {}

    async def exceptions_of(self, series_ids: Any) -> list[Event]:
        return []


class Mirror:
    """What the engine would store for one calendar: apply pages, mark and sweep after a full listing."""

    def __init__(self) -> None:
        self.events: dict[str, Event] = {}
        self.quarantined: list[Any] = []
        self.pages: list[Page] = []

    def apply(self, page: Page) -> None:
        self.pages.append(page)
        self.quarantined.extend(page.quarantined)
        for change in page.changes:
            if isinstance(change, Upsert):
                self.events[change.event.id] = change.event
            else:
                assert isinstance(change, Delete)
                self.events.pop(change.key.id, None)
                for eid, ev in list(self.events.items()):
                    if ev.series_id == change.key.id:
                        del self.events[eid]

    async def round(self, provider: Provider, cursor: Cursor | None, *, stop_after: int | None = None) -> Cursor:
        """One sync round; a full listing sweeps what it did not see. Returns the last cursor."""
        seen: set[str] = set()
        last = cursor
        async for page in provider.sync(CAL, cursor, window=WINDOW, view=NoView()):
            self.apply(page)
            seen.update(c.event.id for c in page.changes if isinstance(c, Upsert))
            seen.update(c.key.id for c in page.changes if isinstance(c, Delete))
            last = page.cursor
            if page.last and cursor is None:
                for eid in set(self.events) - seen:
                    del self.events[eid]
            if stop_after is not None and len(self.pages) >= stop_after:
                break
        assert last is not None
        return last

    def live(self) -> dict[str, Event]:
        return {k: v for k, v in self.events.items() if v.status.value != "cancelled"}


def account_for(
    emu: GoogleEmulator, srv: ThreadedServer, *, auth: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> AccountConfig:  # fmt: skip
    entry = emu.account_config(name="acme-google", base_url=srv.url, ca_file=None)
    raw_auth = auth or entry["auth"]
    parsed = plugin.parse_auth(raw_auth, account=entry, where="accounts[0].auth")
    return AccountConfig(name="acme-google", provider="google", auth=parsed, auth_kind=raw_auth["kind"],
                         base_url=entry["base_url"], options=options or {})  # fmt: skip


def fast_retry(attempts: int = 4) -> Retrier:
    return Retrier(RetryPolicy(attempts=attempts, base_backoff=0.01, max_backoff=0.05))


def make_provider(
    emu: GoogleEmulator, srv: ThreadedServer, session: aiohttp.ClientSession, *, settings: Settings | None = None,
    auth: dict[str, Any] | None = None, clock: Any = None, options: dict[str, Any] | None = None,
    secrets: Any = None,
) -> Provider:  # fmt: skip
    account = account_for(emu, srv, auth=auth, options=options)
    ctx = make_context(account, session, settings=settings, retry=fast_retry(), clock=clock, secrets=secrets)
    return plugin.create(ctx)


def timed(
    title: str, start: dt.datetime, minutes: int = 30, zone: str = "Europe/Zurich", **extra: Any
) -> dict[str, Any]:
    from zoneinfo import ZoneInfo

    local = start.astimezone(ZoneInfo(zone))
    end = (start + dt.timedelta(minutes=minutes)).astimezone(ZoneInfo(zone))  # not wall-clock: DST
    return {
        "summary": title,
        "start": {"dateTime": local.isoformat(), "timeZone": zone},
        "end": {"dateTime": end.isoformat(), "timeZone": zone},
        **extra,
    }


def key(eid: str) -> EventKey:
    return EventKey(account="acme-google", calendar_id=CAL, id=eid)
