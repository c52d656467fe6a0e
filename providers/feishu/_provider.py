"""The Feishu provider: calendar discovery, sync rounds over the events list, expansion.

A round is ``GET /open-apis/calendar/v4/calendars/{id}/events`` page by page (apis.md 1.A.3, seed
000): each request repeats the base parameters (``page_size``, and ``anchor_time`` on a full
listing) plus the ``page_token`` and ``sync_token`` of the previous response when non-empty; the
round ends when ``has_more`` is false and the last non-empty ``sync_token`` is the next round's
cursor. Pages may be empty while ``has_more`` is true. Each page's cursor holds everything needed
to resume the round after it.

The list call returns no attendees: they are fetched (attendee list API, paged) only where they can
differ from the mirror's copy (see ``_attend`` and docs/design.md, "Feishu attendees"), concurrently
within the app's quota (``RateLimit``: ``attendee_concurrency`` in flight, ``attendee_qps`` and
``attendee_qpm`` starts), and with ``attendees: window`` only for events that touch the window.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Sequence

import attrs

from calbridge.cursor import Cursor
from calbridge.errors import InvalidResponse, NotFound, PermissionDenied
from calbridge.model import Attendee, Calendar, Change, Delete, Event, Kind, Status, Upsert, Window
from calbridge.provider import Capabilities, Expansion, MirrorView, Page, ProviderContext
from calbridge.toolkit import Coercions, RateLimit

from ._auth import token_source
from ._client import FeishuClient, TokenEndpoints
from ._config import FEISHU_BASE_URL, UserAuth, parse_options
from ._convert import all_day_slot, attendees_from, changes_from, mark_self, unanswered
from ._expand import Expander
from ._push import FeishuPushing
from ._wire import FAttendee, attendees_data, events_data

logger = logging.getLogger(__name__)

SCHEME = "feishu.events"
VERSION = 1
FAR_FUTURE = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)


def _listed(event: Event) -> Event:
    """The event as the list call shows it: without what only the attendee API gives."""
    if event.attendees or event.attendees_omitted:
        return attrs.evolve(event, attendees=(), attendees_omitted=False)
    return event


def _touches(event: Event, window: Window) -> bool:
    """Whether ``event`` may show in ``window``: a series whenever it starts before the window ends
    (its end is in its RRULE; expansion decides), anything else by its own span."""
    if event.kind is Kind.SERIES:
        return event.start.utc() < window.end
    return window.overlaps(event.start.utc(), event.end.utc())


async def _date_stubs(changes: list[Change], view: MirrorView) -> None:
    """A cancelled stub with no times sits on a timed slot; one of an all-day series (the series on
    the same page, or in the mirror) moves to the slot's date, to line up with the occurrence it
    cancels."""
    stubs = [
        (i, c.event) for i, c in enumerate(changes)
        if isinstance(c, Upsert) and c.event.status is Status.CANCELLED and c.event.series_id
        and c.event.start.instant is not None and c.event.start == c.event.end
    ]  # fmt: skip
    if not stubs:
        return
    masters = {c.event.id: c.event for c in changes if isinstance(c, Upsert) and c.event.kind is Kind.SERIES}
    wanted = sorted({e.series_id for _, e in stubs if e.series_id and e.series_id not in masters})
    if wanted:
        masters.update(await view.get(wanted))
    for i, stub in stubs:
        master = masters.get(stub.series_id or "")
        fresh = None if master is None else all_day_slot(stub, master)
        if fresh is not None:
            changes[i] = Upsert(event=fresh)


class FeishuProvider(FeishuPushing):
    """One configured Feishu or Lark account (push: ``_push``)."""

    capabilities = Capabilities(calendar_expansion=True)

    def __init__(self, ctx: ProviderContext) -> None:
        self._ctx = ctx
        options = parse_options(ctx.account.options, account=ctx.account.name)
        base = ctx.account.base_url or FEISHU_BASE_URL
        endpoints = TokenEndpoints(ctx, base_url=base, request_timeout=options.request_timeout)
        self.tokens = token_source(ctx, endpoints)
        self.client = FeishuClient(ctx, self.tokens, base_url=base, request_timeout=options.request_timeout)
        self._primary: str | None = None
        self._owner: str | None = None  # the primary calendar's owner (user_id, open_id by default)
        self._page_size = options.page_size
        self._expander = Expander(self.client, ctx.account.name, self._resolve)
        self._attendee_scope = options.attendees
        self.attendee_limit = RateLimit([(options.attendee_qps, 1.0), (options.attendee_qpm, 60.0)],
                                        concurrency=options.attendee_concurrency)  # fmt: skip
        self.attendee_requests = 0

    def __repr__(self) -> str:
        return f"FeishuProvider(account={self._ctx.account.name!r})"

    async def aclose(self) -> None:
        """Nothing to release: the session is borrowed."""

    async def _resolve(self, calendar_id: str) -> str:
        """The real id for ``primary`` (``POST calendars/primary``, cached); other ids as given."""
        if calendar_id != "primary":
            return calendar_id
        if self._primary is None:
            data = await self.client.primary()
            for entry in data.get("calendars") or ():
                cal = entry.get("calendar") if isinstance(entry, dict) else None
                if isinstance(cal, dict) and cal.get("calendar_id"):
                    self._primary = str(cal["calendar_id"])
                    owner = entry.get("user_id")
                    self._owner = owner if isinstance(owner, str) and owner else None
                    break
            else:
                raise NotFound("feishu primary calendar: the account has none", provider="feishu")
        return self._primary

    async def _me(self) -> str | None:
        """The token's user as attendees name it (open_id, the default user_id_type of both calls):
        the owner of its primary calendar, ``calendars[].user_id`` of ``POST calendars/primary``
        (F9; the Lark SDK's UserCalendar model; apis.md does not list the field, so when it is
        missing no attendee is claimed). Known for user tokens only: a tenant token is the app's
        identity and a ``kind: token`` bearer may be either."""
        if not isinstance(self._ctx.account.auth, UserAuth):
            return None
        await self._resolve("primary")
        return self._owner

    async def calendars(self) -> Sequence[Calendar]:
        """Every calendar the identity can see (calendar list, paged)."""
        out: list[Calendar] = []
        token = ""
        while True:
            params = {"page_size": "500"}
            if token:
                params["page_token"] = token
            data = await self.client.calendar_list(params)
            for cal in data.get("calendar_list") or ():
                if not isinstance(cal, dict) or not cal.get("calendar_id") or cal.get("is_deleted"):
                    continue
                out.append(
                    Calendar(
                        id=str(cal["calendar_id"]),
                        name=cal.get("summary_alias") or cal.get("summary") or None,
                        primary=cal.get("type") == "primary",
                        access=cal.get("role") or None,
                    )
                )
            token = data.get("page_token") or ""
            if not data.get("has_more") or not token:
                return out

    async def sync(
        self, calendar_id: str, cursor: Cursor | None, *, window: Window, view: MirrorView
    ) -> AsyncIterator[Page]:
        """One round from ``cursor`` (None: full listing bounded by the configured history).

        Raises:
            CursorExpired: code 190008, or a cursor of another scheme/version.
        """
        state = dict(cursor.require(SCHEME, VERSION)) if cursor is not None else {}
        if calendar_id == "primary" and self._primary is None and isinstance(state.get("primary"), str):
            # What an earlier round resolved ``primary`` to, kept in its cursor: a quiet round is then
            # the one list request, not a POST calendars/primary before it in every process.
            self._primary, self._owner = state["primary"], state.get("owner") or None
        if cursor is None or (state.get("mid") is None and not state.get("sync_token")):
            floor = self._ctx.settings.history_floor(self._ctx.clock())
            state = {"mid": "full", "anchor": None if floor is None else int(floor.timestamp())}
        elif state.get("mid") is None:
            state = {"mid": "incremental", "sync_token": state["sync_token"]}
        full = state["mid"] == "full"
        anchor: int | None = state.get("anchor")
        real_id = await self._resolve(calendar_id)
        me = await self._me()
        resolved = {"primary": real_id, "owner": self._owner} if calendar_id == "primary" else {}
        page_token: str = state.get("page_token") or ""
        sync_token: str = state.get("sync_token") or ""
        guard = 0
        while True:
            params = {"page_size": str(self._page_size)}
            if anchor is not None:
                params["anchor_time"] = str(anchor)
            if page_token:
                params["page_token"] = page_token
            if sync_token:
                params["sync_token"] = sync_token
            page = await self.client.events(real_id, params)
            data = events_data(page)
            new_page = data.page_token or ""
            new_sync = data.sync_token or ""
            has_more = bool(data.has_more)
            sync_token = new_sync or sync_token
            coerced = Coercions()
            changes, quarantined = changes_from(
                page, account=self._ctx.account.name, calendar_id=calendar_id, coerced=coerced
            )
            await _date_stubs(changes, view)
            tentative = {item.event_id for item in page.items if item.status == "tentative"}
            changes = await self._attend(
                real_id, changes, view, full=full, me=me, tentative=tentative, window=window, coerced=coerced
            )
            if not has_more:
                done = {"sync_token": sync_token, **resolved} if sync_token else {}
                scope = None
                if full and anchor is not None:
                    scope = Window(start=dt.datetime.fromtimestamp(anchor, dt.UTC), end=FAR_FUTURE)
                yield Page(
                    changes=changes,
                    cursor=Cursor(scheme=SCHEME, version=VERSION, state=done),
                    last=True,
                    quarantined=quarantined,
                    sweep_scope=scope,
                    coerced=coerced.counts,
                )
                return
            if not new_page and not new_sync:
                raise InvalidResponse("feishu event list: has_more without any token", provider="feishu")
            empty = not page.items and not page.quarantined
            guard = guard + 1 if empty and new_page == page_token and new_sync == sync_token else 0
            if guard > 20:
                raise InvalidResponse("feishu event list: empty pages without progress", provider="feishu")
            page_token = new_page
            mid = {"mid": state["mid"], "anchor": anchor, "page_token": page_token, "sync_token": sync_token,
                   **resolved}  # fmt: skip
            yield Page(
                changes=changes,
                cursor=Cursor(scheme=SCHEME, version=VERSION, state=mid),
                last=False,
                quarantined=quarantined,
                coerced=coerced.counts,
            )

    async def _attend(
        self,
        real_id: str,
        changes: list[Change],
        view: MirrorView,
        *,
        full: bool,
        me: str | None,
        tentative: set[str | None],
        window: Window,
        coerced: Coercions | None = None,
    ) -> list[Change]:
        """Attendees for the page's events: reused from the mirror or fetched (the list has none);
        those of a ``tentative`` item get their own answer reset (see ``_convert.unanswered``).

        Feishu events carry no version, etag or update time (apis.md 1.C.1; whether newer API
        versions add an ``update_time`` is UNCONFIRMED, so nothing relies on one), and an attendee's
        RSVP changes nothing the list shows. What tells calbridge the attendees may have changed:
        - an incremental round reports an event only because something changed (an RSVP reports
          it too, the ``rsvp`` change type of apis.md 1.F), so every reported event is fetched,
          its visible content changed or not — the safe reading;
        - a full listing (the first, or after an expired cursor) lists everything: an event the
          mirror holds with the same visible content keeps the mirror's attendees; a new or changed
          one is fetched. An RSVP-only change made while the cursor was dead is the one thing this
          cannot see; it lands with the event's next change (docs/design.md, "Feishu attendees").
        With ``attendees: window`` an event outside the window is not fetched and is stored with
        ``attendees_omitted``; it is fetched once it is listed again inside the window.
        """
        wanted = [c.event.id for c in changes if isinstance(c, Upsert) and c.event.status is not Status.CANCELLED]
        if not wanted:
            return changes
        stored = await view.get(wanted)
        fetch: list[int] = []
        for i, change in enumerate(changes):
            if isinstance(change, Delete) or change.event.status is Status.CANCELLED:
                continue
            event = change.event
            inside = self._attendee_scope == "all" or _touches(event, window)
            old = stored.get(event.id)
            if full and old is not None and _listed(old) == event and not (old.attendees_omitted and inside):
                if old.attendees:
                    people = mark_self(old.attendees, me)  # rows stored before ``self`` existed lack it
                    changes[i] = Upsert(event=attrs.evolve(event, attendees=people))
                elif old.attendees_omitted:
                    changes[i] = Upsert(event=attrs.evolve(event, attendees_omitted=True))
            elif not inside:
                changes[i] = Upsert(event=attrs.evolve(event, attendees_omitted=True))
            else:
                fetch.append(i)

        async def one(i: int) -> None:
            change = changes[i]
            assert isinstance(change, Upsert)
            found = await self._attendees(real_id, change.event.id, me, coerced)
            if found:
                changes[i] = Upsert(event=attrs.evolve(change.event, attendees=found))

        if fetch:  # concurrently: each request waits for its slot in the quota (``attendee_limit``)
            await asyncio.gather(*(one(i) for i in fetch))
        if tentative:
            for i, change in enumerate(changes):
                if isinstance(change, Upsert) and change.event.id in tentative:
                    changes[i] = Upsert(event=unanswered(change.event))
        return changes

    async def _attendees(
        self, real_id: str, event_id: str, me: str | None, coerced: Coercions | None = None
    ) -> tuple[Attendee, ...]:
        """The event's attendees (attendee list API, 100 per page)."""
        raw: list[FAttendee] = []
        token = ""
        while True:
            params = {"page_size": "100"}
            if token:
                params["page_token"] = token
            self.attendee_requests += 1
            try:
                async with self.attendee_limit.slot():
                    page = await self.client.attendees(real_id, event_id, params)
            except (NotFound, PermissionDenied) as exc:
                # Deleted since the list call (the next round says so) or hidden from this identity.
                logger.info("feishu attendees of %s unavailable: %s", event_id, exc.code)
                return ()
            raw.extend(page.items)  # items that do not fit are skipped (as non-objects always were)
            data = attendees_data(page)
            token = data.page_token or ""
            if not data.has_more or not token:
                return attendees_from(raw, me, coerced)

    def expand(
        self, calendar_id: str, series_ids: Sequence[str], *, window: Window, view: MirrorView
    ) -> AsyncIterator[Expansion]:
        """Occurrences of ``series_ids`` in ``window``: per-series ``instances`` or calendar-wide
        ``instance_view``, whichever needs fewer requests (see ``_expand``)."""
        return self._expander.expand(calendar_id, series_ids, window=window, view=view)
