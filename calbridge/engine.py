"""The sync engine: drives any provider through full and incremental rounds into a store.

``SyncEngine`` owns the aiohttp session (``trust_env`` so HTTPS_PROXY/NO_PROXY apply) and the
providers built on it. One round of one calendar:

1. resume what a killed run left: a round in progress continues from its last committed page; a
   sweep owed after a full listing runs before anything else;
2. pages are committed one by one, each page's changes together with the cursor that follows it;
3. ``CursorExpired`` starts a full listing under a new mark; when it ends, rows of older marks are
   swept in batches (held instead when that would remove more than half the mirror);
4. series that changed (or every series, once the window has moved) are expanded again.

Committed changes are published to listeners after each commit, in the store's terms (each key
once per batch; see ``docs/design.md``, "The change stream"); a round that changed something ends
with a batch marked ``last``; a round that changed nothing publishes nothing. A cancellation that
arrives during a commit is honoured once that commit's changes are published.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiohttp
import attrs

from ._http import request_log, ssl_context_for
from ._run import CalendarResult, ChangeBatch, SyncReport
from .config import AccountConfig, Config, structure_auth
from .errors import CalbridgeError, CursorExpired
from .model import Calendar, Change, Delete, Event, Kind, Window
from .provider import MirrorView, Provider, ProviderContext
from .registry import Registry, default_registry
from .retry import Retrier, RetryPolicy
from .store.base import CalendarState, PendingSweep, Round, Store

logger = logging.getLogger(__name__)
Listener = Callable[[ChangeBatch], Any]
ProgressHook = Callable[[str, str, dict[str, Any]], None]

REANCHOR_EVERY = dt.timedelta(days=1)


class _View:
    """MirrorView over one calendar of the store."""

    def __init__(self, store: Store, account: str, calendar_id: str) -> None:
        self._store, self._account, self._calendar = store, account, calendar_id

    async def get(self, ids: Sequence[str]) -> dict[str, Event]:
        return await self._store.get_events(self._account, self._calendar, ids)

    async def exceptions_of(self, series_ids: Sequence[str]) -> list[Event]:
        return await self._store.exceptions_of(self._account, self._calendar, series_ids)


@attrs.define
class _Round:
    """Mutable bookkeeping of one calendar's run."""

    result: CalendarResult
    owes_last: bool = False  # a last batch ends this run: it published, or finished a killed run's work


class SyncEngine:
    """``async with SyncEngine(config, store) as engine: report = await engine.sync()``."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        registry: Registry | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        session: aiohttp.ClientSession | None = None,
        concurrency: int = 8,
        per_account: int = 4,
        allow_mass_delete: bool = False,
        sweep_ratio: float = 0.5,
        sweep_batch: int = 1000,
        progress: ProgressHook | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self._registry = registry or default_registry
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._retry_policy = retry_policy or RetryPolicy()
        self._sleep = sleep
        self._session = session
        self._owns_session = session is None
        self._global = asyncio.Semaphore(concurrency)
        self._per_account_n = per_account
        self._per_account: dict[str, asyncio.Semaphore] = {}
        self.allow_mass_delete = allow_mass_delete
        self._sweep_ratio = sweep_ratio
        self._sweep_batch = sweep_batch
        self._progress = progress
        self._providers: dict[str, Provider] = {}
        self._listeners: list[Listener] = []
        self._queues: list[asyncio.Queue[ChangeBatch | None]] = []
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> SyncEngine:
        if self._closed:
            raise RuntimeError("this SyncEngine is closed")
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=300, sock_connect=30, sock_read=120)
            self._session = aiohttp.ClientSession(trust_env=True, timeout=timeout, trace_configs=[request_log()])
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the providers and the session this engine opened (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for provider in self._providers.values():
            try:
                await provider.aclose()
            except Exception:
                logger.exception("closing a provider failed")
        self._providers.clear()
        if self._owns_session and self._session is not None:
            await self._session.close()
        for q in self._queues:
            q.put_nowait(None)

    # -- listeners ---------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(batch)`` after every commit that changed the mirror (may be async)."""
        self._listeners.append(listener)

    async def changes(self) -> AsyncIterator[ChangeBatch]:
        """Committed changes as they happen, until the engine closes."""
        q: asyncio.Queue[ChangeBatch | None] = asyncio.Queue()
        self._queues.append(q)
        try:
            while (batch := await q.get()) is not None:
                yield batch
        finally:
            self._queues.remove(q)

    async def _commit(self, run: _Round, write: Awaitable[list[Change]]) -> list[Change]:
        """Await a store write, count and publish what it changed; a cancellation arriving meanwhile
        waits for the publication, so an in-process consumer never misses a committed change."""
        task = asyncio.ensure_future(self._commit_and_publish(run, write))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                await asyncio.wait([task])
            raise

    async def _commit_and_publish(self, run: _Round, write: Awaitable[list[Change]]) -> list[Change]:
        applied = await write
        run.result.count(applied)
        if applied:
            run.owes_last = True
            await self._publish(run.result.account, run.result.calendar_id, applied)
        return applied

    async def _publish(self, account: str, calendar_id: str, changes: Sequence[Change], *, last: bool = False) -> None:
        if not changes and not last:
            return
        batch = ChangeBatch(account=account, calendar_id=calendar_id, changes=tuple(changes), last=last)
        for q in self._queues:
            q.put_nowait(batch)
        for listener in self._listeners:
            try:
                out = listener(batch)
                if asyncio.iscoroutine(out):
                    await out
            except Exception:
                # A listener's bug must not fail the sync: the changes are committed either way.
                logger.exception(
                    "%s/%s: a change listener failed on %d changes", account, calendar_id, len(batch.changes)
                )

    # -- providers ---------------------------------------------------------------------------

    def provider(self, account: AccountConfig) -> Provider:
        """The provider for ``account``, built on first use."""
        if account.name not in self._providers:
            if self._session is None:
                raise RuntimeError("use SyncEngine as an async context manager")
            plugin = self._registry.get(account.provider)
            if isinstance(account.auth, Mapping):
                # Built in code (or loaded with resolve_auth=False): let the plugin structure it now.
                account = structure_auth(plugin, account, base_dir=self.config.base_dir, where=f"{account.name}.auth")
            ctx = ProviderContext(
                account=account,
                settings=self.config.settings,
                session=self._session,
                ssl=ssl_context_for(account),
                secrets=self.store,
                retry=Retrier(self._retry_policy, sleep=self._sleep, on_wait=self._on_wait(account.name)),
                clock=self._clock,
            )
            self._providers[account.name] = plugin.create(ctx)
        return self._providers[account.name]

    def _on_wait(self, account: str) -> Callable[[str, float, BaseException], None]:
        def hook(what: str, delay: float, exc: BaseException) -> None:
            self._report(account, "wait", {"what": what, "delay": delay, "error": type(exc).__name__})

        return hook

    def _report(self, account: str, kind: str, info: dict[str, Any]) -> None:
        if self._progress is not None:
            self._progress(account, kind, info)

    async def calendars(self, account: AccountConfig) -> Sequence[Calendar]:
        async with self._global:
            return await self.provider(account).calendars()

    async def _calendar_ids(self, account: AccountConfig) -> list[str]:
        if account.calendars is not None:
            return list(account.calendars)
        return [c.id for c in await self.calendars(account)]

    # -- a sync run --------------------------------------------------------------------------

    async def sync(
        self, *, account: str | None = None, full: bool = False, lock_wait: float | None = None
    ) -> SyncReport:
        """One round of every configured calendar (or one account's), then expansion.

        Failures are per calendar and land in the report; only cancellation and a busy store
        (:class:`~calbridge.errors.StoreBusy`) escape.
        """
        accounts = [self.config.account(account)] if account else list(self.config.accounts)
        report = SyncReport(started=self._clock())
        async with self.store.sync_lock(wait=lock_wait), asyncio.TaskGroup() as tg:
            for acc in accounts:
                tg.create_task(self._sync_account(acc, full, report))
        report.finished = self._clock()
        return report

    async def _sync_account(self, account: AccountConfig, full: bool, report: SyncReport) -> None:
        try:
            ids = await self._calendar_ids(account)
        except CalbridgeError as exc:
            report.calendars.append(CalendarResult(account=account.name, calendar_id="*", error=_describe(exc)))
            return
        except Exception as exc:  # a provider bug: this account fails, the others go on
            logger.exception("%s: listing calendars failed", account.name)
            report.calendars.append(CalendarResult(account=account.name, calendar_id="*", error=_describe(exc)))
            return
        sem = self._per_account.setdefault(account.name, asyncio.Semaphore(self._per_account_n))
        async with asyncio.TaskGroup() as tg:
            for cal in ids:
                tg.create_task(self._guarded(account, cal, full, sem, report))

    async def _guarded(
        self, account: AccountConfig, calendar_id: str, full: bool, sem: asyncio.Semaphore, report: SyncReport
    ) -> None:
        result = CalendarResult(account=account.name, calendar_id=calendar_id)
        report.calendars.append(result)
        async with sem, self._global:
            started = self._clock()
            run = _Round(result=result)
            try:
                await self._sync_calendar(account, calendar_id, full, run)
                if run.owes_last:
                    await self._publish(account.name, calendar_id, (), last=True)
            except CalbridgeError as exc:
                result.error = _describe(exc)
                logger.warning("%s/%s: %s", account.name, calendar_id, result.error)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                result.error = f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # a provider bug: this calendar fails, the others go on
                logger.exception("%s/%s: unexpected error", account.name, calendar_id)
                result.error = f"internal error: {_describe(exc)}"
            await self.store.record_result(account.name, calendar_id, at=started, error=result.error)
            self._report(account.name, "done", {"calendar": calendar_id, "result": result})

    async def _sync_calendar(self, account: AccountConfig, calendar_id: str, full: bool, run: _Round) -> None:
        provider = self.provider(account)
        view = _View(self.store, account.name, calendar_id)
        state = await self.store.get_state(account.name, calendar_id) or CalendarState(
            account=account.name, calendar_id=calendar_id
        )
        # A round finishing what a killed run began ends with a last batch even if its own part is quiet:
        # the killed run may have published changes without one.
        run.owes_last = state.round is not None or state.sweep is not None
        if state.sweep is not None and state.round is None:
            state = await self._sweep(state, run)
        now = self._clock()
        window = self.config.settings.window(now)
        if state.round is not Round.FULL and (
            full or state.cursor is None or self._reanchor_due(provider, state, now)
        ):
            state = await self._begin_full(state, now)
        restarted = False
        while True:
            try:
                state = await self._run_pages(provider, state, window, view, run)
                break
            except CursorExpired as exc:
                if restarted:
                    raise
                restarted = True
                logger.info("%s/%s: cursor expired (%s); full listing", account.name, calendar_id, exc.code)
                run.result.expired = True
                state = await self._begin_full(state, self._clock())
        if state.sweep is not None:
            state = await self._sweep(state, run)
        if not provider.capabilities.sync_yields_occurrences:
            await self._expand(provider, state, window, view, run)

    def _reanchor_due(self, provider: Provider, state: CalendarState, now: dt.datetime) -> bool:
        """Window-bound cursors (Graph) get a fresh full listing once a day, staggered per calendar."""
        if not provider.capabilities.window_bound_cursor or state.full_started is None:
            return False
        stagger = zlib.crc32(f"{state.account}/{state.calendar_id}".encode()) % 3600
        return now - state.full_started >= REANCHOR_EVERY + dt.timedelta(seconds=stagger)

    async def _begin_full(self, state: CalendarState, now: dt.datetime) -> CalendarState:
        state = attrs.evolve(state, cursor=None, round=Round.FULL, mark=state.mark + 1, full_started=now)
        await self.store.save_state(state)
        return state

    async def _run_pages(
        self, provider: Provider, state: CalendarState, window: Window, view: MirrorView, run: _Round
    ) -> CalendarState:
        round_kind = state.round or Round.INCREMENTAL
        run.result.full = run.result.full or round_kind is Round.FULL
        async for page in provider.sync(state.calendar_id, state.cursor, window=window, view=view):
            sweep = state.sweep
            if page.last and round_kind is Round.FULL:
                sweep = PendingSweep(mark=state.mark, scope=page.sweep_scope)
            state = attrs.evolve(state, cursor=page.cursor, round=None if page.last else round_kind, sweep=sweep)
            run.result.pages += 1
            run.result.quarantined += len(page.quarantined)
            await self._commit(run, self.store.commit_page(state, page.changes, page.quarantined))
            self._report(state.account, "page", {"calendar": state.calendar_id, "result": run.result})
            if page.last:
                break
        return state

    async def _sweep(self, state: CalendarState, run: _Round) -> CalendarState:
        sweep = state.sweep
        assert sweep is not None
        candidates, total = await self.store.sweep_count(state.account, state.calendar_id, sweep)
        if candidates and candidates * 1.0 > total * self._sweep_ratio and not self.allow_mass_delete:
            held = attrs.evolve(sweep, held=True, candidates=candidates, total=total)
            state = attrs.evolve(state, sweep=held)
            await self.store.save_state(state)
            run.result.sweep_held = (candidates, total)
            return state
        run.result.sweep_held = None
        while True:
            if not await self._commit(run, self.store.sweep_batch(state, sweep, limit=self._sweep_batch)):
                break
        state = attrs.evolve(state, sweep=None)
        await self.store.save_state(state)
        return state

    async def _expand(
        self, provider: Provider, state: CalendarState, window: Window, view: MirrorView, run: _Round
    ) -> None:
        acct, cal = state.account, state.calendar_id
        live = set(await self.store.series_ids(acct, cal))
        dirty = set(await self.store.dirty_series(acct, cal))
        run.owes_last = run.owes_last or bool(dirty)  # stale occurrences left by a killed run, too
        moved = state.expanded != window
        if moved or dirty - live:
            # Occurrences outside the new window, or of series that were deleted, cancelled or turned
            # single, must not linger.
            await self._commit(run, self.store.prune_occurrences(acct, cal, sorted(live), window))
        wanted = live if moved else dirty & live
        if wanted:
            done = 0
            progress = {"calendar": cal, "result": run.result, "done": done, "total": len(wanted)}
            self._report(acct, "expand", progress)
            async for exp in provider.expand(state.calendar_id, sorted(wanted), window=window, view=view):
                occurrences = [o for o in exp.occurrences if o.kind is Kind.OCCURRENCE]
                await self._commit(
                    run, self.store.replace_occurrences(acct, cal, exp.series_ids, exp.window, occurrences)
                )
                done = min(done + len(exp.series_ids), len(wanted))
                self._report(acct, "expand", {**progress, "done": done})
                if exp.quarantined:
                    await self.store.commit_page(state, [], exp.quarantined)
                    run.result.quarantined += len(exp.quarantined)
        if state.expanded != window:
            await self.store.save_state(attrs.evolve(state, expanded=window))


def _describe(exc: BaseException) -> str:
    name = type(exc).__name__
    return f"{name}: {exc}" if str(exc) else name


__all__ = ["ChangeBatch", "Delete", "SyncEngine", "SyncReport"]
