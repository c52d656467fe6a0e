"""The fake provider: pages out of a :class:`FakeServer` file, with its scripted faults."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
from collections.abc import AsyncIterator, Sequence
from typing import Any

from dateutil.rrule import rruleset, rrulestr

from ...cursor import Cursor
from ...errors import (
    AuthError,
    CursorExpired,
    MalformedEvent,
    NotFound,
    RateLimited,
    TransientError,
)
from ...export import event_from_dict, format_instant
from ...model import Calendar, Change, Delete, Event, EventKey, Kind, Upsert, When, Window
from ...provider import Capabilities, Expansion, MirrorView, Page, ProviderContext, Quarantined
from ...zones import zone
from ._server import FakeServer

SCHEME, VERSION = "fake", 1


class FakeProvider:
    capabilities = Capabilities()

    def __init__(self, ctx: ProviderContext) -> None:
        self._ctx = ctx
        self._server = FakeServer(str(ctx.account.options["state"]))
        self._pages_served = 0

    async def aclose(self) -> None:
        return None

    async def _request(self, what: str) -> dict[str, Any]:
        async def once() -> dict[str, Any]:
            fault = await asyncio.to_thread(self._server.take_request, what)
            if fault is not None:
                kind = fault["kind"]
                if kind == "rate_limit":
                    raise RateLimited("fake: slow down", retry_after=fault.get("retry_after"), provider="fake")
                if kind == "transient":
                    raise TransientError("fake: 503 service unavailable", provider="fake", status=503)
                if kind == "auth":
                    raise AuthError("fake: credentials refused", provider="fake", status=401)
                if kind == "not_found":
                    raise NotFound("fake: calendar not found", provider="fake", status=404)
            return await asyncio.to_thread(self._server.read)

        return await self._ctx.retry.call(once, what=f"fake {what}")

    async def calendars(self) -> Sequence[Calendar]:
        state = await self._request("calendars")
        return [Calendar(id=c, name=c, primary=i == 0) for i, c in enumerate(sorted(state["calendars"]))]

    def _event(self, calendar_id: str, raw: dict[str, Any]) -> Event:
        if raw.get("malformed"):
            raise MalformedEvent(f"fake: malformed payload {raw.get('id')!r}", event_id=raw.get("id"))
        data = {**raw, "provider": "fake", "account": self._ctx.account.name, "calendar_id": calendar_id}
        try:
            return event_from_dict(data)
        except (KeyError, ValueError, TypeError) as exc:
            raise MalformedEvent(f"fake: {type(exc).__name__}: {exc}", event_id=raw.get("id")) from exc

    def _maybe_die(self, state: dict[str, Any]) -> None:
        # Scripted crash between pages: the engine has committed every page yielded so far.
        limit = state.get("kill_after_pages")
        if limit is not None and self._pages_served >= int(limit):
            os.kill(os.getpid(), signal.SIGKILL)

    async def sync(
        self, calendar_id: str, cursor: Cursor | None, *, window: Window, view: MirrorView
    ) -> AsyncIterator[Page]:
        pos: dict[str, Any] = (
            {"mode": "full", "after": "", "snap": None} if cursor is None else dict(cursor.require(SCHEME, VERSION))
        )
        while True:
            state = await self._request(f"list {calendar_id}")
            self._maybe_die(state)
            if pos["mode"] == "inc" and pos["seq"] < state["expired_before"]:
                raise CursorExpired("fake: sync token expired", provider="fake", status=410)
            cal = state["calendars"].get(calendar_id)
            if cal is None:
                raise NotFound(f"fake: no calendar {calendar_id!r}", provider="fake", status=404)
            size = int(state["page_size"])
            changes: list[Change] = []
            bad: list[Quarantined] = []
            if pos["mode"] == "full":
                snap = state["seq"] if pos["snap"] is None else pos["snap"]
                ids = sorted(i for i in cal["events"] if i > pos["after"])
                chunk = ids[:size]
                last = len(ids) <= size
                for event_id in chunk:
                    self._convert(calendar_id, cal["events"][event_id], changes, bad)
                nxt = {"mode": "inc", "seq": snap} if last else {"mode": "full", "after": chunk[-1], "snap": snap}
            else:
                log = sorted((seq, i) for i, seq in cal["log"].items() if seq > pos["seq"])
                chunk_log = log[:size]
                last = len(log) <= size
                for _, event_id in chunk_log:
                    raw = cal["events"].get(event_id)
                    if raw is None:
                        changes.append(
                            Delete(key=EventKey(account=self._ctx.account.name, calendar_id=calendar_id, id=event_id))
                        )
                    else:
                        self._convert(calendar_id, raw, changes, bad)
                top = chunk_log[-1][0] if chunk_log else pos["seq"]
                nxt = {"mode": "inc", "seq": state["seq"] if last else top}
            pos = nxt
            self._pages_served += 1
            yield Page(
                changes=changes, cursor=Cursor(scheme=SCHEME, version=VERSION, state=pos), last=last, quarantined=bad
            )
            if last:
                return

    def _convert(self, calendar_id: str, raw: dict[str, Any], changes: list[Change], bad: list[Quarantined]) -> None:
        try:
            changes.append(Upsert(event=self._event(calendar_id, raw)))
        except MalformedEvent as exc:
            bad.append(Quarantined(event_id=exc.event_id, error=str(exc), payload=json.dumps(raw)))

    async def expand(
        self, calendar_id: str, series_ids: Sequence[str], *, window: Window, view: MirrorView
    ) -> AsyncIterator[Expansion]:
        state = await self._request(f"expand {calendar_id}")
        events = state["calendars"].get(calendar_id, {}).get("events", {})
        for sid in series_ids:
            raw = events.get(sid)
            if raw is None:  # gone on the server: no occurrences, as Google and Graph answer
                yield Expansion(series_ids=(sid,), window=window, occurrences=())
                continue
            master = self._event(calendar_id, raw)
            yield Expansion(series_ids=(sid,), window=window, occurrences=_occurrences(master, window))


def _occurrences(master: Event, window: Window) -> list[Event]:
    """Expand a master's RRULE/EXDATE lines with dateutil, in its zone (DST-correct)."""
    duration = master.end.utc() - master.start.utc()
    if master.start.all_day:
        assert master.start.date is not None
        dtstart = dt.datetime.combine(master.start.date, dt.time())
    else:
        tz = zone(master.start.timezone or "UTC")
        dtstart = master.start.utc().astimezone(tz).replace(tzinfo=None)
    rules = rruleset()
    for line in master.recurrence:
        if line.startswith("RRULE:"):
            body = line[6:]
            if not master.start.all_day:
                # RRULE UNTIL is UTC; dateutil wants it in the same (floating) frame as dtstart.
                parts = []
                for part in body.split(";"):
                    if part.startswith("UNTIL=") and part.endswith("Z"):
                        until = dt.datetime.strptime(part[6:-1] + "+0000", "%Y%m%dT%H%M%S%z")
                        part = "UNTIL=" + until.astimezone(tz).strftime("%Y%m%dT%H%M%S")
                    parts.append(part)
                body = ";".join(parts)
            rules.rrule(rrulestr(body, dtstart=dtstart))  # type: ignore[arg-type]
        elif line.startswith("EXDATE:"):
            value = line[7:]
            if master.start.all_day:
                rules.exdate(dt.datetime.strptime(value + "+0000", "%Y%m%d%z").replace(tzinfo=None))
            else:
                stamp = dt.datetime.strptime(value[:-1] + "+0000", "%Y%m%dT%H%M%S%z")
                rules.exdate(stamp.astimezone(tz).replace(tzinfo=None))
    out: list[Event] = []
    for local in rules:
        if master.start.all_day:
            start = When.on(local.date())
            end = When.on(local.date() + duration)
            utc_start = start.utc()
        else:
            utc_start = local.replace(tzinfo=tz).astimezone(dt.UTC)
            start = When.at(utc_start, master.start.timezone)
            end = When.at(utc_start + duration, master.end.timezone)
        if utc_start >= window.end:
            break
        if not window.overlaps(utc_start, utc_start + duration):
            continue
        out.append(
            Event(
                provider=master.provider,
                account=master.account,
                calendar_id=master.calendar_id,
                id=f"{master.id}_{format_instant(utc_start).replace('-', '').replace(':', '')}",
                kind=Kind.OCCURRENCE,
                series_id=master.id,
                original_start=start,
                status=master.status,
                title=master.title,
                description=master.description,
                location=master.location,
                start=start,
                end=end,
                organizer=master.organizer,
                attendees=master.attendees,
                show_as=master.show_as,
                visibility=master.visibility,
                ical_uid=master.ical_uid,
            )
        )
    return out
