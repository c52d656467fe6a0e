"""The subscriptions' lifecycle: subscribe each pushable calendar (or say why it is polled), renew at
half-life, recreate what a provider dropped, stop them all on ``--unsubscribe``::

    manager = SubscriptionManager(store, engine, public_url="https://hooks.example/cb", clock=clock)
    await manager.ensure(account, "primary")        # at start, per calendar
    await manager.renew_due()                       # whenever next_renewal() comes

Subscriptions live in the store (``SubscriptionStore``), so a restart reuses the alive ones. Every
change of a calendar's push is written as its push state (``status``): ``pushed until <UTC>`` or
``polled: <why>``. Failures are logged per calendar (never a secret) and retried on the next
:meth:`~SubscriptionManager.renew_due` after :attr:`~SubscriptionManager.retry`; the calendar is
polled meanwhile.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import secrets
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import Protocol

import attrs

from ..config import AccountConfig, Config
from ..errors import CalbridgeError, NotFound
from ..provider import Clock, Provider
from ..push import PushProvider, Subscription, push_provider
from ..store.base import SubscriptionStore

logger = logging.getLogger(__name__)

DEFAULT_LIFETIME = dt.timedelta(days=2)  # asked for; each provider grants at most its own maximum
RETRY = dt.timedelta(minutes=1)
CONCURRENCY = 8  # provider calls at once while renewing or unsubscribing many calendars
_LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


class ProviderSource(Protocol):
    """Where the manager gets accounts and providers: a :class:`~calbridge.engine.SyncEngine`."""

    config: Config

    def provider(self, account: AccountConfig) -> Provider: ...


def renewal_due(sub: Subscription) -> dt.datetime | None:
    """When ``sub`` should be renewed: at half its lifetime (None: it does not expire). A row without
    its creation time is due at once."""
    if sub.expires is None:
        return None
    if sub.created is None:
        return _LONG_AGO
    return sub.created + max(sub.expires - sub.created, dt.timedelta(0)) / 2


def pushed_state(sub: Subscription) -> str:
    """The push state of a calendar held by ``sub``."""
    if sub.expires is None:
        return "pushed until unsubscribed"
    return f"pushed until {sub.expires.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"


def polled_reason(account: AccountConfig, *, public_url: str | None, provider: PushProvider | None) -> str | None:
    """Why ``account``'s calendars are polled (None: they can push)."""
    if account.push is False:
        return "push: false"
    if not public_url:
        return "no service.public_url"
    if provider is None:
        return "provider cannot push"
    return provider.push_unavailable()


def alive(sub: Subscription, now: dt.datetime) -> bool:
    return sub.expires is None or sub.expires > now


@attrs.frozen(kw_only=True)
class _Stop:
    account: AccountConfig
    subscription: Subscription
    at: dt.datetime


@attrs.frozen(kw_only=True)
class _Retry:
    account: AccountConfig
    calendar_id: str
    at: dt.datetime


class SubscriptionManager:
    """Keeps one live subscription per pushable calendar (see the module docstring).

    Args:
        store: where subscriptions, their secrets and push states live.
        engine: gives each account's provider (``engine.provider(account)``) and the config.
        public_url: ``service.public_url`` (None: nothing pushes).
        clock: the current aware UTC time.
        lifetime: what each subscription asks for (the provider may grant less).
        retry: how long after a failed subscribe or renewal it is tried again.
    """

    def __init__(
        self,
        store: SubscriptionStore,
        engine: ProviderSource,
        public_url: str | None,
        clock: Clock,
        lifetime: dt.timedelta = DEFAULT_LIFETIME,
        *,
        retry: dt.timedelta = RETRY,
    ) -> None:
        self._store = store
        self._engine = engine
        self._public_url = public_url.rstrip("/") if public_url else None
        self._clock = clock
        self.lifetime = lifetime
        self.retry = retry
        self._held: dict[tuple[str, str], tuple[AccountConfig, Subscription]] = {}  # (provider, id) →
        self._stale: dict[tuple[str, str], _Stop] = {}  # (provider, id) → replaced, its stop failed
        self._retries: dict[tuple[str, str], _Retry] = {}  # (account, calendar) → a failed subscribe
        self._backoff: dict[tuple[str, str], dt.datetime] = {}  # (provider, id) → a failed renewal's retry
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    # -- the calendars' subscriptions ------------------------------------------------------------

    async def ensure(self, account: AccountConfig, calendar_id: str) -> None:
        """Subscribe ``calendar_id`` unless an alive subscription is stored (then reuse it), or set
        why it is polled. Never raises for a provider's failure (it is retried later)."""
        async with self._lock(account.name, calendar_id):
            await self._ensure(account, calendar_id, fresh=False)

    async def recreate(self, account_name: str, calendar_id: str) -> None:
        """The provider dropped the calendar's subscription (Graph ``subscriptionRemoved``): forget the
        stored ones (stopping any still alive) and subscribe anew."""
        account = self._engine.config.account(account_name)
        async with self._lock(account.name, calendar_id):
            await self._ensure(account, calendar_id, fresh=True)

    async def reauthorize(self, subscription_id: str) -> None:
        """Renew the subscription now (Graph ``reauthorizationRequired``); an unknown id is ignored."""
        held = next((h for k, h in self._held.items() if k[1] == subscription_id), None)
        if held is None:
            held = await self._find(subscription_id)
        if held is None:
            logger.info("push: reauthorization asked for a subscription this store does not hold")
            return
        account, sub = held
        async with self._lock(account.name, sub.calendar_id):
            await self._renew(account, sub)

    def next_renewal(self) -> dt.datetime | None:
        """The earliest time :meth:`renew_due` has something to do (None: nothing ever expires)."""
        times = [t for k, (_, s) in self._held.items() if (t := self._renewal(k, s)) is not None]
        times += [r.at for r in self._retries.values()] + [r.at for r in self._stale.values()]
        return min(times, default=None)

    async def renew_due(self) -> None:
        """Renew every subscription past half its life, retry what failed, stop replaced ones."""
        now = self._clock()
        jobs: list[Callable[[], Awaitable[None]]] = []
        for key, (account, sub) in list(self._held.items()):
            due = self._renewal(key, sub)
            if due is not None and due <= now:
                jobs.append(self._locked(account, sub.calendar_id, functools.partial(self._renew, account, sub)))
        for retry in list(self._retries.values()):
            if retry.at <= now:
                step = functools.partial(self._ensure, retry.account, retry.calendar_id, fresh=False)
                jobs.append(self._locked(retry.account, retry.calendar_id, step))
        for stop in list(self._stale.values()):
            if stop.at <= now:
                jobs.append(functools.partial(self._stop, stop.account, stop.subscription))
        await _bounded(jobs)

    def _renewal(self, key: tuple[str, str], sub: Subscription) -> dt.datetime | None:
        """When to renew a held subscription: at half-life, not before a failed renewal's retry."""
        due = renewal_due(sub)
        later = self._backoff.get(key)
        return due if due is None or later is None else max(due, later)

    async def unsubscribe_all(
        self, accounts: Collection[str] | None = None, *, calendars: Collection[tuple[str, str]] | None = None
    ) -> None:
        """Stop every stored subscription of the configured accounts (of ``accounts``, the ones this
        service runs: ``run --account A --unsubscribe`` leaves B's alone; of ``calendars`` when given:
        a fleet's worker stops those it holds) and forget it (``--unsubscribe``); one that cannot be
        stopped is kept and logged."""
        configured = {a.name: a for a in self._engine.config.accounts}
        picked = {n: a for n, a in configured.items() if accounts is None or n in accounts}
        only = None if calendars is None else set(calendars)
        jobs: list[Callable[[], Awaitable[None]]] = []
        found: set[tuple[str, str]] = set()
        for sub in await self._store.subscriptions():
            account = picked.get(sub.account)
            if account is None or account.provider != sub.provider:
                continue
            if only is not None and (sub.account, sub.calendar_id) not in only:
                continue
            found.add((account.name, sub.calendar_id))
            jobs.append(functools.partial(self._stop, account, sub))
        await _bounded(jobs)
        self._held.clear()
        self._backoff.clear()
        self._retries.clear()
        self._stale.clear()
        for name, calendar_id in sorted(found):
            await self._store.set_push_state(name, calendar_id, None)

    def release(self, account_name: str, calendar_id: str) -> None:
        """Another worker holds the calendar now: stop renewing or retrying its subscription here (the
        row stays in the store, where the new holder finds and reuses it)."""
        self._retries.pop((account_name, calendar_id), None)
        for key, (account, sub) in list(self._held.items()):
            if account.name == account_name and sub.calendar_id == calendar_id:
                del self._held[key]
                self._backoff.pop(key, None)

    # -- the steps -------------------------------------------------------------------------------

    async def _ensure(self, account: AccountConfig, calendar_id: str, *, fresh: bool) -> None:
        self._retries.pop((account.name, calendar_id), None)
        pusher = self._pusher(account)
        why = polled_reason(account, public_url=self._public_url, provider=pusher)
        stored = [
            s for s in await self._store.subscriptions(account.name, calendar_id) if s.provider == account.provider
        ]
        if why is not None or pusher is None:
            for sub in stored:  # pushed before (push turned off since): stop what is left
                await self._stop(account, sub)
            await self._store.set_push_state(account.name, calendar_id, f"polled: {why}")
            return
        now = self._clock()
        keep = None if fresh else max((s for s in stored if alive(s, now)), key=_expiry, default=None)
        for sub in stored:
            if sub is keep:
                continue
            if alive(sub, now):
                await self._stop(account, sub)  # a duplicate (or, on recreate, any) still alive
            else:
                await self._forget(sub)  # expired: nothing to stop
        if keep is not None:
            await self._hold(account, keep)
            return
        try:
            sub = await pusher.subscribe(calendar_id, public_url=self._public_url or "", secret=_secret(),
                                         expires=now + self.lifetime)  # fmt: skip
        except (CalbridgeError, OSError, TimeoutError) as exc:
            await self._failed(account, calendar_id, "subscribing", exc)
            return
        await self._hold(account, _stamped(sub, now))

    async def _renew(self, account: AccountConfig, sub: Subscription) -> None:
        pusher = self._pusher(account)
        now = self._clock()
        if pusher is None or not alive(sub, now):
            await self._forget(sub)
            await self._ensure(account, sub.calendar_id, fresh=False)
            return
        try:
            new = await pusher.renew(sub, public_url=self._public_url or "", secret=_secret(),
                                     expires=now + self.lifetime)  # fmt: skip
        except NotFound:
            await self._forget(sub)
            await self._ensure(account, sub.calendar_id, fresh=False)
            return
        except (CalbridgeError, OSError, TimeoutError) as exc:
            logger.warning("%s/%s: renewing a subscription failed (%s); retried in %s",
                           account.name, sub.calendar_id, _describe(exc), self.retry)  # fmt: skip
            self._backoff[(sub.provider, sub.id)] = self._clock() + self.retry
            return
        self._backoff.pop((sub.provider, sub.id), None)
        new = _stamped(new, now)
        await self._hold(account, new)  # stored before the old one is stopped
        if new.id != sub.id:
            self._held.pop((sub.provider, sub.id), None)
            await self._stop(account, sub)

    async def _stop(self, account: AccountConfig, sub: Subscription) -> None:
        key = (sub.provider, sub.id)
        pusher = self._pusher(account)
        if pusher is not None and alive(sub, self._clock()):
            try:
                await pusher.unsubscribe(sub)
            except (CalbridgeError, OSError, TimeoutError) as exc:
                logger.warning("%s/%s: stopping a subscription failed (%s); retried later",
                               account.name, sub.calendar_id, _describe(exc))  # fmt: skip
                self._stale[key] = _Stop(account=account, subscription=sub, at=self._clock() + self.retry)
                return
        self._stale.pop(key, None)
        await self._forget(sub)

    async def _hold(self, account: AccountConfig, sub: Subscription) -> None:
        await self._store.save_subscription(sub)
        self._held[(sub.provider, sub.id)] = (account, sub)
        await self._store.set_push_state(account.name, sub.calendar_id, pushed_state(sub))

    async def _forget(self, sub: Subscription) -> None:
        self._held.pop((sub.provider, sub.id), None)
        self._backoff.pop((sub.provider, sub.id), None)
        await self._store.delete_subscription(sub.provider, sub.id)

    async def _failed(self, account: AccountConfig, calendar_id: str, doing: str, exc: BaseException) -> None:
        logger.warning("%s/%s: %s for push failed (%s); polled, retried in %s",
                       account.name, calendar_id, doing, _describe(exc), self.retry)  # fmt: skip
        self._retries[(account.name, calendar_id)] = _Retry(account=account, calendar_id=calendar_id,
                                                            at=self._clock() + self.retry)  # fmt: skip
        await self._store.set_push_state(account.name, calendar_id, f"polled: {doing} failed")

    async def _find(self, subscription_id: str) -> tuple[AccountConfig, Subscription] | None:
        accounts = {a.name: a for a in self._engine.config.accounts}
        for sub in await self._store.subscriptions():
            if sub.id == subscription_id and (account := accounts.get(sub.account)) is not None:
                return account, sub
        return None

    def _pusher(self, account: AccountConfig) -> PushProvider | None:
        return push_provider(self._engine.provider(account))

    def _lock(self, account: str, calendar_id: str) -> asyncio.Lock:
        return self._locks.setdefault((account, calendar_id), asyncio.Lock())

    def _locked(
        self, account: AccountConfig, calendar_id: str, step: Callable[[], Awaitable[None]]
    ) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            async with self._lock(account.name, calendar_id):
                await step()

        return job


def _secret() -> str:
    return secrets.token_urlsafe(32)


def _expiry(sub: Subscription) -> dt.datetime:
    return sub.expires or dt.datetime.max.replace(tzinfo=dt.UTC)


def _stamped(sub: Subscription, now: dt.datetime) -> Subscription:
    """``sub`` stamped with when its current lifetime began (``now``, on the manager's clock), which
    its renewal is due from: kept from a first creation, a Graph PATCH pushed renewals towards the
    first expiry until one went out every second."""
    return attrs.evolve(sub, created=now)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _bounded(jobs: Iterable[Callable[[], Awaitable[None]]]) -> None:
    """Run ``jobs`` at most :data:`CONCURRENCY` at once; one failing does not stop the others."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(job: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            try:
                await job()
            except Exception:
                logger.exception("push: a subscription step failed")

    async with asyncio.TaskGroup() as tg:
        for job in jobs:
            tg.create_task(one(job))


__all__ = ["DEFAULT_LIFETIME", "ProviderSource", "SubscriptionManager", "polled_reason", "pushed_state",
           "renewal_due"]  # fmt: skip
