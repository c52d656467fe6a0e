"""The sync engine: drives any provider through full and incremental rounds into a store.

``SyncEngine`` owns the aiohttp session (``trust_env`` so HTTPS_PROXY/NO_PROXY apply) and the
providers built on it, bounds concurrency (globally and per account), contains each calendar's
failures and publishes what each commit changed. What one calendar's run does is decided by
``calbridge.planner`` and executed by ``calbridge._calendar_sync``: resume what a killed run left,
commit pages one by one with the cursor that follows each, answer a dead cursor with a full listing
and a sweep of older marks (held when it would remove more than half the mirror), then expand the
series that changed, and those whose expansion ahead of the window (the slack) the window's edge
has reached.

Committed changes are published to listeners after each commit, in the store's terms (each key
once per batch; see ``docs/design.md``, "The change stream"); a round that changed something ends
with a batch marked ``last``; a round that changed nothing publishes nothing. A cancellation that
arrives during a commit is honoured once that commit's changes are published.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import aiohttp

from . import _leased_sync as _leased
from ._calendar_sync import CalendarSync, RoundStopped
from ._http import request_log, ssl_context_for
from ._run import CalendarResult, ChangeBatch, SyncReport
from .config import AccountConfig, Config, structure_auth
from .errors import CalbridgeError, LeaseLost, RateLimited
from .lease import Lease, LeaseStore
from .model import Calendar, Change, Delete
from .planner import RoundLimits, SweepPolicy
from .provider import Provider, ProviderContext
from .registry import Registry, default_registry
from .retry import Retrier, RetryPolicy
from .store.base import Store
from .toolkit.scrub import ScrubFilter, scrub

logger = logging.getLogger(__name__)
logger.addFilter(ScrubFilter())  # its error lines carry server text (and tracebacks of provider bugs)
Listener = Callable[[ChangeBatch], Any]
ProgressHook = Callable[[str, str, dict[str, Any]], None]


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
        feed_keep: dt.timedelta | None = None,
        worker: str | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self._registry = registry or default_registry
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._retry_policy = retry_policy or RetryPolicy()
        self._sleep = sleep
        self._session = session
        self._owns_session = session is None
        self.concurrency = concurrency
        self._global = asyncio.Semaphore(concurrency)
        self._per_account_n = self.per_account = per_account
        self._per_account: dict[str, asyncio.Semaphore] = {}
        self.allow_mass_delete = allow_mass_delete
        self._sweep_ratio = sweep_ratio
        self._sweep_batch = sweep_batch
        self._progress = progress
        self._feed_keep = config.feed.keep if feed_keep is None else feed_keep
        self._providers: dict[str, Provider] = {}
        self._listeners: list[Listener] = []
        self._queues: list[asyncio.Queue[ChangeBatch | None]] = []
        self._closed = False
        self.worker = worker or _leased.default_worker()

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

    async def calendar_ids(self, account: AccountConfig) -> list[str]:
        """The calendars a round of ``account`` covers: its configured ones, or all it can see."""
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
        if isinstance(self.store, LeaseStore):  # shared by workers: each calendar under a lease
            await _leased.sync(self, self.store, accounts, full, report, worker=self.worker)
        else:
            async with self.store.sync_lock(wait=lock_wait):
                async with asyncio.TaskGroup() as tg:
                    for acc in accounts:
                        tg.create_task(self._sync_account(acc, full, report))
                await self.prune_feed()
        report.finished = self._clock()
        return report

    async def prune_feed(self, *, batches: int = 20, batch: int = 1000) -> int:
        """Drop feed entries older than ``feed_keep``, a small transaction at a time (a few per run, so a
        long backlog is worked off over runs, never in one long write); returns how many went."""
        # Entries carry the commit's wall time, not the engine's (injectable) clock.
        before = dt.datetime.now(dt.UTC) - self._feed_keep
        total = 0
        for _ in range(batches):
            n = await self.store.prune_changes(before, limit=batch)
            total += n
            if n < batch:
                break
        return total

    async def listed(self, account: AccountConfig, report: SyncReport) -> list[str] | None:
        """:meth:`calendar_ids`, or None with the failure in ``report`` (the account's other work is off)."""
        try:
            return await self.calendar_ids(account)
        except CalbridgeError as exc:
            report.calendars.append(CalendarResult(account=account.name, calendar_id="*", error=_describe(exc)))
        except Exception as exc:  # a provider bug: this account fails, the others go on
            logger.exception("%s: listing calendars failed", account.name)
            report.calendars.append(CalendarResult(account=account.name, calendar_id="*", error=_describe(exc)))
        return None

    async def _sync_account(self, account: AccountConfig, full: bool, report: SyncReport) -> None:
        ids = await self.listed(account, report)
        if ids is None:
            return
        async with asyncio.TaskGroup() as tg:
            for cal in ids:
                tg.create_task(self._guarded(account, cal, full, report))

    async def _guarded(self, account: AccountConfig, calendar_id: str, full: bool, report: SyncReport) -> None:
        result = CalendarResult(account=account.name, calendar_id=calendar_id)
        report.calendars.append(result)
        await self._round(account, calendar_id, full, result, None)

    async def sync_calendar(
        self,
        account_name: str,
        calendar_id: str,
        *,
        full: bool = False,
        stopping: Callable[[], bool] | None = None,
        lease: Lease | None = None,
    ) -> CalendarResult:
        """One round of one calendar, then its expansion, as :meth:`sync` runs each (same semaphores,
        same outcome recorded); the store's ``sync_lock`` (or ``lease``) is the caller's to hold.

        ``stopping`` is asked between pages: once true, the round requests no further page and ends
        with ``stopped`` set and no outcome recorded (the next round resumes). With ``lease`` (a store
        shared by workers) every write is fenced by it: once it is taken over the round ends with
        ``lease_lost`` set and nothing more written. Failures land in the result; only cancellation
        escapes.
        """
        account = self.config.account(account_name)
        result = CalendarResult(account=account.name, calendar_id=calendar_id)
        await self._round(account, calendar_id, full, result, stopping, lease)
        return result

    async def _round(
        self,
        account: AccountConfig,
        calendar_id: str,
        full: bool,
        result: CalendarResult,
        stopping: Callable[[], bool] | None,
        lease: Lease | None = None,
    ) -> None:
        store = self.store
        if lease is not None:
            if not isinstance(store, LeaseStore):
                raise TypeError(f"a lease was given, but {type(store).__name__} is not shared by workers")
            store = store.fenced(lease)
        sem = self._per_account.setdefault(account.name, asyncio.Semaphore(self._per_account_n))
        async with sem, self._global:
            if stopping is not None and stopping():  # stopped while it waited for its turn: not started
                result.stopped = True
                return
            started = self._clock()
            run: CalendarSync | None = None
            try:
                run = self._calendar_sync(account, calendar_id, result, stopping, store)
                await run.run(full=full)
                if run.owes_last:
                    await self._publish(account.name, calendar_id, (), last=True)
            except RoundStopped:
                result.stopped = True
                return
            except LeaseLost:
                self._lease_lost(result)
                return
            except CalbridgeError as exc:
                result.error = _describe(exc)
                if isinstance(exc, RateLimited) and exc.retry_after is not None:
                    result.retry_at = self._clock() + dt.timedelta(seconds=exc.retry_after)
                logger.warning("%s/%s: %s", account.name, calendar_id, result.error)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                result.error = scrub(f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # a provider bug: this calendar fails, the others go on
                logger.exception("%s/%s: unexpected error", account.name, calendar_id)
                result.error = f"internal error: {_describe(exc)}"
            # The outcome, with the state a quiet round left (its new cursor): one write.
            unsaved = None if run is None else run.unsaved
            try:
                await store.record_result(account.name, calendar_id, at=started, error=result.error, state=unsaved,
                                          coerced=result.coerced)  # fmt: skip
            except LeaseLost:
                self._lease_lost(result)
                return
            self._report(account.name, "done", {"calendar": calendar_id, "result": result})

    @staticmethod
    def _lease_lost(result: CalendarResult) -> None:
        """Another worker took the calendar mid-round: what this round committed stays, the rest is its."""
        result.lease_lost = True
        result.error = None
        logger.warning("%s/%s: lease lost to another worker; this round wrote nothing more",
                       result.account, result.calendar_id)  # fmt: skip

    def _calendar_sync(
        self,
        account: AccountConfig,
        calendar_id: str,
        result: CalendarResult,
        stopping: Callable[[], bool] | None,
        store: Store,
    ) -> CalendarSync:
        async def publish(changes: Sequence[Change]) -> None:
            await self._publish(account.name, calendar_id, changes)

        def progress(kind: str, info: dict[str, Any]) -> None:
            self._report(account.name, kind, info)

        settings = self.config.settings
        sweep = SweepPolicy(ratio=self._sweep_ratio, allow_mass_delete=self.allow_mass_delete, batch=self._sweep_batch)
        return CalendarSync(
            store=store,
            provider=self.provider(account),
            result=result,
            clock=self._clock,
            window=self.config.settings.window,
            slack=self.config.settings.slack,
            limits=RoundLimits(
                pages=settings.round_pages, deadline=settings.round_deadline, cursor_bytes=settings.token_bytes
            ),
            sweep=sweep,
            publish=publish,
            progress=progress,
            stopping=stopping or (lambda: False),
        )


def _describe(exc: BaseException) -> str:
    """The error line a result, the store and the log get: server text in it is scrubbed of secrets."""
    name = type(exc).__name__
    return scrub(f"{name}: {exc}") if str(exc) else name


__all__ = ["ChangeBatch", "Delete", "SyncEngine", "SyncReport"]
