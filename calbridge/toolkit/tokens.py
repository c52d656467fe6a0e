"""Where bearer tokens come from: one :class:`TokenSource` protocol for every provider, a
:class:`StaticTokenSource` for a token the caller keeps fresh, and :class:`CachedToken`, the
lock-and-expiry cache a refreshing source is built on (the provider supplies the fetch), which
keeps its token in the store's secret slot (:class:`TokenSlot`) so the next process reuses it.
A store shared by many processes (:class:`~calbridge.lease.AccountLocks`) serialises the fetch per
account (:func:`account_lock`): a rotating refresh token is never spent twice, and the processes
share one access token.

No repr, log line or message here carries a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs

from ..errors import StoreError
from ..lease import AccountLocks
from .scrub import register_secret

if TYPE_CHECKING:
    from ..provider import SecretStore

__all__ = ["CachedToken", "StaticTokenSource", "Token", "TokenSlot", "TokenSource", "account_lock", "binding"]

logger = logging.getLogger("calbridge.toolkit")


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
        register_secret(token)

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

    def __attrs_post_init__(self) -> None:
        register_secret(self.value, lasting=False)  # every token calbridge holds is scrubbed from server text


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def binding(*parts: str) -> str:
    """A digest of what a token was fetched with (client id, secret, refresh token...): a stored token
    whose binding differs belongs to other credentials and is not used. Only the digest is stored."""
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


def account_lock(secrets: SecretStore, account: str) -> AbstractAsyncContextManager[None]:
    """The store's lock on ``account`` across processes when it offers one (an
    :class:`~calbridge.lease.AccountLocks`), else nothing to hold (SQLite: one process syncs at a
    time). Refresh-token exchanges and token-cache writes of an account run under it.

    Raises (on entering):
        TransientError: another process held it past the store's lock timeout.
    """
    if isinstance(secrets, AccountLocks):
        return secrets.account_lock(account)
    return contextlib.nullcontext()


@attrs.frozen(kw_only=True)
class TokenSlot:
    """Where a :class:`CachedToken` keeps its token between processes: secret ``name`` of ``account``
    in ``secrets`` (the store's secret slot, ``ProviderContext.secrets``), as JSON
    ``{value, expires_at, binding}``; ``binding`` (see :func:`binding`) ties it to the credentials."""

    secrets: SecretStore = attrs.field(repr=False)
    account: str
    name: str
    binding: str = attrs.field(default="", repr=False)

    async def load(self) -> Token | None:
        """The stored token, None when there is none, it is unreadable or bound to other credentials."""
        raw = await self.secrets.get_secret(self.account, self.name)
        if not raw:
            return None
        try:
            data = json.loads(raw)
            value, expires, bound = data["value"], data["expires_at"], data.get("binding", "")
            expires_at = None if expires is None else dt.datetime.fromisoformat(expires)
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(value, str) or not value or bound != self.binding:
            return None
        if expires_at is not None and expires_at.tzinfo is None:
            return None
        return Token(value=value, expires_at=expires_at)

    async def save(self, token: Token) -> None:
        expires = None if token.expires_at is None else token.expires_at.isoformat()
        data = {"value": token.value, "expires_at": expires, "binding": self.binding}
        await self.secrets.set_secret(self.account, self.name, json.dumps(data))

    async def drop(self, rejected: str) -> None:
        """Empty the slot if it still holds ``rejected`` (another process may have stored a newer one)."""
        stored = await self.load()
        if stored is not None and stored.value == rejected:
            await self.secrets.set_secret(self.account, self.name, "")


class CachedToken:
    """A :class:`TokenSource` that caches what ``fetch()`` returns until ``margin`` before it expires.

    Callers share one fetch: ``token()`` holds a lock while it fetches, so concurrent requests that
    find no valid token wait for the same one. ``invalidate(rejected)`` drops the cached token only if
    it is still the rejected one, so requests refused together cause a single new fetch. ``fetch`` may
    raise (AuthError, TransientError): nothing is cached then. ``clock`` is the provider's clock
    (``ctx.clock``) so tests can move time; ``fetches`` counts the fetches made.

    With a ``slot`` the token outlives the process: before fetching, a token stored there that is
    not within ``margin`` of expiry (and was not rejected) is used instead; a fetched token is stored;
    a rejected one is dropped from the slot too. A failing secret store
    (:class:`~calbridge.errors.StoreError`) only costs a fetch. When the slot's store is an
    :class:`~calbridge.lease.AccountLocks`, the fetch (and the drop) run under its
    :func:`account_lock`, after the slot is read once more: a token another process stored while
    this one waited is used instead of fetching.
    """

    refreshable = True

    def __init__(
        self,
        fetch: Callable[[], Awaitable[Token]],
        *,
        margin: dt.timedelta = dt.timedelta(minutes=5),
        clock: Callable[[], dt.datetime] = _utcnow,
        name: str = "token",
        slot: TokenSlot | None = None,
    ) -> None:
        self._fetch = fetch
        self._margin = margin
        self._clock = clock
        self._name = name
        self._slot = slot
        self._lock = asyncio.Lock()
        self._current: Token | None = None
        self._rejected: set[str] = set()
        self.fetches = 0

    def __repr__(self) -> str:
        return f"CachedToken({self._name})"

    def _usable(self, token: Token | None) -> Token | None:
        if token is None or token.value in self._rejected:
            return None
        if token.expires_at is not None and token.expires_at - self._clock() < self._margin:
            return None
        return token

    def _fresh(self) -> Token | None:
        return self._usable(self._current)

    async def _stored(self) -> Token | None:
        if self._slot is None:
            return None
        try:
            return self._usable(await self._slot.load())
        except StoreError as exc:  # the slot is an optimisation: a fetch still works
            logger.warning("%r: the stored token is unreadable (%s)", self, type(exc).__name__)
            return None

    async def _store(self, token: Token) -> None:
        if self._slot is None:
            return
        try:
            await self._slot.save(token)
        except StoreError as exc:
            logger.warning("%r: the token could not be stored (%s)", self, type(exc).__name__)

    async def token(self) -> str:
        fresh = self._fresh()
        if fresh is not None:  # the usual case: no lock taken
            return fresh.value
        async with self._lock:
            fresh = self._fresh()  # another caller may have fetched while we waited
            if fresh is None:
                fresh = await self._stored()  # an earlier process's (or a concurrent one's) token
                if fresh is None:
                    fresh = await self._fetch_shared()
                self._current = fresh
            return fresh.value

    async def _fetch_shared(self) -> Token:
        slot = self._slot
        if slot is None or not isinstance(slot.secrets, AccountLocks):
            return await self._fetch_and_store()
        async with slot.secrets.account_lock(slot.account):
            # Another process may have fetched (and stored) while this one waited: that token is
            # shared, and its fetch already spent the refresh token this one would have sent.
            stored = await self._stored()
            return stored if stored is not None else await self._fetch_and_store()

    async def _fetch_and_store(self) -> Token:
        self.fetches += 1
        fresh = await self._fetch()
        await self._store(fresh)
        return fresh

    async def invalidate(self, rejected: str) -> None:
        async with self._lock:
            self._rejected.add(rejected)
            if self._current is not None and self._current.value == rejected:
                self._current = None
            if self._slot is not None:
                try:
                    # Under the account's lock, so a token another process stores meanwhile is not erased.
                    async with account_lock(self._slot.secrets, self._slot.account):
                        await self._slot.drop(rejected)
                except StoreError as exc:
                    logger.warning("%r: the rejected token could not be dropped (%s)", self, type(exc).__name__)

    def peek(self) -> Token | None:
        """The cached token, fresh or not (None before the first fetch or after an invalidation)."""
        return self._current
