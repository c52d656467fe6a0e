"""The store's seams, drawn by role, and the values they exchange.

A store keeps, per (account, calendar): the sync state (cursor or mid-round resume point, the
current mark generation, a pending sweep), the mirrored events (singles, series, exceptions and,
for providers whose sync stream carries them, occurrences), the expanded occurrences of each series
inside the window, quarantined payloads, and the calendar's status. It also keeps the provider
secrets that rotate. ``commit_page`` applies one page's changes and saves the state in **one**
transaction, which is what makes a killed sync resume exactly.

The roles (each a :class:`~typing.Protocol`; :class:`Store` is their union, what the engine needs):

- :class:`StateStore`: each calendar's sync state and round outcomes, and what the engine decides
  from (stale series, the size of a sweep);
- :class:`PageCommitter`: the writes that change the mirror (a page with its cursor, a sweep batch,
  an expansion), each one transaction returning exactly the changes it published;
- :class:`MirrorReader`: reads and queries (events by id, the two views, status, quarantine), all a
  command that only reads (``events``, ``status``) or a provider's mirror view needs;
- :class:`SecretStore`: the secret slot providers rotate tokens in (defined with the provider seam);
- :class:`SubscriptionStore`: push subscriptions (secrets in the slot), push states, delivery keys.

:class:`calbridge.testing.store_kit.StoreConformance` is the suite that pins their semantics.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import attrs

from ..feed import FeedStore
from ..model import Change, Event, EventKey, Window
from ..provider import Quarantined, SecretStore
from ..push import Subscription
from ..state import CalendarState, PendingSweep, Round


@attrs.frozen(kw_only=True)
class CalendarStatus:
    """``calbridge status`` for one calendar.

    ``last_success`` is the start of the last round that ended cleanly (a held sweep is not one);
    ``round`` is the round with committed pages but no end yet, and ``sweep_pending`` a sweep owed
    and not held: either is a sync running now, or one a kill left for the next sync to resume.
    """

    account: str
    calendar_id: str
    last_success: dt.datetime | None
    last_error: str | None
    last_error_at: dt.datetime | None
    events: int
    occurrences: int
    quarantined: int
    sweep_held: bool
    round: Round | None = None
    sweep_pending: bool = False
    push: str | None = None  # set by the service: "pushed until …" or "polled: <why>"
    failures: int = 0  # the service's backoff: rounds failed in a row, and when it tries next
    next_attempt: dt.datetime | None = None
    # values its rounds read as the schema's neutral value (junk enums, cut text), in all, by field
    coerced: Mapping[str, int] = attrs.field(factory=dict)
    # a store shared by many workers (``calbridge.lease``): who holds the calendar, until when
    holder: str | None = None
    lease_expires: dt.datetime | None = None

    @property
    def coerced_total(self) -> int:
        return sum(self.coerced.values())


@attrs.frozen(kw_only=True)
class RoundStart:
    """What a run reads before its round, in one call: the saved state and the series flagged stale."""

    state: CalendarState | None
    dirty: tuple[str, ...] = ()


class StateStore(Protocol):
    """Each calendar's sync state and the outcome of its rounds: what the engine resumes and decides from."""

    async def get_state(self, account: str, calendar_id: str) -> CalendarState | None:
        """The state last saved (alone or with a page), None when never saved."""
        ...

    async def round_start(self, account: str, calendar_id: str) -> RoundStart:
        """The state last saved and :meth:`dirty_series`, read together (one snapshot): a quiet round
        decides from these alone."""
        ...

    async def save_state(self, state: CalendarState) -> None:
        """Save ``state`` alone (a full listing begins, a sweep is held or done, a new window expanded)."""
        ...

    async def dirty_series(self, account: str, calendar_id: str) -> list[str]:
        """Series whose occurrences are stale: changed (or no longer series) in a committed page and
        not expanded since. Kept in the store so a run that dies before expanding loses nothing."""
        ...

    async def series_horizons(self, account: str, calendar_id: str) -> dict[str, dt.datetime]:
        """How far each series' stored occurrences answer for (the ``horizon`` its last expansion
        recorded), by series id; series never expanded (or gone) are absent."""
        ...

    async def sweep_count(self, account: str, calendar_id: str, sweep: PendingSweep) -> tuple[int, int]:
        """(rows the sweep would remove, rows the calendar holds)."""
        ...

    async def record_result(
        self, account: str, calendar_id: str, *, at: dt.datetime, error: str | None, state: CalendarState | None = None,
        coerced: Mapping[str, int] | None = None,
    ) -> None:  # fmt: skip
        """Record a round's outcome (``error`` None: success, unless the calendar's state holds a sweep,
        which leaves the last success as it was) for ``status``; ``state``, when given, is saved in
        the same transaction: a quiet round's new cursor, which no page carried. ``coerced`` (values
        read as the neutral value, by field) is added to the calendar's counts."""
        ...


class PageCommitter(Protocol):
    """The writes that change the mirror. Each is one transaction: all of it or none of it stays, and
    it returns exactly the changes it made to the views (``docs/design.md``, "The change stream")."""

    async def commit_page(
        self,
        state: CalendarState,
        changes: Sequence[Change],
        quarantined: Sequence[Quarantined] = (),
    ) -> list[Change]:
        """Apply ``changes`` (upserts stamped with ``state.mark``), record ``quarantined`` and save
        ``state``, in one transaction; series whose occurrences the page made stale are flagged
        dirty in it too. Returns the changes that changed the mirror: an upsert whose content equals
        the stored one, or a delete of an absent id, is not returned; a delete that took exceptions
        or occurrences with it is followed by a delete of each."""
        ...

    async def record_quarantined(
        self, account: str, calendar_id: str, quarantined: Sequence[Quarantined], *, mark: int
    ) -> None:
        """Record payloads read outside a page (an expansion's) as ``commit_page`` records a page's,
        stamped with ``mark``, in one transaction; nothing else is applied or saved."""
        ...

    async def sweep_batch(self, state: CalendarState, sweep: PendingSweep, *, limit: int = 1000) -> list[Change]:
        """Delete up to ``limit`` rows the sweep covers (with their exceptions and occurrences),
        saving ``state`` in the same transaction; returns the deletes (empty when done)."""
        ...

    async def replace_occurrences(
        self,
        account: str,
        calendar_id: str,
        series_ids: Sequence[str],
        window: Window,
        occurrences: Sequence[Event],
        *,
        shown: Window | None = None,
        horizon: dt.datetime | None = None,
    ) -> list[Change]:
        """Make ``occurrences`` the stored occurrences of ``series_ids`` that overlap ``window`` (and
        drop any stored past it) and clear those series' dirty flags; returns the effective changes
        (upserts of new or changed ones, deletes of vanished ones).

        ``shown``: the window the views show. Occurrences outside it are stored hidden (not in the
        views, not published) until :meth:`prune_occurrences` moves the window onto them.
        ``horizon``: record that these series' occurrences now answer for everything up to it
        (:meth:`StateStore.series_horizons`)."""
        ...

    async def prune_occurrences(
        self, account: str, calendar_id: str, live_series: Sequence[str], window: Window
    ) -> list[Change]:
        """Show ``window``: delete shown occurrences outside it or of series not in ``live_series``
        (hidden ones and horizons of those series too), and show the hidden ones it now overlaps;
        returns the deletes and the upserts of what became shown."""
        ...


class MirrorReader(Protocol):
    """Reads and queries of the mirror: what a provider's mirror view, ``events`` and ``status`` use."""

    async def get_events(self, account: str, calendar_id: str, ids: Sequence[str]) -> dict[str, Event]:
        """The stored events (what the sync stream gave, not expanded occurrences) among ``ids``."""
        ...

    async def exceptions_of(self, account: str, calendar_id: str, series_ids: Sequence[str]) -> list[Event]:
        """The stored exceptions (cancelled ones included) of ``series_ids``."""
        ...

    async def series_ids(self, account: str, calendar_id: str) -> list[str]:
        """Ids of the series masters the calendar holds (not cancelled)."""
        ...

    async def query(
        self,
        *,
        account: str | None = None,
        calendar_id: str | None = None,
        window: Window | None = None,
        expand: bool = False,
        include_cancelled: bool = False,
    ) -> list[Event]:
        """The series view (``expand=False``: singles, series, exceptions overlapping ``window``
        when given) or the instance view (singles, occurrences, exceptions in ``window``; a stored
        exception wins over an occurrence of the same (series_id, original_start)), sorted by
        UTC start then id."""
        ...

    def query_batches(
        self,
        *,
        account: str | None = None,
        calendar_id: str | None = None,
        window: Window | None = None,
        expand: bool = False,
        include_cancelled: bool = False,
        batch: int = 500,
    ) -> AsyncIterator[list[Event]]:
        """What :meth:`query` returns, in its order, as the store reads it: lists of at most
        ``batch`` events, so a consumer (``events --format jsonl``) can write as it reads."""
        ...

    async def status(self) -> list[CalendarStatus]:
        """One entry per calendar with a saved state, a recorded result or a push state, by (account,
        calendar)."""
        ...

    async def quarantined(self, account: str | None = None) -> list[tuple[EventKey, str]]:
        """Quarantined payloads as (key, error), by key; a payload without an id is keyed
        ``payload:<digest>``."""
        ...


class SubscriptionStore(Protocol):
    """Push subscriptions and delivery deduplication, for the service (:mod:`calbridge.service`).

    Rows are keyed by (provider, id); a calendar may briefly hold two (Google renews by a new channel
    before stopping the old one). Each subscription's ``secret`` lives in the secret slot (under its
    account), encrypted with the slot; rows carry no secret. A push state makes a ``status`` entry.
    """

    async def subscription(self, provider: str, subscription_id: str) -> Subscription | None:
        """The subscription with this id, its secret included, or ``None``."""
        ...

    async def subscriptions(self, account: str | None = None, calendar_id: str | None = None) -> list[Subscription]:
        """Every stored subscription (of ``account``; of its ``calendar_id``), secrets included, by
        (account, calendar, created)."""
        ...

    async def save_subscription(self, subscription: Subscription) -> None:
        """Insert or replace the row with this (provider, id), and its secret."""
        ...

    async def delete_subscription(self, provider: str, subscription_id: str) -> None:
        """Forget it (and its secret); an unknown id is not an error."""
        ...

    async def set_push_state(self, account: str, calendar_id: str, state: str | None) -> None:
        """What ``status`` shows as the calendar's push: ``pushed until …`` or ``polled: <why>``."""
        ...

    async def first_delivery(self, key: str, *, now: dt.datetime, keep: dt.timedelta) -> bool:
        """Record a delivery key (Feishu ``header.event_id``); ``True`` the first time within ``keep``
        (older keys are forgotten), ``False`` for a duplicate. Atomic across processes."""
        ...


class Store(StateStore, PageCommitter, MirrorReader, SecretStore, FeedStore, SubscriptionStore, Protocol):
    """The mirror: every role, plus the right to sync into it. All methods are coroutines; a SQLite
    store runs its I/O off the event loop."""

    async def aclose(self) -> None:
        """Close this handle (idempotent); a call after it raises :class:`~calbridge.errors.StoreError`
        saying the store is not open."""
        ...

    def sync_lock(self, *, wait: float | None) -> AbstractAsyncContextManager[None]:
        """Exclusive right to sync into this store; ``wait`` seconds (None: forever) before
        raising :class:`~calbridge.errors.StoreBusy`."""
        ...


__all__ = [
    "CalendarState",
    "CalendarStatus",
    "FeedStore",
    "MirrorReader",
    "PageCommitter",
    "PendingSweep",
    "Round",
    "RoundStart",
    "SecretStore",
    "StateStore",
    "Store",
    "SubscriptionStore",
]
