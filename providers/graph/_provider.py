"""The Microsoft Graph provider: calendarView delta rounds, series masters, instances.

A round follows ``@odata.nextLink`` to the ``@odata.deltaLink``; each page's cursor is the link to
resume after it (the whole URL, as Graph asks). The delta stream carries singles, occurrences and
exceptions but never series masters, and occurrences are often skeletal (id, type, seriesMasterId,
start, end): the master is fetched once per round (or reused from the mirror on full listings),
the occurrences hydrated from it, and the master itself upserted the first time a round sees it so
the mark-and-sweep of a full listing keeps it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from calbridge.cursor import Cursor
from calbridge.errors import CursorExpired, InvalidResponse, MalformedEvent, NotFound
from calbridge.model import Calendar, Change, Delete, Event, EventKey, Kind, Upsert, Window
from calbridge.provider import Capabilities, Expansion, MirrorView, Page, ProviderContext, Quarantined

from ._auth import token_source
from ._client import GraphClient, origin
from ._config import DEFAULT_BASE_URL, ClientCredentials, RefreshTokenAuth, StaticToken
from ._convert import convert_event

logger = logging.getLogger(__name__)

SCHEME = "graph.delta"
VERSION = 1
MAX_MAILBOX_CONCURRENCY = 4  # Outlook's limit per app per mailbox
DEFAULT_PAGE_SIZE = 100


def _stamp(value: Any) -> str:
    return str(value.strftime("%Y-%m-%dT%H:%M:%SZ"))


def _quarantine(item: Mapping[str, Any], error: str) -> Quarantined:
    return Quarantined(event_id=item.get("id"), error=error, payload=json.dumps(item, sort_keys=True)[:100_000])


class GraphProvider:
    """One configured Graph account (one mailbox)."""

    capabilities = Capabilities(sync_yields_occurrences=True, window_bound_cursor=True)

    def __init__(self, ctx: ProviderContext) -> None:
        auth = ctx.account.auth
        if not isinstance(auth, ClientCredentials | RefreshTokenAuth | StaticToken):
            raise TypeError("the graph provider needs the auth structured by the graph plugin's parse_auth")
        self._ctx = ctx
        self._account = ctx.account.name
        options = ctx.account.options
        base_url = (ctx.account.base_url or DEFAULT_BASE_URL).rstrip("/")
        user = ctx.account.user
        if user and not isinstance(auth, RefreshTokenAuth):
            self._root = f"{base_url}/users/{quote(str(user), safe='@')}"
        else:
            self._root = f"{base_url}/me"
        self._page_size = int(options.get("page_size", DEFAULT_PAGE_SIZE))
        concurrency = min(int(options.get("max_concurrency", MAX_MAILBOX_CONCURRENCY)), MAX_MAILBOX_CONCURRENCY)
        self._semaphore = asyncio.Semaphore(max(concurrency, 1))
        prefer = ", ".join(
            (
                f"odata.maxpagesize={self._page_size}",
                'outlook.timezone="UTC"',  # instants arrive in UTC; the zone comes from originalStartTimeZone
                'outlook.body-content-type="text"',
            )
        )
        self.tokens = token_source(auth, ctx)
        self.client = GraphClient(
            ctx,
            self.tokens,
            base_url=base_url,
            semaphore=self._semaphore,
            prefer=prefer,
            timeout=float(options.get("request_timeout", 60.0)),
        )

    def _calendar_path(self, calendar_id: str) -> str:
        if calendar_id == "primary":
            return f"{self._root}/calendar"
        return f"{self._root}/calendars/{quote(calendar_id, safe='')}"

    async def calendars(self) -> Sequence[Calendar]:
        """Every calendar of the mailbox (``/calendars``, following nextLink)."""
        out: list[Calendar] = []
        url: str | None = f"{self._root}/calendars"
        while url:
            data = await self.client.get(url, what="list calendars")
            for c in data.get("value") or ():
                if not c.get("id"):
                    continue
                out.append(
                    Calendar(
                        id=str(c["id"]),
                        name=c.get("name"),
                        primary=bool(c.get("isDefaultCalendar")),
                        access="writer" if c.get("canEdit") else "reader",
                    )
                )
            url = self._link(data, "@odata.nextLink", "list calendars")
        return out

    def _link(self, data: Mapping[str, Any], key: str, what: str) -> str | None:
        link = data.get(key)
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
            query = urlencode({"startDateTime": _stamp(window.start), "endDateTime": _stamp(window.end)})
            url = f"{self._calendar_path(calendar_id)}/calendarView/delta?{query}"
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
            data = await self.client.get(url, what=what)
            next_link = self._link(data, "@odata.nextLink", what)
            delta_link = self._link(data, "@odata.deltaLink", what)
            if (next_link is None) == (delta_link is None):
                raise InvalidResponse(f"{what}: a page needs exactly one of nextLink and deltaLink", provider="graph")
            items = data.get("value")
            if not isinstance(items, list):
                raise InvalidResponse(f"{what}: page without a value list", provider="graph")
            changes, quarantined = await self._page(calendar_id, items, view, seen_masters, full=full)
            if not full:
                touched_series.update(await self._series_of_removed(changes, view))
            if delta_link is not None and touched_series:
                alive = {k for k, v in seen_masters.items() if v is not None}
                changes.extend(await self._deleted_series(calendar_id, touched_series - alive))
            link = next_link or delta_link
            assert link is not None
            state = {"link": link, "origin": "{}://{}:{}".format(*self.client.origin)}
            if next_link is not None:
                state["full"] = full
            yield Page(
                changes=changes,
                cursor=Cursor(scheme=SCHEME, version=VERSION, state=state),
                last=next_link is None,
                quarantined=quarantined,
                sweep_scope=None,  # the Graph mirror is the window: a full listing covers all of it
            )
            if next_link is None:
                return
            url = next_link

    async def _page(
        self,
        calendar_id: str,
        items: Sequence[Any],
        view: MirrorView,
        seen_masters: dict[str, Event | None],
        *,
        full: bool,
    ) -> tuple[list[Change], list[Quarantined]]:
        changes: list[Change] = []
        quarantined: list[Quarantined] = []
        wanted = [
            str(i["seriesMasterId"])
            for i in items
            if isinstance(i, dict) and "@removed" not in i and i.get("seriesMasterId")
        ]
        new_ids = [m for m in dict.fromkeys(wanted) if m not in seen_masters]
        errors: dict[str, str] = {}
        if new_ids:
            masters, errors = await self._masters(calendar_id, new_ids, view, reuse=full)
            for mid in new_ids:
                master = masters.get(mid)
                seen_masters[mid] = master
                if master is not None:
                    changes.append(Upsert(event=master))
        for item in items:
            if not isinstance(item, dict) or not item.get("id"):
                quarantined.append(Quarantined(event_id=None, error="item without an id", payload=json.dumps(item)))
                continue
            if "@removed" in item:
                changes.append(Delete(key=EventKey(account=self._account, calendar_id=calendar_id, id=item["id"])))
                continue
            master_id = item.get("seriesMasterId")
            master = seen_masters.get(str(master_id)) if master_id else None
            if master_id and master is None:
                reason = errors.get(str(master_id), "series master unavailable")
                quarantined.append(_quarantine(item, f"series master {master_id}: {reason}"))
                continue
            try:
                event = convert_event(item, account=self._account, calendar_id=calendar_id, master=master)
            except MalformedEvent as exc:
                logger.warning("graph account %s: quarantined event %s: %s", self._account, item.get("id"), exc)
                quarantined.append(_quarantine(item, str(exc)))
                continue
            changes.append(Upsert(event=event))
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
            url = f"{self._root}/events/{quote(sid, safe='')}"
            try:
                await self.client.get(url, what=f"series master {sid}")
            except NotFound:
                out.append(Delete(key=EventKey(account=self._account, calendar_id=calendar_id, id=sid)))
        return out

    async def _masters(
        self, calendar_id: str, ids: Sequence[str], view: MirrorView, *, reuse: bool
    ) -> tuple[dict[str, Event], dict[str, str]]:
        """Series masters by id: reused from the mirror on full listings, else fetched (concurrently,
        under the mailbox semaphore). An incremental round fetches them: an occurrence in it means
        its series changed."""
        found: dict[str, Event] = {}
        if reuse:
            stored = await view.get(list(ids))
            found = {k: v for k, v in stored.items() if v.kind is Kind.SERIES}
        missing = [m for m in ids if m not in found]
        results = await asyncio.gather(*(self._fetch_master(calendar_id, m) for m in missing))
        errors: dict[str, str] = {}
        for mid, result in zip(missing, results, strict=True):
            if isinstance(result, Event):
                found[mid] = result
            else:
                errors[mid] = result
        return found, errors

    async def _fetch_master(self, calendar_id: str, master_id: str) -> Event | str:
        url = f"{self._root}/events/{quote(master_id, safe='')}"
        try:
            data = await self.client.get(url, what=f"series master {master_id}")
        except NotFound:
            return "not found"
        try:
            return convert_event(data, account=self._account, calendar_id=calendar_id)
        except MalformedEvent as exc:
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
            query = urlencode({"startDateTime": _stamp(window.start), "endDateTime": _stamp(window.end)})
            url: str | None = f"{self._root}/events/{quote(sid, safe='')}/instances?{query}"
            master = stored.get(sid)
            if master is None:
                got = await self._fetch_master(calendar_id, sid)
                master = got if isinstance(got, Event) else None
            occurrences: list[Event] = []
            quarantined: list[Quarantined] = []
            try:
                while url:
                    data = await self.client.get(url, what=f"instances of {sid}")
                    for item in data.get("value") or ():
                        try:
                            occurrences.append(
                                convert_event(item, account=self._account, calendar_id=calendar_id, master=master)
                            )
                        except MalformedEvent as exc:
                            quarantined.append(_quarantine(item, str(exc)))
                    url = self._link(data, "@odata.nextLink", f"instances of {sid}")
            except NotFound:
                occurrences = []
            yield Expansion(series_ids=(sid,), window=window, occurrences=occurrences, quarantined=quarantined)

    async def aclose(self) -> None:
        return None
