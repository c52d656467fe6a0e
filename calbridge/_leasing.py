"""The leases one worker (a ``calbridge run`` process, or a ``sync`` on a shared store) holds, kept
renewed; both the engine's ``sync`` and the service's fleet hold calendars through it.

A lease is known good locally until the renewal that extended it was *sent* plus ``ttl`` (times
:data:`MARGIN`): the store set its expiry later than that, so a worker whose renewals stall (a
starved loop, a partition) stops requesting pages before another worker may take the calendar.
Safety does not rest on that: every write is fenced by the lease's token in the store.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Sequence

from .lease import Key, Lease, LeaseStore

logger = logging.getLogger("calbridge.service")

MARGIN = 0.9
"""The share of ``ttl`` a lease is trusted for locally after its renewal was sent."""


class Held:
    """``worker``'s leases on ``store``: claimed, renewed, dropped, released."""

    def __init__(
        self, store: LeaseStore, worker: str, ttl: dt.timedelta, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.store, self.worker, self.ttl = store, worker, ttl
        self._monotonic = monotonic
        self._leases: dict[Key, Lease] = {}
        self._good_until: dict[Key, float] = {}

    def __len__(self) -> int:
        return len(self._leases)

    def __contains__(self, key: object) -> bool:
        return key in self._leases

    def calendars(self) -> list[Key]:
        return list(self._leases)

    def get(self, key: Key) -> Lease | None:
        return self._leases.get(key)

    def valid(self, key: Key) -> bool:
        """Whether ``key``'s lease is surely still held (its last renewal is recent enough)."""
        return key in self._leases and self._monotonic() < self._good_until.get(key, 0.0)

    def _trust(self, lease: Lease, sent: float) -> None:
        self._leases[lease.key] = lease
        self._good_until[lease.key] = sent + self.ttl.total_seconds() * MARGIN

    async def claim(
        self, limit: int, *, accounts: Sequence[str] | None = None, keys: Sequence[Key] | None = None
    ) -> list[Lease]:
        """Claim up to ``limit`` free calendars (of ``accounts``, or among ``keys``)."""
        if limit <= 0:
            return []
        sent = self._monotonic()
        got = await self.store.claim(self.worker, self.ttl, limit=limit, accounts=accounts, keys=keys)
        for lease in got:
            self._trust(lease, sent)
        return got

    async def renew(self) -> list[Key]:
        """Renew every lease held; returns the keys lost (taken over since the last renewal)."""
        sent = self._monotonic()
        renewed = await self.store.renew(self.worker, self.ttl)
        ours = {lease.key: lease for lease in renewed if self._leases.get(lease.key, lease).token == lease.token}
        # Rows under this worker's name that it never claimed (a process before it, with the same
        # --worker name): not used, and given back, so a claim draws them a new token.
        strays = [lease for lease in renewed if lease.key not in self._leases or lease.key not in ours]
        if strays:
            logger.warning("worker %s: %d leases under its name it did not claim; released", self.worker, len(strays))
            await self.store.release(strays)
        lost = [key for key in self._leases if key not in ours]
        for key in lost:
            self.drop(key)
        for key, lease in ours.items():
            if key in self._leases:
                self._trust(lease, sent)
        return lost

    def drop(self, key: Key) -> None:
        """Forget ``key`` (its lease was lost): nothing is written to the store."""
        self._leases.pop(key, None)
        self._good_until.pop(key, None)

    async def release(self, keys: Iterable[Key]) -> None:
        """Give ``keys`` back to the store (each only if still ours there)."""
        leases = [lease for key in keys if (lease := self._leases.get(key)) is not None]
        for lease in leases:
            self.drop(lease.key)
        if leases:
            await self.store.release(leases)

    async def release_all(self) -> None:
        await self.release(self.calendars())


async def keep_renewed(held: Held, on_lost: Callable[[Key], object] = lambda key: None) -> None:
    """Renew ``held`` every third of its ttl until cancelled; ``on_lost`` hears of each key lost. A
    failed renewal is logged and retried at the next tick (the leases lapse if it keeps failing)."""
    period = max(held.ttl.total_seconds() / 3, 0.05)
    while True:
        await asyncio.sleep(period)
        try:
            for key in await held.renew():
                on_lost(key)
        except Exception as exc:  # the store is unreachable: the local validity runs out meanwhile
            logger.warning("worker %s: renewing its leases failed: %s", held.worker, type(exc).__name__)


__all__ = ["MARGIN", "Held", "keep_renewed"]
