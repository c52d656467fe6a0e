"""Expansion of Feishu series into occurrences, by whichever of the two calls costs fewer requests.

- ``GET …/events/{id}/instances`` (one series): range ≤ 2 years, **open** interval
  (start_time, end_time) on the occurrence start, paged (≤ 500). Each range is widened by one
  second on each side (and backwards by the series' duration, so occurrences that began before
  the window but overlap it are seen), then filtered by overlap with the window.
- ``GET …/events/instance_view`` (whole calendar): range < 40 days, < 1000 instances, no paging.
  The window is cut into 39-day chunks (each widened by one second per side, still < 40 days, so
  193103 never happens); a chunk answering 193104 is halved until it fits. Occurrences that
  straddle a chunk edge come back in both chunks and are kept once (by id).

Cost rule: instance_view costs one request per 39-day chunk of the window, instances at least one
request per series per 2-year span. instance_view is used when it needs fewer requests, i.e. when
``chunks < series × spans``; with the default 396-day window (11 chunks, 1 span) that is from 12
series on.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs
import msgspec

from calbridge.errors import InvalidRequest, MalformedEvent, NotFound
from calbridge.model import Event, Kind, Window
from calbridge.provider import Expansion, MirrorView, Quarantined
from calbridge.toolkit import Coercions

from ._client import FeishuClient, TooManyInstances
from ._convert import event_from, original_seconds, series_id_of, uid_of, unanswered
from ._wire import EventsPage, FEvent, events_data

VIEW_SPAN = dt.timedelta(days=39)
INSTANCES_SPAN = dt.timedelta(days=729)
MIN_CHUNK = dt.timedelta(hours=1)
MAX_LEAD = dt.timedelta(days=31)
INSTANCES_PAGE = 500


def _sec(value: dt.datetime) -> int:
    return int(value.timestamp())


def view_chunks(window: Window) -> list[Window]:
    """The window cut into instance_view chunks of 39 days."""
    return window.split(VIEW_SPAN)


def instance_calls(window: Window, series: int) -> int:
    """Lower bound of the requests ``instances`` needs for ``series`` series over ``window``."""
    spans = max(1, math.ceil((window.end - window.start + MAX_LEAD) / INSTANCES_SPAN))
    return series * spans


def _fill(event: Event, item: FEvent, master: Event | None, stored: Event | None, *, rooms_only: bool) -> Event:
    """Fields the item leaves out are its stored exception's, else the master's; created/updated are
    always the master's, so an occurrence reads the same whichever of the two calls expanded it.

    ``rooms_only`` (instance_view): the item's attendees are its meeting rooms and nothing else
    (F5's field table: attendees … 当前只返回会议室; the Lark SDK's model agrees), so the people
    and their answers come from the base and the item's rooms replace the base's.
    """
    base = stored if stored is not None else master
    if base is None:
        return unanswered(event) if item.status == "tentative" else event
    changes: dict[str, Any] = {}
    if master is not None:
        changes.update(created=master.created, updated=master.updated)
    if item.event_organizer is msgspec.UNSET:
        changes["organizer"] = base.organizer
    if item.attendees is msgspec.UNSET:
        changes["attendees"] = base.attendees
    elif rooms_only:
        people = tuple(a for a in base.attendees if not a.resource)
        changes["attendees"] = people + tuple(a for a in event.attendees if a.resource)
    if item.free_busy_status is msgspec.UNSET:
        changes["show_as"] = base.show_as
    if item.visibility is msgspec.UNSET:
        changes["visibility"] = base.visibility
    if item.vchat is msgspec.UNSET:
        changes["meeting_url"] = base.meeting_url
    filled = attrs.evolve(event, **changes) if changes else event
    return unanswered(filled) if item.status == "tentative" else filled


class Expander:
    """Runs expansions for one account."""

    def __init__(self, client: FeishuClient, account: str, resolve: Callable[[str], Awaitable[str]]) -> None:
        self._client = client
        self._account = account
        self._resolve = resolve
        self.last_method: str | None = None

    async def expand(
        self, calendar_id: str, series_ids: Sequence[str], *, window: Window, view: MirrorView
    ) -> AsyncIterator[Expansion]:
        if not series_ids:
            return
        real_id = await self._resolve(calendar_id)
        masters = await view.get([series_id_of(s) for s in series_ids])
        stored = {e.id: e for e in await view.exceptions_of([series_id_of(s) for s in series_ids])}
        if len(view_chunks(window)) < instance_calls(window, len(series_ids)):
            result: Expansion | None = None
            try:
                result = await self._by_view(calendar_id, real_id, series_ids, window, masters, stored)
            except InvalidRequest as exc:
                if exc.code != "191004":  # calendar type without instance_view: use instances
                    raise
            if result is not None:
                self.last_method = "instance_view"
                yield result
                return
        self.last_method = "instances"
        for sid in series_ids:
            yield await self._by_instances(calendar_id, real_id, sid, window, masters.get(series_id_of(sid)), stored)

    def _keep(
        self,
        page: EventsPage,
        calendar_id: str,
        window: Window,
        masters: Mapping[str, Event],
        stored: Mapping[str, Event],
        seen: dict[str, Event],
        quarantined: list[Quarantined],
        wanted: Mapping[str, str] | None,
        coerced: Coercions,
    ) -> None:
        for bad in page.quarantined:  # items that did not decode: kept if they are occurrences asked for
            eid = bad.event_id
            if eid and original_seconds(eid) is not None and (wanted is None or uid_of(eid) in wanted):
                quarantined.append(bad)
        for k, item in enumerate(page.items):
            eid = item.event_id
            if not eid or original_seconds(eid) is None or eid in seen:
                continue  # singles (``_0``) and repeats across chunk edges
            if item.status == "cancelled":
                continue
            uid = uid_of(item.recurring_event_id or eid)
            if wanted is not None and uid not in wanted:
                continue
            try:
                event = event_from(
                    item, account=self._account, calendar_id=calendar_id, occurrence=True, coerced=coerced
                )
            except MalformedEvent as exc:
                quarantined.append(page.quarantine(k, str(exc), event_id=eid))
                continue
            assert event.kind is Kind.OCCURRENCE
            if window.overlaps(event.start.utc(), event.end.utc()):
                master = masters.get(uid + "_0")
                # Only instance_view names the series it wants (``wanted``); instances is per series.
                seen[eid] = _fill(event, item, master, stored.get(eid), rooms_only=wanted is not None)

    async def _by_view(
        self,
        calendar_id: str,
        real_id: str,
        series_ids: Sequence[str],
        window: Window,
        masters: Mapping[str, Event],
        stored: Mapping[str, Event],
    ) -> Expansion:
        wanted = {uid_of(s): s for s in series_ids}
        seen: dict[str, Event] = {}
        quarantined: list[Quarantined] = []
        coerced = Coercions()
        pending = [(c.start, c.end) for c in view_chunks(window)]
        while pending:
            start, end = pending.pop(0)
            params = {"start_time": str(_sec(start) - 1), "end_time": str(_sec(end) + 1)}
            try:
                page = await self._client.instance_view(real_id, params)
            except TooManyInstances:
                if end - start <= MIN_CHUNK:
                    raise
                middle = start + dt.timedelta(seconds=(_sec(end) - _sec(start)) // 2)
                pending[0:0] = [(start, middle), (middle, end)]
                continue
            self._keep(page, calendar_id, window, masters, stored, seen, quarantined, wanted, coerced)
        return Expansion(
            series_ids=tuple(series_id_of(s) for s in series_ids),
            window=window,
            occurrences=sorted(seen.values(), key=lambda e: (e.start.utc(), e.id)),
            quarantined=quarantined,
            coerced=coerced.counts,
        )

    async def _by_instances(
        self,
        calendar_id: str,
        real_id: str,
        series_id: str,
        window: Window,
        master: Event | None,
        stored: Mapping[str, Event],
    ) -> Expansion:
        sid = series_id_of(series_id)
        lead = dt.timedelta(days=1)
        if master is not None:
            lead = min(max(master.end.utc() - master.start.utc(), dt.timedelta(0)), MAX_LEAD)
        seen: dict[str, Event] = {}
        quarantined: list[Quarantined] = []
        coerced = Coercions()
        masters = {sid: master} if master is not None else {}
        try:
            for span in Window(start=window.start - lead, end=window.end).split(INSTANCES_SPAN):
                token = ""
                while True:
                    params = {
                        "start_time": str(_sec(span.start) - 1),
                        "end_time": str(_sec(span.end) + 1),
                        "page_size": str(INSTANCES_PAGE),
                    }
                    if token:
                        params["page_token"] = token
                    page = await self._client.instances(real_id, sid, params)
                    self._keep(page, calendar_id, window, masters, stored, seen, quarantined, None, coerced)
                    data = events_data(page)
                    token = data.page_token or ""
                    if not data.has_more or not token:
                        break
        except NotFound:
            seen.clear()  # the series is gone; the next sync round deletes it
        return Expansion(
            series_ids=(sid,),
            window=window,
            occurrences=sorted(seen.values(), key=lambda e: (e.start.utc(), e.id)),
            quarantined=quarantined,
            coerced=coerced.counts,
        )
