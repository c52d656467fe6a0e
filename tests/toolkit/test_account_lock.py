"""CachedToken on a secret store with account locks (:class:`~calbridge.lease.AccountLocks`): two
"workers" (two CachedTokens on one slot, as two processes on one PostgreSQL store) fetch once and
share the token, and a rotating refresh token read inside the fetch is never spent twice."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator

from calbridge.lease import AccountLocks
from calbridge.testing.context import MemorySecrets
from calbridge.toolkit import CachedToken, Token, TokenSlot
from calbridge.toolkit.tokens import account_lock

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class LockingSecrets(MemorySecrets):
    """A secret store whose account locks are asyncio locks (one process standing in for many)."""

    def __init__(self) -> None:
        super().__init__()
        self._locks: dict[str, asyncio.Lock] = {}
        self.held: set[str] = set()
        self.entries = 0

    @contextlib.asynccontextmanager
    async def _hold(self, account: str) -> AsyncIterator[None]:
        async with self._locks.setdefault(account, asyncio.Lock()):
            self.entries += 1
            self.held.add(account)
            try:
                yield
            finally:
                self.held.discard(account)

    def account_lock(self, account: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self._hold(account)


class RotatingEndpoint:
    """A token endpoint with single-use refresh tokens, recording every spend."""

    def __init__(self) -> None:
        self.alive = {"rt-0"}
        self.spent: list[str] = []
        self.reused = 0
        self.issued = 0

    async def exchange(self, refresh_token: str) -> tuple[str, str]:
        await asyncio.sleep(0.01)  # long enough for the other worker to pile up
        self.spent.append(refresh_token)
        if refresh_token not in self.alive:
            self.reused += 1
            raise AssertionError("a spent refresh token was sent again")
        self.alive.discard(refresh_token)
        self.issued += 1
        rotated = f"rt-{self.issued}"
        self.alive.add(rotated)
        return f"access-{self.issued}", rotated


class Worker:
    """One worker's token source: reads the newest refresh token from the store inside its fetch
    (as Feishu's UserTokens does), spends it and stores the rotated one before returning."""

    def __init__(self, secrets: LockingSecrets, endpoint: RotatingEndpoint, clock: list[dt.datetime]) -> None:
        self.secrets = secrets
        self.endpoint = endpoint
        slot = TokenSlot(secrets=secrets, account="acme", name="access")
        self.tokens = CachedToken(self._fetch, clock=lambda: clock[0], slot=slot)
        self.clock = clock
        self.locked_fetches = 0

    async def _fetch(self) -> Token:
        if "acme" in self.secrets.held:
            self.locked_fetches += 1
        refresh = await self.secrets.get_secret("acme", "refresh") or "rt-0"
        access, rotated = await self.endpoint.exchange(refresh)
        await self.secrets.set_secret("acme", "refresh", rotated)
        return Token(value=access, expires_at=self.clock[0] + dt.timedelta(hours=2))


async def test_two_workers_on_one_slot_fetch_once_and_share_the_token() -> None:
    secrets, endpoint, clock = LockingSecrets(), RotatingEndpoint(), [T0]
    a, b = Worker(secrets, endpoint, clock), Worker(secrets, endpoint, clock)
    got = await asyncio.gather(*(w.tokens.token() for w in (a, b) for _ in range(5)))
    assert set(got) == {"access-1"}
    assert a.tokens.fetches + b.tokens.fetches == 1 and endpoint.spent == ["rt-0"]
    assert a.locked_fetches + b.locked_fetches == 1  # the fetch ran under the account's lock


async def test_a_rotated_refresh_token_is_never_spent_twice() -> None:
    secrets, endpoint, clock = LockingSecrets(), RotatingEndpoint(), [T0]
    a, b = Worker(secrets, endpoint, clock), Worker(secrets, endpoint, clock)
    await asyncio.gather(a.tokens.token(), b.tokens.token())
    for hours in (2, 4, 6):  # each time both workers find the shared token expiring together
        clock[0] = T0 + dt.timedelta(hours=hours)
        await asyncio.gather(a.tokens.token(), b.tokens.token())
    assert endpoint.reused == 0 and len(endpoint.spent) == len(set(endpoint.spent)) == 4
    assert a.tokens.peek() == b.tokens.peek()


async def test_tokens_refused_on_both_workers_cause_one_fetch() -> None:
    secrets, endpoint, clock = LockingSecrets(), RotatingEndpoint(), [T0]
    a, b = Worker(secrets, endpoint, clock), Worker(secrets, endpoint, clock)
    first = (await asyncio.gather(a.tokens.token(), b.tokens.token()))[0]
    await asyncio.gather(a.tokens.invalidate(first), b.tokens.invalidate(first))
    got = await asyncio.gather(a.tokens.token(), b.tokens.token())
    assert got == ["access-2", "access-2"] and endpoint.spent == ["rt-0", "rt-1"]


async def test_without_account_locks_nothing_is_held() -> None:
    plain = MemorySecrets()
    assert not isinstance(plain, AccountLocks) and isinstance(LockingSecrets(), AccountLocks)
    async with account_lock(plain, "acme"):
        pass
    calls = 0

    async def fetch() -> Token:
        nonlocal calls
        calls += 1
        return Token(value="t", expires_at=T0 + dt.timedelta(hours=1))

    cache = CachedToken(fetch, clock=lambda: T0, slot=TokenSlot(secrets=plain, account="acme", name="access"))
    assert await cache.token() == "t" and calls == 1
