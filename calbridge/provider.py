"""The seams a provider plugin implements: :class:`ProviderPlugin` (config and construction) and
:class:`Provider` (discovery, a sync round as a stream of pages, expansion).

A sync round is an async iterator of :class:`Page`. Each page carries its changes and the cursor
to resume *after* it; the engine commits both in one store transaction. The page with ``last``
set ends the round and its cursor is the durable cursor of the next round. A provider raises
:class:`~calbridge.errors.CursorExpired` when the cursor it was given is dead; the engine then
calls ``sync`` again with ``cursor=None`` (a full listing) and sweeps what the listing did not see.

Providers borrow everything from :class:`ProviderContext`: the engine's aiohttp session, the
retry policy, the store's secret slot for rotating refresh tokens, the clock. A plugin's emulator
is no part of this seam: see :mod:`calbridge.emulation`.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from .cursor import Cursor
from .model import Calendar, Change, Event, Window

if TYPE_CHECKING:
    import aiohttp

    from .config import AccountConfig, Settings
    from .retry import Retrier


@attrs.frozen(kw_only=True)
class Capabilities:
    """What a provider does differently; the engine plans around these flags.

    - ``sync_yields_occurrences``: the sync stream itself carries the occurrences in the window
      (Graph calendarView delta), so the engine does not expand series after a round.
    - ``window_bound_cursor``: the cursor is frozen to the window of its first request (Graph);
      the engine asks for the window plus slack and re-anchors it with a full listing on a
      staggered schedule before the slack is used up.
    - ``calendar_expansion``: one call expands a whole calendar window (Feishu instance_view);
      the provider may answer an expansion of many series with one calendar-wide result, so the
      engine asks for every series' missing tail at once rather than spreading series over days.
    - ``read_only``: no write path (every built-in provider, for now).
    """

    sync_yields_occurrences: bool = False
    window_bound_cursor: bool = False
    calendar_expansion: bool = False
    read_only: bool = True


@attrs.frozen(kw_only=True)
class Quarantined:
    """A payload that could not be normalized: kept with its error, never applied."""

    event_id: str | None
    error: str
    payload: str


@attrs.frozen(kw_only=True)
class Page:
    """One page of a sync round.

    ``cursor`` resumes the round after this page; on the ``last`` page it is the next round's
    cursor. ``sweep_scope`` (full listings only, read from the last page) bounds what the listing
    could have returned, e.g. Google ``timeMin`` or Feishu ``anchor_time``: the sweep never
    removes what lies outside it. ``None`` means the listing covered everything. ``coerced`` counts,
    by field, the non-essential values replaced with the schema's neutral value
    (:class:`calbridge.toolkit.Coercions`).
    """

    changes: Sequence[Change]
    cursor: Cursor
    last: bool
    quarantined: Sequence[Quarantined] = ()
    sweep_scope: Window | None = None
    coerced: Mapping[str, int] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Expansion:
    """The occurrences of ``series_ids`` inside a window; they replace what the mirror held there.

    Occurrences are :class:`Event` values of kind ``occurrence`` with ``series_id`` and
    ``original_start`` set. A provider may return exceptions among them; the store's instance
    view lets a stored exception win over an occurrence of the same slot. ``coerced`` as on :class:`Page`.
    """

    series_ids: tuple[str, ...]
    window: Window
    occurrences: Sequence[Event]
    quarantined: Sequence[Quarantined] = ()
    coerced: Mapping[str, int] = attrs.field(factory=dict)


class MirrorView(Protocol):
    """Read access to what the mirror already holds for one calendar (attendee reuse, master cache)."""

    async def get(self, ids: Sequence[str]) -> Mapping[str, Event]:
        """The stored events among ``ids`` (missing ids are simply absent)."""
        ...

    async def exceptions_of(self, series_ids: Sequence[str]) -> Sequence[Event]:
        """The stored exceptions (cancelled ones included) of these series."""
        ...


class SecretStore(Protocol):
    """A durable slot per account for secrets the provider rotates (refresh tokens, token caches)."""

    async def get_secret(self, account: str, name: str) -> str | None: ...

    async def set_secret(self, account: str, name: str, value: str) -> None: ...


Clock = Callable[[], dt.datetime]
"""Returns the current aware UTC time; injected so tests can move time."""


@attrs.frozen(kw_only=True)
class ProviderContext:
    """Everything a provider borrows from the engine."""

    account: AccountConfig
    settings: Settings
    session: aiohttp.ClientSession
    ssl: ssl.SSLContext | None
    secrets: SecretStore
    retry: Retrier
    clock: Clock


@runtime_checkable
class Provider(Protocol):
    """One configured account of one provider."""

    capabilities: Capabilities

    async def calendars(self) -> Sequence[Calendar]:
        """Every calendar the account can see (``calbridge calendars``, ``calendars: all``)."""
        ...

    def sync(
        self,
        calendar_id: str,
        cursor: Cursor | None,
        *,
        window: Window,
        view: MirrorView,
    ) -> AsyncIterator[Page]:
        """One sync round from ``cursor`` (``None``: a full listing), page by page.

        ``window`` is the configured instance window around now (Graph's calendarView range).

        Raises:
            CursorExpired: the cursor is dead; the engine restarts with a full listing.
            RateLimited, TransientError: after the retry policy gave up.
            AuthError, PermissionDenied, NotFound: not retried.
        """
        ...

    def expand(
        self,
        calendar_id: str,
        series_ids: Sequence[str],
        *,
        window: Window,
        view: MirrorView,
    ) -> AsyncIterator[Expansion]:
        """The occurrences of ``series_ids`` inside ``window`` (Google ``events.instances``,
        Graph ``/events/{id}/instances``, Feishu ``instances`` or ``instance_view``)."""
        ...

    async def aclose(self) -> None:
        """Release what the provider holds (never the borrowed session)."""
        ...


class ProviderPlugin(Protocol):
    """What a ``calbridge.providers`` entry point resolves to.

    ``parse_auth`` structures the account's ``auth`` mapping into the plugin's own frozen config
    and raises :class:`~calbridge.errors.ConfigError` naming the key; it does no network I/O.
    """

    name: str

    def parse_auth(self, raw: Mapping[str, Any], *, account: Mapping[str, Any], where: str) -> object: ...

    def create(self, ctx: ProviderContext) -> Provider: ...


if TYPE_CHECKING:  # deprecated names, kept for plugins written against them
    from .emulation import EmulatedPlugin as EmulatedPlugin
    from .emulation import EmulatorApp as EmulatorApp
else:

    def __getattr__(name: str) -> Any:
        """``EmulatorApp`` and ``EmulatedPlugin`` moved to :mod:`calbridge.emulation`; the old names still
        resolve (with a DeprecationWarning) so plugins written against them keep loading."""
        if name in ("EmulatorApp", "EmulatedPlugin"):
            import warnings

            from . import emulation

            warnings.warn(
                f"calbridge.provider.{name} moved to calbridge.emulation.{name}", DeprecationWarning, stacklevel=2
            )
            return getattr(emulation, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
