"""The Microsoft Graph :class:`~calbridge.provider.Provider`: calendarView delta rounds, series masters,
instances.

A round follows ``@odata.nextLink`` to the ``@odata.deltaLink``; each page's cursor is the link to
resume after it (the whole URL, as Graph asks). The delta stream carries singles, occurrences and
exceptions but never series masters, and occurrences are often skeletal (id, type, seriesMasterId,
start, end): the master is fetched once per round,
the occurrences hydrated from it, and the master itself upserted the first time a round sees it so
the mark-and-sweep of a full listing keeps it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec

from calbridge.cursor import Cursor
from calbridge.errors import CursorExpired, InvalidResponse, MalformedEvent, NotFound
from calbridge.model import Calendar, Change, Delete, Event, EventKey, Upsert, Window
from calbridge.provider import Capabilities, Expansion, MirrorView, Page, ProviderContext, Quarantined
from calbridge.toolkit import Coercions, DecodedPage, origin

from ._auth import token_source
from ._changes import changes_from, master_ids
from ._client import GraphClient
from ._config import DEFAULT_BASE_URL, ClientCredentialsAuth, RefreshTokenAuth, TokenAuth, parse_options
from ._convert import convert_event
from ._push import GraphPush
from ._times import series_zone_of
from ._wire import EventsPage, GEvent, decode_event

logger = logging.getLogger(__name__)

SCHEME = "graph.delta"
VERSION = 1


class GraphProvider(GraphPush):
    """One configured Graph account (one mailbox); it can push (``_push``)."""

    capabilities = Capabilities(sync_yields_occurrences=True, window_bound_cursor=True)

    def __init__(self, ctx: ProviderContext) -> None:
        auth = ctx.account.auth
        if not isinstance(auth, ClientCredentialsAuth | RefreshTokenAuth | TokenAuth):
            raise TypeError("the graph provider needs the auth structured by the graph plugin's parse_auth")
        self._ctx = ctx
        self._account = ctx.account.name
        options = parse_options(ctx.account.options, account=ctx.account.name)
        user = ctx.account.user
        # The mailbox's own attendee is the one with its address; /me (refresh_token) names none.
        mailbox = str(user) if user and not isinstance(auth, RefreshTokenAuth) else None
        self._me: str | None = None if mailbox is None else mailbox.lower()
        self._semaphore = asyncio.Semaphore(options.max_concurrency)
        prefer = ", ".join(
            (
                f"odata.maxpagesize={options.page_size}",
                'outlook.timezone="UTC"',  # instants arrive in UTC; the zone comes from originalStartTimeZone
                'outlook.body-content-type="text"',
            )
        )
        # Each fetched master's own zone (``series_zone_of``): a normalized all-day master has none.
        self._series_zones: dict[str, str | None] = {}
        self.tokens = token_source(auth, ctx)
        self.client = GraphClient(
            ctx, self.tokens, base_url=ctx.account.base_url or DEFAULT_BASE_URL, user=mailbox,
            semaphore=self._semaphore, prefer=prefer, request_timeout=options.request_timeout,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"GraphProvider(account={self._account!r})"

    async def calendars(self) -> Sequence[Calendar]:
        """Every calendar of the mailbox (``/calendars``, following nextLink)."""
        out: list[Calendar] = []
        url: str | None = self.client.calendars_url()
        while url:
            page = await self.client.calendars(url)
            for c in page.value or ():
                if not c.id:
                    continue
                out.append(
                    Calendar(
                        id=str(c.id),
                        name=c.name,
                        primary=bool(c.is_default_calendar),
                        access="writer" if c.can_edit else "reader",
                    )
                )
            url = self._link(page.next_link, "@odata.nextLink", "list calendars")
        return out

    def _link(self, link: Any, key: str, what: str) -> str | None:
        """A link from a page, checked before its page is yielded (and its cursor stored)."""
        if link is None:
            return None
        if not isinstance(link, str) or not link.lower().startswith(("https://", "http://")):
            raise InvalidResponse(f"{what}: malformed {key}", provider="graph")
        if not self.client.same_origin(link):
            raise InvalidResponse(
                f"{what}: {key} points at another origin ({origin(link)[1]}) than base_url; refusing to follow it",
                provider="graph",
            )
        return link

    async def sync(
        self,
        calendar_id: str,
        cursor: Cursor | None,
        *,
        window: Window,
        view: MirrorView,
    ) -> AsyncIterator[Page]:
        """One calendarView delta round; see :meth:`calbridge.provider.Provider.sync`."""
        what = f"calendarView delta of {calendar_id}"
        if cursor is None:
            url = self.client.delta_url(calendar_id, window)
            full = True
        else:
            state = cursor.require(SCHEME, VERSION)
            url = str(state.get("link") or "")
            full = bool(state.get("full"))
            if not url or not self.client.same_origin(url):
                raise CursorExpired(
                    f"{what}: the stored link is not on base_url's origin any more", provider="graph", code="origin"
                )
        seen_masters: dict[str, Event | None] = {}
        touched_series: set[str] = set()
        while True:
            page = await self.client.events(url, what=what)
            next_link = self._link(page.page.next_link, "@odata.nextLink", what)
            delta_link = self._link(page.page.delta_link, "@odata.deltaLink", what)
            if (next_link is None) == (delta_link is None):
                raise InvalidResponse(f"{what}: a page needs exactly one of nextLink and deltaLink", provider="graph")
            if page.items_missing:
                raise InvalidResponse(f"{what}: page without a value list", provider="graph")
            coerced = Coercions()
            changes, quarantined = await self._page(calendar_id, page, view, seen_masters, full=full, coerced=coerced)
            if not full:
                touched_series.update(await self._series_of_removed(changes, view))
            if delta_link is not None and touched_series:
                alive = {k for k, v in seen_masters.items() if v is not None}
                changes.extend(await self._deleted_series(calendar_id, touched_series - alive))
            link = next_link or delta_link
            assert link is not None
            state = {"link": link, "origin": "{}://{}:{}".format(*self.client.http.origin)}
            if next_link is not None:
                state["full"] = full
            yield Page(
                changes=changes,
                cursor=Cursor(scheme=SCHEME, version=VERSION, state=state),
                last=next_link is None,
                quarantined=quarantined,
                sweep_scope=None,  # the Graph mirror is the window: a full listing covers all of it
                coerced=coerced.counts,
            )
            if next_link is None:
                return
            url = next_link

    async def _page(
        self,
        calendar_id: str,
        page: DecodedPage[EventsPage, GEvent],
        view: MirrorView,
        seen_masters: dict[str, Event | None],
        *,
        full: bool,
        coerced: Coercions,
    ) -> tuple[list[Change], list[Quarantined]]:
        changes: list[Change] = []
        new_ids = [m for m in master_ids(page) if m not in seen_masters]
        errors: dict[str, str] = {}
        if new_ids:
            masters, errors = await self._masters(calendar_id, new_ids, coerced)
            for mid in new_ids:
                master = masters.get(mid)
                seen_masters[mid] = master
                if master is not None:
                    changes.append(Upsert(event=master))
        items, quarantined = changes_from(
            page,
            account=self._account,
            calendar_id=calendar_id,
            masters=seen_masters,
            errors=errors,
            me=self._me,
            zones=self._series_zones,
            coerced=coerced,
        )
        changes.extend(items)
        for mid, reason in errors.items():
            if reason != "not found":
                quarantined.append(Quarantined(event_id=mid, error=reason, payload=json.dumps({"id": mid})))
        return changes, quarantined

    async def _series_of_removed(self, changes: Sequence[Change], view: MirrorView) -> set[str]:
        """Series whose stored occurrences this page removed (a deleted series shows only as that)."""
        removed = [c.key.id for c in changes if isinstance(c, Delete)]
        if not removed:
            return set()
        stored = await view.get(removed)
        return {e.series_id for e in stored.values() if e.series_id}

    async def _deleted_series(self, calendar_id: str, series_ids: set[str]) -> list[Change]:
        """Deletes for the series among ``series_ids`` that no longer exist: delta never reports a
        series master, so a deleted series would otherwise linger until the next full listing."""
        out: list[Change] = []
        for sid in sorted(series_ids):
            try:
                await self.client.event(sid, what=f"series master {sid}")
            except NotFound:
                out.append(Delete(key=EventKey(account=self._account, calendar_id=calendar_id, id=sid)))
        return out

    async def _masters(
        self, calendar_id: str, ids: Sequence[str], coerced: Coercions
    ) -> tuple[dict[str, Event], dict[str, str]]:
        """Series masters by id, fetched once per round (concurrently, under the mailbox semaphore).
        Never reused from the mirror: on a full listing after a dead cursor the stored master may
        be stale, and its occurrences would be hydrated with the old title."""
        found: dict[str, Event] = {}
        results = await asyncio.gather(*(self._fetch_master(calendar_id, m, coerced) for m in ids))
        errors: dict[str, str] = {}
        for mid, result in zip(ids, results, strict=True):
            if isinstance(result, Event):
                found[mid] = result
            else:
                errors[mid] = result
        return found, errors

    async def _fetch_master(self, calendar_id: str, master_id: str, coerced: Coercions | None = None) -> Event | str:
        what = f"series master {master_id}"
        try:
            body = await self.client.event(master_id, what=what)
        except NotFound:
            return "not found"
        try:
            ev = decode_event(body)
            self._series_zones[master_id] = series_zone_of(ev)
            return convert_event(ev, account=self._account, calendar_id=calendar_id, me=self._me, coerced=coerced)
        except msgspec.DecodeError:
            raise InvalidResponse(f"{what}: the response is not JSON", provider="graph") from None
        except (msgspec.ValidationError, MalformedEvent) as exc:
            logger.warning("graph account %s: series master %s quarantined: %s", self._account, master_id, exc)
            return str(exc)

    async def expand(
        self,
        calendar_id: str,
        series_ids: Sequence[str],
        *,
        window: Window,
        view: MirrorView,
    ) -> AsyncIterator[Expansion]:
        """``/events/{id}/instances`` over ``window``, one Expansion per series."""
        stored = await view.get(list(series_ids))
        for sid in series_ids:
            url: str | None = self.client.instances_url(sid, window)
            master = stored.get(sid)
            if master is None:
                got = await self._fetch_master(calendar_id, sid)
                master = got if isinstance(got, Event) else None
            occurrences: list[Event] = []
            quarantined: list[Quarantined] = []
            coerced = Coercions()
            try:
                while url:
                    what = f"instances of {sid}"
                    page = await self.client.events(url, what=what)
                    quarantined.extend(page.quarantined)
                    for k, ev in enumerate(page.items):
                        try:
                            occurrences.append(
                                convert_event(
                                    ev,
                                    account=self._account,
                                    calendar_id=calendar_id,
                                    master=master,
                                    me=self._me,
                                    series_zone=self._series_zones.get(sid),
                                    coerced=coerced,
                                )
                            )
                        except MalformedEvent as exc:
                            quarantined.append(page.quarantine(k, str(exc), event_id=ev.id))
                    url = self._link(page.page.next_link, "@odata.nextLink", what)
            except NotFound:
                occurrences = []
            yield Expansion(series_ids=(sid,), window=window, occurrences=occurrences, quarantined=quarantined,
                            coerced=coerced.counts)  # fmt: skip

    async def aclose(self) -> None:
        """Nothing to release: the session is borrowed."""
