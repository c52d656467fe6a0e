"""SqliteStore, what is its own: file modes, opening and migrating the file, the cross-process lock (and
one ordering test run on both stores, via ``any_store``).

What every store promises (commits, cascades, mark-and-sweep, occurrences, the two views, status,
secrets, persistence) is the store conformance suite, run for SQLite in ``test_store_conformance.py``.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import attrs
import pytest

from calbridge.errors import StoreBusy, StoreError
from calbridge.model import Delete, Upsert
from calbridge.store import MirrorReader, PageCommitter, SecretStore, StateStore, Store, _schema
from calbridge.store.sqlite import SqliteStore
from calbridge.testing._store_build import DAY, T0, ev, key, occ, state, window

from ._postgres import AnyStore


def test_satisfies_protocol(tmp_path: Path) -> None:
    s: Store = SqliteStore(tmp_path / "x.db")
    roles: tuple[StateStore, PageCommitter, MirrorReader, SecretStore] = (s, s, s, s)
    assert all(r is s for r in roles)
    assert repr(s) == f"SqliteStore({str(tmp_path / 'x.db')!r})"


async def test_changes_come_in_page_order_then_by_id(any_store: AnyStore) -> None:
    # The suite compares a write's changes by key (the order inside a batch is free); each store's
    # own order is the page's, then the rest (cascades, slots given back) by id.
    async with any_store.open() as store:
        b, a = ev("b"), ev("a", T0 + DAY)
        assert await store.commit_page(state(), [Upsert(event=b), Upsert(event=a)]) == [
            Upsert(event=b, created=True),
            Upsert(event=a, created=True),
        ]
        o1, o2, o3 = occ("s", T0), occ("s", T0 + DAY), occ("s", T0 + 2 * DAY)
        await store.replace_occurrences("acct", "cal", ["s"], window(3), [o1, o2, o3])
        o2b = attrs.evolve(o2, title="moved room")
        applied = await store.replace_occurrences("acct", "cal", ["s"], window(3), [o1, o2b])
        assert applied == [Upsert(event=o2b, created=False), Delete(key=key(o3.id), previous=o3)]


async def test_file_modes(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "m.db"
    async with SqliteStore(path) as store:
        await store.commit_page(state(), [Upsert(event=ev("a"))])
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert p.exists()
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        async with store.sync_lock(wait=0):
            assert stat.S_IMODE(Path(f"{path}.lock").stat().st_mode) == 0o600


async def test_missing_store_without_create(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="calbridge sync"):
        await SqliteStore(tmp_path / "none.db", create=False).open()
    assert not (tmp_path / "none.db").exists()


async def test_an_empty_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    path.touch(mode=0o600)
    async with SqliteStore(path, create=False) as store:
        await store.commit_page(state(), [Upsert(event=ev("a"))])
    async with SqliteStore(path, create=False, read_only=True) as store:
        assert [e.id for e in await store.query()] == ["a"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta").fetchone() == (str(_schema.SCHEMA_VERSION),)
    conn.close()


async def test_schema_version_and_newer_file(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    async with SqliteStore(path):
        pass
    with sqlite3.connect(path) as conn:
        (version,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert int(version) == _schema.SCHEMA_VERSION >= 1
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(StoreError, match="999"):
        await SqliteStore(path).open()


def test_migrations_apply_in_order(tmp_path: Path) -> None:
    n = len(_schema.MIGRATIONS)
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    assert _schema.migrate(conn, "m", _schema.MIGRATIONS[:1]) == 1
    assert _schema.migrate(conn, "m", _schema.MIGRATIONS) == n  # v1 → the latest on an existing file
    extra = (*_schema.MIGRATIONS, ("CREATE TABLE later (x INTEGER)", "INSERT INTO later VALUES (7)"))
    assert _schema.migrate(conn, "m", extra) == n + 1
    assert _schema.migrate(conn, "m", extra) == n + 1  # applied once
    assert conn.execute("SELECT count(*) FROM later").fetchone() == (1,)
    broken = (*extra, ("CREATE TABLE fine (x)", "NOT SQL"))
    with pytest.raises(sqlite3.OperationalError):
        _schema.migrate(conn, "m", broken)
    assert conn.execute("SELECT value FROM meta").fetchone() == (str(n + 1),)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'fine'").fetchone() is None
    conn.close()


_HOLDER = """
import asyncio, sys
from pathlib import Path
from calbridge.store.sqlite import SqliteStore

async def main():
    async with SqliteStore(Path(sys.argv[1])).sync_lock(wait=0):
        print("locked", flush=True)
        sys.stdin.read()

asyncio.run(main())
"""


async def test_sync_lock_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        store = SqliteStore(path)
        with pytest.raises(StoreBusy, match=rf"another calbridge sync \(pid {holder.pid}\) is using"):
            async with store.sync_lock(wait=0):
                pass
        started = time.monotonic()
        with pytest.raises(StoreBusy):
            async with store.sync_lock(wait=0.3):
                pass
        assert 0.25 <= time.monotonic() - started < 2
        assert holder.stdin is not None
        holder.stdin.close()
        async with store.sync_lock(wait=10):
            assert Path(f"{path}.lock").read_text().strip() == str(os.getpid())
    finally:
        holder.kill()
        holder.wait()
    async with store.sync_lock(wait=0):  # released on exit
        pass


async def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open store"):
        await SqliteStore(path, create=False).open()
