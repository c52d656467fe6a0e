"""Cross-process locks on a PostgreSQL store: a session-level advisory lock per key, for what belongs
to an account rather than a calendar (a rotating refresh token, see :class:`calbridge.lease.AccountLocks`).

The lock lives in the session of the connection that took it: a worker that dies (or whose
connection breaks) drops it with its session, so no lock outlives its holder.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ...errors import StoreError, TransientError

FIRST_PAUSE = 0.05  # seconds between tries, doubling up to LAST_PAUSE
LAST_PAUSE = 0.5
TIMEOUT = 60.0


def account_key(schema: str, account: str) -> str:
    """The advisory-lock key of ``account``'s lock in ``schema`` (one store per schema)."""
    return f"calbridge:account:{schema}:{account}"


@contextlib.asynccontextmanager
async def advisory_lock(
    pool: Any, key: str, *, timeout: float = TIMEOUT, what: str = "lock", where: str = "the store"
) -> AsyncIterator[None]:
    """Hold the session-level advisory lock on ``key`` (on a pool connection kept for it) while entered.

    Between tries the connection goes back to the pool, so waiters never starve the holder of the
    connections its work needs.

    Raises:
        TransientError: another session held it for ``timeout`` seconds (``what`` names it; no secrets).
        StoreError: the server could not be asked (``where`` names the store).
    """
    import asyncpg  # a pool exists, so the `postgres` extra is installed

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pause = FIRST_PAUSE
    while True:
        try:
            conn = await pool.acquire()
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise StoreError(f"store {where}: {what}: {type(exc).__name__}") from exc
        try:
            got = await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key)
        except BaseException as exc:
            await pool.release(conn)
            if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError | OSError):
                raise StoreError(f"store {where}: {what}: {type(exc).__name__}") from exc
            raise
        if got:
            break
        await pool.release(conn)
        if loop.time() >= deadline:
            raise TransientError(f"{what}: still held by another worker after {timeout:g} s")
        await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
        pause = min(LAST_PAUSE, pause * 2)
    try:
        yield
    finally:
        try:
            # A broken connection dropped the lock with its session; the pool discards it.
            with contextlib.suppress(Exception):
                await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key)
        finally:
            await pool.release(conn)
