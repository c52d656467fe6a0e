"""Where bearer tokens come from: one :class:`TokenSource` protocol for every provider, a
:class:`StaticTokenSource` for a token the caller keeps fresh, and :class:`CachedToken`, the
lock-and-expiry cache a refreshing source is built on (the provider supplies the fetch).

No repr, log line or message here carries a token.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

import attrs

__all__ = ["CachedToken", "StaticTokenSource", "Token", "TokenSource"]


@runtime_checkable
class TokenSource(Protocol):
    """Hands out the access token to send (without its ``Bearer`` prefix).

    When the API rejects a token (the error table answered :class:`~calbridge.errors.TokenExpired`),
    :class:`~calbridge.toolkit.HttpClient` calls ``invalidate(rejected)`` and sends once more with
    the next ``token()``, but only when ``refreshable``; a source that cannot do better
    (``refreshable`` False) turns the rejection into an :class:`~calbridge.errors.AuthError` at once.
    """

    @property
    def refreshable(self) -> bool: ...

    async def token(self) -> str:
        """The token to send now (fetching one first when there is none or it is about to expire).

        Raises:
            AuthError: the credentials were refused. TransientError: the token endpoint failed.
        """
        ...

    async def invalidate(self, rejected: str) -> None:
        """Forget ``rejected`` (a token the API refused); the next :meth:`token` returns another."""
        ...


class StaticTokenSource:
    """A bearer token the caller keeps fresh (``kind: token``): nothing to refresh."""

    refreshable = False

    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token

    async def invalidate(self, rejected: str) -> None:
        return None

    def __repr__(self) -> str:
        return "StaticTokenSource(<redacted>)"


@attrs.frozen(kw_only=True)
class Token:
    """A fetched access token; ``expires_at`` (aware) None: good until the API rejects it."""

    value: str = attrs.field(repr=False)
    expires_at: dt.datetime | None = None


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class CachedToken:
    """A :class:`TokenSource` that caches what ``fetch()`` returns until ``margin`` before it expires.

    Callers share one fetch: ``token()`` holds a lock while it fetches, so concurrent requests that
    find no valid token wait for the same one. ``invalidate(rejected)`` drops the cached token only if
    it is still the rejected one, so requests refused together cause a single new fetch. ``fetch`` may
    raise (AuthError, TransientError): nothing is cached then. ``clock`` is the provider's clock
    (``ctx.clock``) so tests can move time; ``fetches`` counts the fetches made.
    """

    refreshable = True

    def __init__(
        self,
        fetch: Callable[[], Awaitable[Token]],
        *,
        margin: dt.timedelta = dt.timedelta(minutes=5),
        clock: Callable[[], dt.datetime] = _utcnow,
        name: str = "token",
    ) -> None:
        self._fetch = fetch
        self._margin = margin
        self._clock = clock
        self._name = name
        self._lock = asyncio.Lock()
        self._current: Token | None = None
        self.fetches = 0

    def __repr__(self) -> str:
        return f"CachedToken({self._name})"

    def _fresh(self) -> Token | None:
        current = self._current
        if current is None:
            return None
        if current.expires_at is not None and current.expires_at - self._clock() < self._margin:
            return None
        return current

    async def token(self) -> str:
        fresh = self._fresh()
        if fresh is not None:  # the usual case: no lock taken
            return fresh.value
        async with self._lock:
            fresh = self._fresh()  # another caller may have fetched while we waited
            if fresh is None:
                self.fetches += 1
                fresh = await self._fetch()
                self._current = fresh
            return fresh.value

    async def invalidate(self, rejected: str) -> None:
        async with self._lock:
            if self._current is not None and self._current.value == rejected:
                self._current = None

    def peek(self) -> Token | None:
        """The cached token, fresh or not (None before the first fetch or after an invalidation)."""
        return self._current
