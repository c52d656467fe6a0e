"""One calendar's run: the planner decides (``calbridge.planner``), this executes.

It loads the calendar's saved state, settles a sweep owed from before, runs the round the planner
plans (committing each page with the state it leaves), settles the sweep a full listing leaves,
then expands; every store write is counted and published before the next one starts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from . import planner
from ._run import CalendarResult
from .errors import CursorExpired, RateLimited, RunawayPaging
from .model import Change, Event, Kind, Window
from .provider import Expansion, Provider
from .store.base import CalendarState, MirrorReader, Store

EXPANSION_BATCH = 2_500
"""Occurrences per store write: a provider's one-series expansions are written together up to this
many (1,000 series were 1,000 transactions; a page of the listing holds as many events)."""

_RUNAWAY = {
    planner.Runaway.PAGES: "the round reached its limit of {limits.pages} pages; it starts over next run",
    planner.Runaway.DEADLINE: "the round ran past its deadline of {limits.deadline} after {pages} pages; "
    "it resumes next run",
    planner.Runaway.REPEAT: "the server repeated a page link or token after {pages} pages; the round starts over "
    "next run",
}

logger = logging.getLogger("calbridge.engine")  # the engine's records, whichever module runs them
Publish = Callable[[Sequence[Change]], Awaitable[None]]
Progress = Callable[[str, dict[str, Any]], None]


class RoundStopped(Exception):
    """A stop was asked between pages: what was committed stays, and the next round resumes from it."""


class _View:
    """MirrorView over one calendar of the store."""

    def __init__(self, store: MirrorReader, account: str, calendar_id: str) -> None:
        self._store, self._account, self._calendar = store, account, calendar_id

    async def get(self, ids: Sequence[str]) -> dict[str, Event]:
        return await self._store.get_events(self._account, self._calendar, ids)

    async def exceptions_of(self, series_ids: Sequence[str]) -> list[Event]:
        return await self._store.exceptions_of(self._account, self._calendar, series_ids)


class CalendarSync:
    """One run of one calendar; ``owes_last`` tells the engine to end it with a ``last`` batch."""

    def __init__(
        self,
        *,
        store: Store,
        provider: Provider,
        result: CalendarResult,
        clock: Callable[[], dt.datetime],
        window: Callable[[dt.datetime], Window],
        sweep: planner.SweepPolicy,
        slack: dt.timedelta = dt.timedelta(0),
        limits: planner.RoundLimits | None = None,
        publish: Publish,
        progress: Progress,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self._store, self._provider, self.result = store, provider, result
        self._account, self._calendar = result.account, result.calendar_id
        self._view = _View(store, self._account, self._calendar)
        self._clock, self._window, self._policy, self._slack = clock, window, sweep, slack
        self._publish, self._progress = publish, progress
        self._limits = limits or planner.RoundLimits()
        self._stopping = stopping
        self.owes_last = False  # it published, or finished a killed run's work
        self._saved: CalendarState | None = None  # the state the store holds, as far as this run knows
        self._unsaved: CalendarState | None = None
        self._wrote = False  # a page or a sweep batch was committed (series may have been flagged)

    async def run(self, *, full: bool) -> None:
        try:
            await self._run(full=full)
        except RateLimited as exc:
            self.result.retry_at = exc.retry_at
            raise

    async def _run(self, *, full: bool) -> None:
        start = await self._store.round_start(self._account, self._calendar)
        state = start.state or CalendarState(account=self._account, calendar_id=self._calendar)
        self._saved = start.state
        self.owes_last = planner.owes_last_batch(state)
        if planner.sweep_first(state):
            state = await self._sweep(state)
        now = self._clock()
        window = self._window(now)
        caps = self._provider.capabilities
        plan = planner.plan_round(state, now, full=full, capabilities=caps, slack=self._slack)
        if plan.start is planner.Start.FULL:
            state = await self._save(planner.begin_full(state, now))
        state = await self._round(state, planner.sync_window(window, caps, self._slack))
        if planner.sweep_after(state):
            state = await self._sweep(state)
        # A round that wrote nothing, with nothing flagged and the window where it was, has nothing to
        # expand: it need not read the calendar's series (a quiet round is two store calls).
        if plan.expand and (
            self._wrote or not planner.expansion_idle(start.dirty, expanded=state.expanded, window=window)
        ):
            await self._expand(state, window)

    @property
    def unsaved(self) -> CalendarState | None:
        """The state a quiet page left and no write has saved yet: the engine saves it with the outcome."""
        return self._unsaved

    async def _save(self, state: CalendarState) -> CalendarState:
        await self._store.save_state(state)
        self._saved_now(state)
        return state

    def _saved_now(self, state: CalendarState) -> None:
        self._saved, self._unsaved = state, None

    async def _round(self, state: CalendarState, window: Window) -> CalendarState:
        restarted = False
        while True:
            try:
                return await self._pages(state, window)
            except CursorExpired as exc:
                if restarted:  # dead again right after a fresh start: a provider fault, not a loop
                    raise
                restarted = True
                logger.info("%s/%s: cursor expired (%s); full listing", self._account, self._calendar, exc.code)
                self.result.expired = True
                state = await self._save(planner.on_cursor_expired(state, self._clock()))

    async def _pages(self, state: CalendarState, window: Window) -> CalendarState:
        self.result.full = self.result.full or planner.phase(state) is planner.Phase.LISTING
        seen = set() if state.cursor is None else {planner.cursor_key(state.cursor.dumps())}
        began = time.monotonic()
        async for page in self._provider.sync(self._calendar, state.cursor, window=window, view=self._view):
            before, state = state, planner.on_page(state, page)
            await self._bound(before, state, page.cursor.dumps(), page.last, seen, began)
            self.result.pages += 1
            self.result.quarantined += len(page.quarantined)
            if page.coerced:
                self._coerced(page.coerced)
            if page.changes or page.quarantined:
                await self._commit(self._store.commit_page(state, page.changes, page.quarantined))
                self._saved_now(state)
                self._wrote = True
            elif state != self._saved:
                # No page transaction for a page with nothing in it: its state (a rotated cursor) is
                # saved by the next write, or with the round's outcome. A kill before that resumes from
                # the cursor before it, which lists the same nothing again.
                self._unsaved = state
            self._progress("page", {"calendar": self._calendar, "result": self.result})
            if page.last:
                break
            if self._stopping():  # the service drains: request no further page
                raise RoundStopped
        return state

    async def _bound(
        self, before: CalendarState, state: CalendarState, cursor: str, last: bool, seen: set[str], began: float
    ) -> None:
        """Stop a round that runs away, or whose cursor is too large to keep, before its page is committed."""
        where = f"{self._account}/{self._calendar}"
        if planner.cursor_oversized(cursor, self._limits):
            raise CursorExpired(f"{where}: the server's page token or link is over {self._limits.cursor_bytes} bytes; "
                                "not kept", code="oversized")  # fmt: skip
        elapsed = dt.timedelta(seconds=time.monotonic() - began)
        key = planner.cursor_key(cursor)
        why = planner.runaway(state, key, last=last, seen=seen, elapsed=elapsed, limits=self._limits)
        if why is None:
            seen.add(key)
            return
        dropped = planner.on_runaway(before, self._clock(), why)
        if dropped is not None:
            await self._save(dropped)
        raise RunawayPaging(f"{where}: {_RUNAWAY[why].format(limits=self._limits, pages=state.pages)}", reason=why)

    async def _sweep(self, state: CalendarState) -> CalendarState:
        sweep = state.sweep
        assert sweep is not None
        candidates, total = await self._store.sweep_count(self._account, self._calendar, sweep)
        if self._policy.holds(candidates, total):
            state = await self._save(planner.hold_sweep(state, candidates, total))
            self.result.sweep_held = (candidates, total)
            return state
        self.result.sweep_held = None
        self._wrote = True
        while await self._commit(self._store.sweep_batch(state, sweep, limit=self._policy.batch)):
            pass  # each batch commits with the state, so a kill mid-sweep resumes it
        self._saved_now(state)
        return await self._save(planner.sweep_done(state))

    async def _expand(self, state: CalendarState, window: Window) -> None:
        acct, cal = self._account, self._calendar
        flagged = await self._store.dirty_series(acct, cal)
        moved = planner.window_moved(state.expanded, window)
        plan = planner.plan_expansion(
            await self._store.series_ids(acct, cal),
            flagged,
            await self._store.series_horizons(acct, cal) if moved else {},
            expanded=state.expanded,
            window=window,
            slack=self._slack,
            calendar_wide=self._provider.capabilities.calendar_expansion,
        )
        self.owes_last = self.owes_last or plan.flagged  # stale occurrences left by a killed run, too
        done, total = 0, len(plan.to_expand)
        progress = {"calendar": cal, "result": self.result, "done": done, "total": total}
        if total:
            self._progress("expand", progress)
        for step in plan.steps:
            if self._stopping():  # each step's writes are their own transactions; the rest stay flagged
                raise RoundStopped
            held: list[Expansion] = []  # expansions of one window, written together (one transaction)
            size = 0
            async for exp in self._provider.expand(cal, list(step.series_ids), window=step.window, view=self._view):
                if held and held[0].window != exp.window:
                    done = await self._write(held, step.horizon, window, state, done, progress)
                    held, size = [], 0
                held.append(exp)
                size += len(exp.occurrences)
                if size >= EXPANSION_BATCH:
                    done = await self._write(held, step.horizon, window, state, done, progress)
                    held, size = [], 0
            if held:
                done = await self._write(held, step.horizon, window, state, done, progress)
        if plan.prune:  # after the expansions: the occurrences now in the window are shown fresh
            await self._commit(self._store.prune_occurrences(acct, cal, list(plan.live), window))
        if plan.window_moved:
            await self._save(planner.expanded_for(state, window))

    async def _write(
        self, held: list[Expansion], horizon: dt.datetime, shown: Window, state: CalendarState, done: int,
        progress: dict[str, Any],
    ) -> int:  # fmt: skip
        """Store expansions of one window in one write (their quarantined items after it); returns how
        many series are done now."""
        series = [sid for exp in held for sid in exp.series_ids]
        occurrences = [o for exp in held for o in exp.occurrences if o.kind is Kind.OCCURRENCE]
        quarantined = [q for exp in held for q in exp.quarantined]
        for exp in held:
            if exp.coerced:
                self._coerced(exp.coerced)
        exp_window = held[0].window
        # What lies past the window is stored hidden; the horizon only counts what was asked.
        await self._commit(
            self._store.replace_occurrences(
                self._account, self._calendar, series, exp_window, occurrences, shown=shown,
                horizon=min(horizon, exp_window.end),
            )
        )  # fmt: skip
        done = min(done + len(series), progress["total"])
        self._progress("expand", {**progress, "done": done})
        if quarantined:
            await self._store.record_quarantined(self._account, self._calendar, quarantined, mark=state.mark)
            self.result.quarantined += len(quarantined)
        return done

    def _coerced(self, counts: Mapping[str, int]) -> None:
        """Count coerced values; each field is logged the first time it is coerced in a round."""
        for field in self.result.add_coerced(counts):
            logger.warning(
                "%s/%s: unreadable %s values read as the schema's neutral value (counted in `calbridge status`)",
                self._account, self._calendar, field,
            )  # fmt: skip

    async def _commit(self, write: Awaitable[list[Change]]) -> list[Change]:
        """Await a store write, count and publish what it changed; a cancellation arriving meanwhile
        waits for the publication, so an in-process consumer never misses a committed change."""
        task = asyncio.ensure_future(self._commit_and_publish(write))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                await asyncio.wait([task])
            raise

    async def _commit_and_publish(self, write: Awaitable[list[Change]]) -> list[Change]:
        applied = await write
        self.result.count(applied)
        if applied:
            self.owes_last = True
            await self._publish(applied)
        return applied
