"""PostgresStore.account_lock on real PostgreSQL: exclusive across two handles on one database (the
second waits until the first leaves), and a TransientError once its timeout passes."""

from __future__ import annotations

import asyncio

import pytest

from calbridge.errors import TransientError
from calbridge.lease import AccountLocks
from calbridge.store.postgres import PostgresStore


async def test_account_lock_excludes_across_handles_and_times_out(postgres_database: str, postgres_schema: str) -> None:
    url = postgres_database
    async with PostgresStore(url, schema=postgres_schema) as a, PostgresStore(url, schema=postgres_schema) as b:
        assert isinstance(a, AccountLocks)
        order: list[str] = []
        entered = asyncio.Event()

        async def first() -> None:
            async with a.account_lock("acme"):
                order.append("a in")
                entered.set()
                await asyncio.sleep(0.5)
                order.append("a out")

        async def second() -> None:
            await entered.wait()
            async with b.account_lock("acme"):
                order.append("b in")

        await asyncio.wait_for(asyncio.gather(first(), second()), timeout=15)
        assert order == ["a in", "a out", "b in"]

        async with a.account_lock("acme"):
            async with b.account_lock("other"):  # another account's lock is independent
                pass
            with pytest.raises(TransientError, match="still held"):
                async with b.account_lock("acme", timeout=0.3):
                    pass
        async with b.account_lock("acme", timeout=5):  # released on leaving
            pass
