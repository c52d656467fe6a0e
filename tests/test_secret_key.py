"""The secret slot under CALBRIDGE_SECRET_KEY: sealed on disk, read back, rotated with
CALBRIDGE_SECRET_KEY_OLD, plain values migrated; an encrypted slot without the key, a wrong key or a
malformed one is one clear line from the CLI (exit 1); a sync through an emulator works with a key."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from calbridge.config import parse_config
from calbridge.engine import SyncEngine
from calbridge.errors import SecretKeyError
from calbridge.registry import default_registry
from calbridge.store._secrets import KEY_ENV, OLD_KEY_ENV, SecretCodec
from calbridge.store.sqlite import SqliteStore
from calbridge.testing.server import ThreadedServer
from calbridge_providers.google.emulator import GoogleEmulator

from .conftest import FakeEnv

SECRET = '{"value": "at-CANARY-in-the-slot", "expires_at": null}'


def keys(monkeypatch: pytest.MonkeyPatch, key: str | None, old: str | None = None) -> None:
    for name, value in ((KEY_ENV, key), (OLD_KEY_ENV, old)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


def store_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")) if p.is_file())


def raw_values(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT value FROM secrets ORDER BY name")]


async def write(path: Path, value: str = SECRET, name: str = "slot") -> None:
    async with SqliteStore(path) as store:
        await store.set_secret("acct", name, value)


async def read(path: Path, name: str = "slot") -> str | None:
    async with SqliteStore(path) as store:
        return await store.get_secret("acct", name)


async def test_sealed_on_disk_and_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.db"
    keys(monkeypatch, Fernet.generate_key().decode())
    await write(path)
    await write(path, "", name="dropped")  # an emptied slot stays empty
    assert b"CANARY" not in store_bytes(path)
    assert [v[:7] for v in raw_values(path)] == ["", "fernet:"]
    assert await read(path) == SECRET and await read(path, "dropped") == ""


async def test_without_the_key_or_with_a_wrong_one_the_store_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.db"
    keys(monkeypatch, Fernet.generate_key().decode())
    await write(path)
    for key, says in ((None, f"encrypted and {KEY_ENV} is not set"), (Fernet.generate_key().decode(), "wrong key")):
        keys(monkeypatch, key)
        with pytest.raises(SecretKeyError, match=says) as info:
            await read(path)
        assert "CANARY" not in str(info.value)
    async with SqliteStore(path, read_only=True) as store:  # `events`, `status` on a read-only store
        assert await store.status() == []


async def test_rotation_with_the_old_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.db"
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    keys(monkeypatch, old)
    await write(path)
    keys(monkeypatch, new, old)
    assert await read(path) == SECRET  # the old key still opens it
    await write(path, SECRET + " ")  # written again: with the new key
    keys(monkeypatch, new)
    assert await read(path) == SECRET + " "
    keys(monkeypatch, old)
    with pytest.raises(SecretKeyError):
        await read(path)


async def test_plain_values_are_read_then_sealed_when_next_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.db"
    keys(monkeypatch, None)
    await write(path)
    assert raw_values(path) == [SECRET]  # no key: as it is (the README says what is kept so)
    keys(monkeypatch, Fernet.generate_key().decode())
    assert await read(path) == SECRET
    await write(path)
    assert raw_values(path)[0].startswith("fernet:") and await read(path) == SECRET


def test_malformed_keys() -> None:
    with pytest.raises(SecretKeyError, match=f"{KEY_ENV} is not a Fernet key") as info:
        SecretCodec.from_env({KEY_ENV: "not-a-key-CANARY"})
    assert "CANARY" not in str(info.value)
    with pytest.raises(SecretKeyError, match=f"{OLD_KEY_ENV} is not a Fernet key"):
        SecretCodec.from_env({KEY_ENV: Fernet.generate_key().decode(), OLD_KEY_ENV: "short"})
    with pytest.raises(SecretKeyError, match=f"{OLD_KEY_ENV} is set without {KEY_ENV}"):
        SecretCodec.from_env({OLD_KEY_ENV: Fernet.generate_key().decode()})
    assert SecretCodec.from_env({}).seal("plain") == "plain"


async def test_cli_says_it_in_one_line_and_exits_1(fake_env: FakeEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    keys(monkeypatch, Fernet.generate_key().decode())
    await write(fake_env.store)
    for key in (None, Fernet.generate_key().decode(), "malformed"):
        keys(monkeypatch, key)
        proc = fake_env.cli("sync")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("calbridge: ") and KEY_ENV in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr and "CANARY" not in proc.stdout + proc.stderr


async def test_a_sync_through_the_emulator_with_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys(monkeypatch, Fernet.generate_key().decode())
    emu = GoogleEmulator()
    start = dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)
    emu.add_event("Sealed", start, start + dt.timedelta(hours=1))
    with ThreadedServer(emu.make_app()) as server:
        entry = emu.account_config(name="g", base_url=server.url, ca_file=None)
        doc = {"store": "sqlite:///m.db", "window": {"past": "30d", "future": "30d"}, "accounts": [entry]}
        cfg = parse_config(doc, base_dir=tmp_path, env={}, registry=default_registry)
        for _ in range(2):  # the second process reuses the access token the first sealed in the slot
            async with SqliteStore(cfg.store_path) as store, SyncEngine(cfg, store, clock=lambda: start) as engine:
                report = await engine.sync()
            assert report.ok, [r.error for r in report.calendars]
    assert len(emu.state.requests_to("/token", "POST")) == 1
    stored = raw_values(cfg.store_path)
    assert stored and all(v.startswith("fernet:") for v in stored if v)
    async with SqliteStore(cfg.store_path) as store:
        assert [e.title for e in await store.query()] == ["Sealed"]
