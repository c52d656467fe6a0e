"""Many workers on one store: the lease seam. A store that implements :class:`LeaseStore` (PostgreSQL)
is shared by any number of ``calbridge run`` processes, each calendar held by one worker at a time.

- A :class:`Lease` is one worker's hold on one calendar until ``expires`` (the database's clock, so
  the machines' clocks do not matter), renewed while held. Each claim draws a new ``token``, higher
  than any before it for that calendar.
- Every write for a calendar through :meth:`LeaseStore.fenced` checks, in its own transaction, that
  the lease's token is still the calendar's: a worker that stalled past its lease and was taken over
  gets :class:`~calbridge.errors.LeaseLost` and writes nothing.
- What belongs to an account rather than a calendar (a rotating refresh token) is refreshed under
  :meth:`AccountLocks.account_lock`, so two workers never spend the same refresh token.
- A push notice reaching a worker that does not hold its calendar is handed to the holder through
  :meth:`LeaseStore.publish_trigger` / :meth:`LeaseStore.listen_triggers` (LISTEN/NOTIFY).

An account's calendar list (``calendars: all``) is leased like a calendar, under :data:`LISTING`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:
    from .store.base import Store

Key = tuple[str, str]
"""(account, calendar_id)."""

LISTING = "*"
"""The calendar id under which an account's calendar list (``calendars: all``) is leased."""


@attrs.frozen(kw_only=True)
class Lease:
    """``holder``'s hold on (``account``, ``calendar_id``) until ``expires``; ``token`` fences its writes."""

    account: str
    calendar_id: str
    holder: str
    token: int
    expires: dt.datetime

    @property
    def key(self) -> Key:
        return (self.account, self.calendar_id)


@attrs.frozen(kw_only=True)
class Holding:
    """Who holds a calendar now, for ``status`` (``holder`` None: free; an ``expires`` in the past: its
    worker stopped renewing, and the next claim takes it)."""

    account: str
    calendar_id: str
    holder: str | None
    expires: dt.datetime | None


@attrs.frozen(kw_only=True)
class Worker:
    """A worker alive: it beat at ``seen`` and counts as alive until ``expires``."""

    name: str
    seen: dt.datetime
    expires: dt.datetime


@attrs.frozen(kw_only=True)
class Census:
    """What a worker's beat learns: how many workers are alive (itself included) and how many
    calendars (of the accounts it asked about) there are to share."""

    workers: int
    calendars: int


@runtime_checkable
class AccountLocks(Protocol):
    """A secret store that can serialise an account's token refresh across processes."""

    def account_lock(self, account: str) -> AbstractAsyncContextManager[None]:
        """Exclusive, across every process on the store, while held; waits for another holder.

        Raises:
            TransientError: not acquired within the store's lock timeout.
        """
        ...


TriggerCallback = Callable[[str], object]
"""Called with each trigger payload published on the store (any worker's, this one's included)."""


@runtime_checkable
class LeaseStore(AccountLocks, Protocol):
    """The coordination a store shared by many workers offers (PostgreSQL). All times are the store's."""

    async def beat(self, worker: str, ttl: dt.timedelta, *, accounts: Sequence[str] | None = None) -> Census:
        """Record ``worker`` alive until now + ``ttl``; returns the census (calendars of ``accounts``;
        None: all)."""
        ...

    async def offer(self, keys: Sequence[Key]) -> None:
        """Make these calendars known (claimable); known ones are left as they are."""
        ...

    async def retire(self, keys: Sequence[Key]) -> None:
        """Forget these calendars (no longer configured) and their leases."""
        ...

    async def claim(
        self, worker: str, ttl: dt.timedelta, *, limit: int, accounts: Sequence[str] | None = None,
        keys: Sequence[Key] | None = None,
    ) -> list[Lease]:  # fmt: skip
        """Take up to ``limit`` known calendars that no live lease holds (free or expired; not
        ``worker``'s own live ones: a second process under the same name takes nothing),
        among ``accounts`` or ``keys`` when given, each until now + ``ttl`` with a new token;
        rows another claim is taking are skipped (``FOR UPDATE SKIP LOCKED``), never waited for."""
        ...

    async def renew(self, worker: str, ttl: dt.timedelta) -> list[Lease]:
        """Extend every lease ``worker`` still holds to now + ``ttl``; returns them (a lease it thought
        it had and that is not returned was taken over)."""
        ...

    async def release(self, leases: Sequence[Lease]) -> None:
        """Give these up (each only if its token is still the calendar's): free for the next claim."""
        ...

    async def holdings(self) -> list[Holding]:
        """Every known calendar and who holds it, by (account, calendar)."""
        ...

    async def workers(self) -> list[Worker]:
        """The workers alive now, by name."""
        ...

    def fenced(self, lease: Lease) -> Store:
        """This store, with every write for ``lease``'s calendar fenced by its token
        (:class:`~calbridge.errors.LeaseLost` once another claim took it); reads are unchanged, and
        the handle shares this one's connections (closing it closes nothing)."""
        ...

    async def publish_trigger(self, payload: str) -> None:
        """Send ``payload`` (at most 7,000 bytes) to every worker listening (``NOTIFY``)."""
        ...

    def listen_triggers(self, callback: TriggerCallback) -> AbstractAsyncContextManager[None]:
        """While entered, ``callback(payload)`` runs on this loop for every published payload."""
        ...


__all__ = [
    "LISTING",
    "AccountLocks",
    "Census",
    "Holding",
    "Key",
    "Lease",
    "LeaseStore",
    "TriggerCallback",
    "Worker",
]
