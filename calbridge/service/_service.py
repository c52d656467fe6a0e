"""The service: keeps every calendar fresh until stopped. ``calbridge run`` is a thin layer on it.

::

    async with Service(config, store) as service:   # holds the store's sync lock, serves `listen`
        await service.serve()                         # until service.stop() (the CLI: on SIGTERM/SIGINT)

It runs a round of every calendar at start, then each calendar when due (:mod:`._schedule` decides:
``poll``, push triggers, backoff, ``retry_at``), through :meth:`SyncEngine.sync_calendar`, so the
engine's semaphores bound the work per account and overall. :meth:`stop` drains: ``/healthz`` turns
503, no round starts, rounds in flight stop after the page they are on, and whatever has not finished
within ``service.drain`` is cancelled (a commit under way completes; a page not arrived is dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from aiohttp import web

from .._leased_sync import default_worker
from .._run import CalendarResult
from ..config import AccountConfig, Config, Listen
from ..engine import SyncEngine
from ..errors import LeaseLost
from ..lease import LISTING, Lease, LeaseStore
from ..push import NoticeKind
from ..registry import Registry, default_registry
from ..store.base import Store
from . import _schedule as schedule
from ._fleet import Fleet
from ._lines import round_line
from ._seams import BackoffRecorder, PushStateRecorder, Subscriptions, default_subscriptions
from ._serve import Site, push_accounts, receiver_app
from ._triggers import Trigger

logger = logging.getLogger("calbridge.service")
Key = tuple[str, str]
NO_PUBLIC_URL = "polled: no service.public_url"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Service:
    """``async with Service(config, store) as service: await service.serve()``.

    ``clock`` is the engine's (what the window is read against); the schedule runs on ``wall``, the
    real time. With ``serve_http=False`` nothing is bound: mount :attr:`app` in your own aiohttp
    server. ``subscriptions`` replaces the installed subscription manager; ``on_round`` is called with
    each finished round's result; ``policy`` replaces the schedule's periods (``poll`` from the config,
    the backoff's). Starts no thread and installs no signal handler.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        engine: SyncEngine | None = None,
        registry: Registry | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        wall: Callable[[], dt.datetime] = _utcnow,
        rand: Callable[[], float] = random.random,
        accounts: Sequence[str] | None = None,
        listen: Listen | None = None,
        serve_http: bool = True,
        subscriptions: Subscriptions | None = None,
        unsubscribe: bool = False,
        lock_wait: float | None = None,
        on_round: Callable[[CalendarResult], Any] | None = None,
        policy: schedule.Policy | None = None,
        worker: str | None = None,
    ) -> None:
        self.config, self.store = config, store
        self.worker = worker or default_worker()
        self._registry = registry or default_registry
        self._owns_engine = engine is None
        self.engine = engine or SyncEngine(config, store, registry=self._registry, clock=clock, worker=self.worker)
        self._clock = clock or wall
        self._wall, self._rand = wall, rand
        picked = [config.account(n) for n in accounts] if accounts else list(config.accounts)
        self._accounts: list[AccountConfig] = picked
        self._listen = listen or config.service.listen
        self._serve_http, self._unsubscribe, self._lock_wait = serve_http, unsubscribe, lock_wait
        self._on_round = on_round
        self._subs = subscriptions
        self._policy = policy or schedule.Policy(poll=config.service.poll)
        self._slots: dict[Key, schedule.Slot] = {}
        self._rounds: dict[Key, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._renewal_moved = asyncio.Event()  # a subscription was taken, replaced or renewed
        self._stopping = False
        self._stack = contextlib.AsyncExitStack()
        self._app: web.Application | None = None
        self._site: Site | None = None
        # A store shared by workers: this one syncs the calendars it holds (``_fleet``).
        self._fleet: Fleet | None = None
        if isinstance(store, LeaseStore):
            self._fleet = Fleet(store, self.worker, config.service.lease, picked, claimed=self._claimed,
                                dropped=self._dropped, busy=lambda key: key in self._rounds,
                                relayed=self._relayed)  # fmt: skip

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Service:
        stack = self._stack
        try:
            if self._owns_engine:
                await stack.enter_async_context(self.engine)
            if self._fleet is None:
                await stack.enter_async_context(self.store.sync_lock(wait=self._lock_wait))
            public_url = self.config.service.public_url
            if self._subs is None and public_url is not None:
                self._subs = default_subscriptions(self.store, self.engine, public_url, self._wall)
            verifiers, accounts = push_accounts(self.config, self._registry)
            self._app = receiver_app(
                verifiers=verifiers, accounts=accounts, store=self.store, trigger=self.trigger, draining=self.draining
            )
            if self._fleet is None:
                self._take_on()
            else:
                await stack.enter_async_context(self._fleet.listening())
                await self._fleet.start()
            if self._serve_http:
                self._site = Site(self._app, self._listen)
                await self._site.start()
                stack.push_async_callback(self._site.close)
        except BaseException:
            await self._cancel(self._background)
            await stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()
        await self._cancel(set(self._rounds.values()) | self._background)
        try:
            if self._unsubscribe and self._subs is not None:
                # A fleet's worker removes the subscriptions of the calendars it holds, no one else's.
                held = None if self._fleet is None else self._fleet.held.calendars()
                try:
                    async with asyncio.timeout(max(self.config.service.drain.total_seconds(), 5.0)):
                        await self._subs.unsubscribe_all([a.name for a in self._accounts], calendars=held)
                except Exception:
                    logger.exception("removing the subscriptions failed")
            if self._fleet is not None:
                await self._fleet.stop()
        finally:
            await self._stack.aclose()

    @property
    def app(self) -> web.Application:
        """The receiver app (push endpoints and ``/healthz``), to serve or mount; inside ``async with``."""
        if self._app is None:
            raise RuntimeError("use Service as an async context manager")
        return self._app

    @property
    def port(self) -> int | None:
        """The port bound (``listen`` may ask for 0), ``None`` with ``serve_http=False``."""
        return None if self._site is None else self._site.port

    @property
    def listen_host(self) -> str:
        """The host served (``service.listen``, or the ``listen`` given)."""
        return self._listen.host

    def draining(self) -> bool:
        """True once :meth:`stop` was called: ``/healthz`` answers 503."""
        return self._stopping

    def stop(self) -> None:
        """Begin the drain (safe from a signal handler on the loop); :meth:`serve` returns after it."""
        self._stopping = True
        self._wake.set()

    def trigger(self, trigger: Trigger) -> None:
        """Act on a verified notice (called by the receiver after it answered); never blocks or raises."""
        try:
            self._route(trigger)
        except Exception:
            logger.exception("%s/%s: a trigger failed", trigger.account, trigger.calendar_id)

    # -- the loop ----------------------------------------------------------------------------

    def _take_on(self) -> None:
        """Every configured calendar due now (and each account's list, for ``calendars: all``), so a
        notice that arrives before :meth:`serve` finds its calendar."""
        now = self._wall()
        for account in self._accounts:
            if account.calendars is None:
                self._slots[account.name, LISTING] = schedule.first(now)
            else:
                for calendar_id in account.calendars:
                    self._add_calendar(account, calendar_id, now)

    async def serve(self) -> None:
        """Run until :meth:`stop`, then drain (at most ``service.drain``) and return."""
        if self._subs is not None:
            self._spawn(self._renewals())
        if self._fleet is not None:
            self._spawn(self._fleet.run())
        self._spawn(self._prune_feed())
        while not self._stopping:
            self._wake.clear()
            now = self._wall()
            waiting = self._start_due(now)
            # Rounds due that wait for room are started when one finishes (it wakes the loop); the
            # loop sleeps until the next one to come due otherwise.
            later = (s for s in self._slots.values() if s.due > now) if waiting else self._slots.values()
            wake = schedule.next_wake(later)
            timeout = None if wake is None else max((wake - now).total_seconds(), 0.0)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
        await self._drain()

    def _start_due(self, now: dt.datetime) -> bool:
        """Start the rounds due, earliest first, as far as there is room; True when some must wait.

        Room is twice the engine's concurrency in all and per account: enough to keep its semaphores
        busy, few enough that a calendar waiting for its turn is not yet taken (a fleet may give it to
        a worker that joined)."""
        total = 2 * self.engine.concurrency - len(self._rounds)
        per_account: dict[str, int] = {}
        for key in self._rounds:
            per_account[key[0]] = per_account.get(key[0], 0) + 1
        due = sorted((slot.due, key) for key, slot in self._slots.items() if schedule.due_now(slot, now))
        waiting = False
        for _, key in due:
            slot = self._slots[key]
            if not self._may_start(key):
                self._slots[key] = schedule.deferred(slot, now + self._beat)
                continue
            if total <= 0 or per_account.get(key[0], 0) >= 2 * self.engine.per_account:
                waiting = True
                continue
            self._slots[key] = schedule.started(slot)
            self._rounds[key] = asyncio.create_task(self._round(key), name=f"calbridge {key[0]}/{key[1]}")
            total -= 1
            per_account[key[0]] = per_account.get(key[0], 0) + 1
        return waiting

    async def _drain(self) -> None:
        rounds = set(self._rounds.values())
        if rounds:
            logger.info("stopping: %d rounds in flight, up to %s to commit", len(rounds), self.config.service.drain)
            _, late = await asyncio.wait(rounds, timeout=self.config.service.drain.total_seconds())
            if late:
                logger.info("stopping: %d rounds abandoned mid-page (nothing of that page written)", len(late))
            await self._cancel(late)
        await self._cancel(self._background)

    @staticmethod
    async def _cancel(tasks: set[asyncio.Task[Any]]) -> None:
        pending = [t for t in tasks if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _add_calendar(self, account: AccountConfig, calendar_id: str, now: dt.datetime) -> None:
        if (account.name, calendar_id) in self._slots:
            return
        self._slots[account.name, calendar_id] = schedule.first(now)
        if self._subs is not None:
            self._spawn(self._ensure(account, calendar_id))
        elif self.config.service.public_url is None and isinstance(self.store, PushStateRecorder):
            self._spawn(self.store.set_push_state(account.name, calendar_id, NO_PUBLIC_URL))

    async def _round(self, key: Key) -> None:
        account, calendar_id = key
        before = self._slots[key].failures
        result: CalendarResult | None = None
        lease = None if self._fleet is None else self._fleet.held.get(key)
        store = self.store if lease is None or self._fleet is None else self._fleet.store.fenced(lease)
        try:
            if calendar_id == LISTING:
                outcome = await self._list(account)
            else:
                result = await self.engine.sync_calendar(account, calendar_id, stopping=self._stopping_for(key),
                                                         lease=lease)  # fmt: skip
                if result.lease_lost:
                    self._dropped(key, "lost")
                retry_at = None
                if result.retry_at is not None:  # the engine's clock may be pinned; the schedule's is real
                    retry_at = self._wall() + (result.retry_at - self._clock())
                outcome = schedule.Outcome(ok=result.error is None, stopped=result.stopped, retry_at=retry_at)
        except Exception:  # a bug here must not stop the service: this calendar backs off
            logger.exception("%s/%s: the round failed", account, calendar_id)
            outcome = schedule.Outcome(ok=False)
        now = self._wall()
        self._rounds.pop(key, None)
        if key not in self._slots:  # dropped meanwhile (its lease lost or given up)
            if result is not None and self._on_round is not None:
                self._on_round(result)
            self._wake.set()
            return
        slot = self._slots[key] = schedule.finished(self._slots[key], outcome, now, self._rand(), self._policy)
        if outcome.stopped and not self._may_start(key):  # its lease may have lapsed: after the next beat
            slot = self._slots[key] = schedule.deferred(slot, now + self._beat)
        if calendar_id != LISTING and result is not None:
            logger.info("%s", round_line(result, slot, now))
            if self._on_round is not None:
                self._on_round(result)
        if (slot.failures or before) and not outcome.stopped and isinstance(store, BackoffRecorder):
            next_attempt = slot.due if slot.failures else None
            with contextlib.suppress(LeaseLost):  # taken over since: the holder records its own
                await store.record_backoff(account, calendar_id, failures=slot.failures, next_attempt=next_attempt)
        self._wake.set()

    def _may_start(self, key: Key) -> bool:
        """A round may start unless the service drains or (a fleet) the calendar's lease may have lapsed."""
        return self._fleet is None or self._fleet.held.valid(key)

    @property
    def _beat(self) -> dt.timedelta:
        return dt.timedelta(seconds=self._fleet.period if self._fleet is not None else 1.0)

    def _stopping_for(self, key: Key) -> Callable[[], bool]:
        """What a round asks between pages: the service drains, or this worker's lease on the calendar
        may have lapsed (its renewals stalled): request no further page."""
        fleet = self._fleet
        if fleet is None:
            return self.draining
        return lambda: self._stopping or not fleet.held.valid(key)

    async def _list(self, name: str) -> schedule.Outcome:
        """An account with ``calendars: all``: its calendars, each taken on (and re-listed every poll)."""
        account = self.config.account(name)
        try:
            ids = await self.engine.calendar_ids(account)
        except Exception as exc:
            logger.info("%s: listing calendars FAILED: %s", name, f"{type(exc).__name__}: {exc}")
            return schedule.Outcome(ok=False)
        if self._fleet is not None:  # every worker may claim them now, this one included
            await self._fleet.offer([(name, c) for c in ids])
            return schedule.Outcome(ok=True)
        now = self._wall()
        for calendar_id in ids:
            self._add_calendar(account, calendar_id, now)
        return schedule.Outcome(ok=True)

    # -- the fleet (a store shared by workers) ---------------------------------------------------

    def _claimed(self, lease: Lease) -> None:
        """A calendar claimed: due now, subscribed by this worker from now on."""
        now = self._wall()
        account = self.config.account(lease.account)
        if lease.calendar_id == LISTING:
            self._slots.setdefault(lease.key, schedule.first(now))
        else:
            self._add_calendar(account, lease.calendar_id, now)
        self._wake.set()

    def _dropped(self, key: Key, why: str) -> None:
        """A calendar no longer held: no round of it starts here, its subscription is the next holder's.
        A round in flight of a lost one is cancelled (its writes would be refused anyway)."""
        self._slots.pop(key, None)
        task = self._rounds.get(key)
        if why == "lost" and task is not None and task is not asyncio.current_task():
            del self._rounds[key]
            task.cancel()
        if self._subs is not None and key[1] != LISTING:
            self._subs.release(*key)

    def _relayed(self, trigger: Trigger) -> None:
        """A notice another worker received for a calendar held here."""
        try:
            self._route(trigger, relayed=True)
        except Exception:
            logger.exception("%s/%s: a relayed trigger failed", trigger.account, trigger.calendar_id)

    # -- push --------------------------------------------------------------------------------

    def _route(self, trigger: Trigger, *, relayed: bool = False) -> None:
        if self._stopping or trigger.kind is NoticeKind.SYNC:
            return
        key = (trigger.account, trigger.calendar_id)
        if self._fleet is not None and key not in self._slots:
            if not relayed:  # held by another worker (or by none yet: the next to claim it runs a round)
                self._spawn(self._fleet.relay(trigger))
            return
        if trigger.kind is NoticeKind.REAUTHORIZE:
            if self._subs is not None and trigger.subscription_id is not None:
                self._spawn(self._reauthorize(trigger.subscription_id))
            return
        if key not in self._slots:
            logger.info("%s/%s: a notice for a calendar this service does not sync", *key)
            return
        if trigger.kind is NoticeKind.REMOVED and self._subs is not None:
            self._spawn(self._recreate(key))
            return
        self._slots[key] = schedule.triggered(self._slots[key], self._wall(), self._policy)
        self._wake.set()

    async def _recreate(self, key: Key) -> None:
        assert self._subs is not None
        await self._subs.recreate(*key)
        self._renewal_moved.set()
        self._route(Trigger(account=key[0], calendar_id=key[1], kind=NoticeKind.CHANGE))

    async def _ensure(self, account: AccountConfig, calendar_id: str) -> None:
        assert self._subs is not None
        await self._subs.ensure(account, calendar_id)
        self._renewal_moved.set()

    async def _reauthorize(self, subscription_id: str) -> None:
        assert self._subs is not None
        await self._subs.reauthorize(subscription_id)
        self._renewal_moved.set()

    async def _renewals(self) -> None:
        """Renew subscriptions before they expire, until stopped; the wait is cut short when a
        subscription is taken on after it began (at start every one is: the first wait would be ``poll``)."""
        assert self._subs is not None
        poll = self._policy.poll.total_seconds()
        while not self._stopping:
            due = self._subs.next_renewal()
            delay = poll if due is None else min(poll, (due - self._wall()).total_seconds())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(delay, 1.0)):
                    await self._renewal_moved.wait()
            self._renewal_moved.clear()
            if self._stopping:
                return
            try:
                await self._subs.renew_due()
            except Exception:
                logger.exception("renewing subscriptions failed")

    async def _prune_feed(self) -> None:
        """Feed retention (``feed.keep``) in small batches, off the rounds' path: now, then hourly."""
        while not self._stopping:
            try:
                await self.engine.prune_feed()
            except Exception:
                logger.exception("pruning the change feed failed")
            await asyncio.sleep(3600)

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` in the background (logged if it fails, cancelled on the way out)."""

        async def guarded() -> None:
            try:
                await work
            except Exception:
                logger.exception("a background task of the service failed")

        task = asyncio.create_task(guarded())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
