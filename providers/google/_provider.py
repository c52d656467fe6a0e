"""The google :class:`~calbridge.provider.Provider`: calendarList discovery, events.list sync rounds,
events.instances expansion, and push channels (``_push``).

Cursor scheme ``google.events`` v1; its state holds ``syncToken`` (``None`` on a full listing),
``pageToken`` (set mid-round) and ``timeMin`` (the full listing's history floor), so a stored
mid-round cursor repeats exactly the same query with the next page token, as Google requires.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from typing import cast

import attrs

from calbridge.cursor import Cursor
from calbridge.errors import InvalidResponse, NotFound
from calbridge.model import Calendar, Event, Kind, Status, Upsert, When, Window
from calbridge.provider import Capabilities, Expansion, MirrorView, Page, ProviderContext, Quarantined
from calbridge.toolkit import Coercions, DecodedPage
from calbridge.zones import canonical_zone

from ._auth import token_source
from ._client import GoogleClient
from ._config import DEFAULT_BASE_URL, parse_options
from ._convert import ConvertedPage, convert_page
from ._push import GooglePush
from ._wire import EventsPage, GEvent

SCHEME = "google.events"
VERSION = 1
PAGE_SIZE = "2500"
FAR_FUTURE = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)


def _rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _described(stub: Event, master: Event) -> Event | None:
    """``stub`` titled and sized after ``master`` (None when they cannot match: all-day vs timed),
    with its series' iCalUID (a cancelled stub carries only its id and slot)."""
    if master.start.all_day != stub.start.all_day:
        return None
    length = master.end.utc() - master.start.utc()
    if stub.start.date is not None:
        end = When.on(stub.start.date + dt.timedelta(days=length.days))
    else:
        end = When.at(stub.start.utc() + length, stub.start.timezone)
    return attrs.evolve(stub, title=master.title, end=end, ical_uid=master.ical_uid)


async def _redescribe_stored_stubs(page: ConvertedPage, view: MirrorView) -> None:
    """Google never re-sends a cancelled stub when its series changes: re-title the stored ones."""
    masters = {c.event.id: c.event for c in page.changes if isinstance(c, Upsert) and c.event.kind is Kind.SERIES}
    if not masters:
        return
    on_page = {c.event.id for c in page.changes if isinstance(c, Upsert)}
    for stub in await view.exceptions_of(sorted(masters)):
        if stub.status is not Status.CANCELLED or stub.id in on_page or stub.series_id not in masters:
            continue
        fresh = _described(stub, masters[stub.series_id])
        if fresh is not None and fresh != stub:
            page.changes.append(Upsert(event=fresh))


async def _describe_stubs(page: ConvertedPage, view: MirrorView) -> None:
    """A cancelled-occurrence stub carries only its slot: give it its series' title and length, from
    the same page or the mirror, so that it reads as what was cancelled."""
    await _redescribe_stored_stubs(page, view)
    stubs = [
        i for i, c in enumerate(page.changes)
        if isinstance(c, Upsert) and c.event.status is Status.CANCELLED and c.event.series_id and c.event.title is None
    ]  # fmt: skip
    if not stubs:
        return
    masters = {c.event.id: c.event for c in page.changes if isinstance(c, Upsert) and c.event.kind is Kind.SERIES}
    wanted = {cast(Upsert, page.changes[i]).event.series_id for i in stubs} - set(masters) - {None}
    if wanted:
        masters.update(await view.get(sorted(w for w in wanted if w)))
    for i in stubs:
        stub = cast(Upsert, page.changes[i]).event
        master = masters.get(stub.series_id or "")
        fresh = None if master is None else _described(stub, master)
        if fresh is not None:
            page.changes[i] = Upsert(event=fresh)


class GoogleProvider(GooglePush):
    """One configured google account (push: :class:`~._push.GooglePush`)."""

    capabilities = Capabilities()

    def __init__(self, ctx: ProviderContext) -> None:
        self._ctx = ctx
        options = parse_options(ctx.account.options, account=ctx.account.name)
        self._client = GoogleClient(
            ctx, token_source(ctx.account.auth, ca_file=ctx.account.ca_file, ctx=ctx),
            base_url=ctx.account.base_url or DEFAULT_BASE_URL, request_timeout=options.request_timeout,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"GoogleProvider(account={self._ctx.account.name!r})"

    def _convert(
        self, page: DecodedPage[EventsPage, GEvent], calendar_id: str, *, occurrences: bool = False
    ) -> ConvertedPage:
        return convert_page(page, provider="google", account=self._ctx.account.name, calendar_id=calendar_id,
                            occurrences=occurrences)  # fmt: skip

    async def calendars(self) -> Sequence[Calendar]:
        """Every calendar on the account's calendarList (paged)."""
        out: list[Calendar] = []
        params = {"maxResults": "250"}
        while True:
            page = await self._client.calendar_list(params)
            out.extend(
                Calendar(id=c.id, name=c.summary_override or c.summary, primary=c.primary,
                         timezone=canonical_zone(c.time_zone), access=c.access_role)
                for c in page.items
            )  # fmt: skip
            if not page.next_page_token:
                return out
            params = {"maxResults": "250", "pageToken": page.next_page_token}

    async def sync(
        self, calendar_id: str, cursor: Cursor | None, *, window: Window, view: MirrorView
    ) -> AsyncIterator[Page]:
        """One round of events.list from ``cursor`` (``None``: a full listing from the history floor).

        Raises:
            CursorExpired: 410 from Google (a dead syncToken, or the pageToken of a round in
                progress), or a cursor of another scheme/version.
        """
        if cursor is None:
            floor = self._ctx.settings.history_floor(self._ctx.clock())
            state: dict[str, str | None] = {
                "syncToken": None, "pageToken": None, "timeMin": None if floor is None else _rfc3339(floor),
            }  # fmt: skip
        else:
            old = cursor.require(SCHEME, VERSION)
            state = {k: old.get(k) for k in ("syncToken", "pageToken", "timeMin")}
        while True:
            params = {"maxResults": PAGE_SIZE, "showDeleted": "true", "singleEvents": "false"}
            if state["syncToken"]:
                params["syncToken"] = state["syncToken"]
            elif state["timeMin"]:
                params["timeMin"] = state["timeMin"]  # forbidden with syncToken: full listings only
            if state["pageToken"]:
                params["pageToken"] = state["pageToken"]
            page = self._convert(await self._client.events(calendar_id, params), calendar_id)
            await _describe_stubs(page, view)
            if page.next_page_token:
                state = {**state, "pageToken": page.next_page_token}
                yield Page(changes=page.changes, quarantined=page.quarantined, last=False, coerced=page.coerced,
                           cursor=Cursor(scheme=SCHEME, version=VERSION, state=state))  # fmt: skip
                continue
            if not page.next_sync_token:
                raise InvalidResponse("google: last page without nextSyncToken", provider="google")
            scope = None
            if not state["syncToken"] and state["timeMin"]:
                scope = Window(start=dt.datetime.fromisoformat(state["timeMin"]), end=FAR_FUTURE)
            done = {"syncToken": page.next_sync_token, "pageToken": None, "timeMin": None}
            yield Page(changes=page.changes, quarantined=page.quarantined, last=True, sweep_scope=scope,
                       coerced=page.coerced, cursor=Cursor(scheme=SCHEME, version=VERSION, state=done))  # fmt: skip
            return

    async def expand(
        self, calendar_id: str, series_ids: Sequence[str], *, window: Window, view: MirrorView
    ) -> AsyncIterator[Expansion]:
        """events.instances of each series inside ``window``, one :class:`Expansion` per series.

        A series Google no longer has (404, or 410 ``deleted``) expands to nothing.
        """
        for sid in series_ids:
            base = {"maxResults": PAGE_SIZE, "timeMin": _rfc3339(window.start), "timeMax": _rfc3339(window.end)}
            params = dict(base)
            occurrences: list[Event] = []
            quarantined: list[Quarantined] = []
            coerced = Coercions()
            while True:
                try:
                    decoded = await self._client.instances(calendar_id, sid, params)
                except NotFound:  # 404, or 410 deleted: the series is gone and the next round deletes it
                    occurrences, quarantined = [], []
                    break
                page = self._convert(decoded, calendar_id, occurrences=True)
                occurrences.extend(c.event for c in page.changes if isinstance(c, Upsert))
                quarantined.extend(page.quarantined)
                coerced.merge(page.coerced)
                if not page.next_page_token:
                    break
                params = {**base, "pageToken": page.next_page_token}
            yield Expansion(series_ids=(sid,), window=window, occurrences=occurrences, quarantined=quarantined,
                            coerced=coerced.counts)  # fmt: skip

    async def aclose(self) -> None:
        """Nothing to release: the session is borrowed."""
