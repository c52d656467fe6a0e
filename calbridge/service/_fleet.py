"""This worker's part of a fleet sharing one store (:class:`~calbridge.lease.LeaseStore`, PostgreSQL).

Every third of ``service.lease`` it beats (alive until one lease on), renews what it holds (a lease
not renewed was taken over: the calendar is dropped), then claims or gives up calendars toward its
fair share (:mod:`._share`). The service syncs exactly the calendars held, each round under its
fenced lease. A notice for a calendar held elsewhere is relayed to every worker through the store
(LISTEN/NOTIFY) and acted on by the one holding it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence

from .._leasing import Held
from ..config import AccountConfig
from ..lease import LISTING, Key, Lease, LeaseStore
from ..push import NoticeKind
from ._share import share
from ._triggers import Trigger

logger = logging.getLogger("calbridge.service")


class Fleet:
    """``worker``'s leases on ``store`` over the calendars of ``accounts``.

    ``claimed(lease)`` takes a calendar on; ``dropped(key, why)`` lets one go (``why``: ``lost`` or
    ``released``); ``busy(key)`` tells a calendar whose round runs (never released to rebalance);
    ``relayed(trigger)`` acts on a notice another worker relayed for a calendar held here.
    """

    def __init__(
        self,
        store: LeaseStore,
        worker: str,
        ttl: dt.timedelta,
        accounts: Sequence[AccountConfig],
        *,
        claimed: Callable[[Lease], None],
        dropped: Callable[[Key, str], None],
        busy: Callable[[Key], bool],
        relayed: Callable[[Trigger], None],
    ) -> None:
        self.store, self.worker, self.ttl = store, worker, ttl
        self.held = Held(store, worker, ttl)
        self._accounts = {a.name: a for a in accounts}
        self._claimed, self._dropped, self._busy, self._relayed = claimed, dropped, busy, relayed

    @property
    def period(self) -> float:
        """Seconds between beats: a third of the lease, so two may fail before it lapses."""
        return max(self.ttl.total_seconds() / 3, 0.05)

    def configured(self) -> list[Key]:
        """The calendars the config names, and the calendar list of each ``calendars: all`` account."""
        keys: list[Key] = []
        for account in self._accounts.values():
            names = [LISTING] if account.calendars is None else list(account.calendars)
            keys += [(account.name, c) for c in names]
        return keys

    def known(self, key: Key) -> bool:
        account = self._accounts.get(key[0])
        if account is None:
            return False
        return account.calendars is None or key[1] in account.calendars

    async def start(self) -> None:
        """Offer the configured calendars and say this worker is alive; it claims at its first beat, a
        period on, so workers started together each count the others before claiming a share."""
        await self.store.offer(self.configured())
        await self.store.beat(self.worker, self.ttl, accounts=list(self._accounts))

    async def offer(self, keys: Sequence[Key]) -> None:
        """Calendars an account's listing found: claimable by every worker from now on."""
        await self.store.offer(keys)

    async def run(self) -> None:
        """Beat until cancelled; a failed beat is logged and retried (leases lapse if it keeps failing)."""
        while True:
            await asyncio.sleep(self.period)
            try:
                await self.beat()
            except Exception as exc:
                logger.warning("worker %s: a lease beat failed: %s", self.worker, type(exc).__name__)

    async def beat(self) -> None:
        census = await self.store.beat(self.worker, self.ttl, accounts=list(self._accounts))
        lost = await self.held.renew()
        for key in lost:
            self._dropped(key, "lost")
        idle = sorted((k for k in self.held.calendars() if not self._busy(k)), reverse=True)
        step = share(census, held=len(self.held), idle=idle)
        if step.release:
            await self.held.release(step.release)
            for key in step.release:
                self._dropped(key, "released")
        got = await self.held.claim(step.claim, accounts=list(self._accounts))
        unknown = [lease.key for lease in got if not self.known(lease.key)]
        if unknown:  # named by an older config: every worker shares this one
            for key in unknown:
                self.held.drop(key)
            await self.store.retire(unknown)
        for lease in got:
            if self.known(lease.key):
                self._claimed(lease)
        if lost or step.release or got:
            logger.info("worker %s: holds %d calendars (claimed %d, released %d, lost %d; %d workers alive)",
                        self.worker, len(self.held), len(got) - len(unknown), len(step.release), len(lost),
                        census.workers)  # fmt: skip

    async def stop(self) -> None:
        """Give every calendar back, so the others take them at once rather than after ``lease``."""
        with contextlib.suppress(Exception):
            await self.held.release_all()

    # -- triggers across workers -----------------------------------------------------------------

    async def relay(self, trigger: Trigger) -> None:
        """Hand a notice for a calendar not held here to whoever holds it."""
        await self.store.publish_trigger(encode(trigger))

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        async with self.store.listen_triggers(self._heard):
            yield

    def _heard(self, payload: str) -> None:
        trigger = decode(payload)
        if trigger is not None and (trigger.account, trigger.calendar_id) in self.held:
            self._relayed(trigger)


def encode(trigger: Trigger) -> str:
    """A trigger as a NOTIFY payload (names and ids only: never a secret)."""
    return json.dumps(
        {"a": trigger.account, "c": trigger.calendar_id, "k": trigger.kind.value, "s": trigger.subscription_id}
    )


def decode(payload: str) -> Trigger | None:
    """The trigger in a payload, None when it is not one of ours."""
    try:
        data = json.loads(payload)
        return Trigger(account=str(data["a"]), calendar_id=str(data["c"]), kind=NoticeKind(data["k"]),
                       subscription_id=None if data.get("s") is None else str(data["s"]))  # fmt: skip
    except (ValueError, KeyError, TypeError):
        return None
