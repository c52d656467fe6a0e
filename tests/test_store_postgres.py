"""The PostgreSQL store beyond the conformance suite: the ``store`` config value, ``open_store``, the
CLI on a server store, migrations under many processes at once, and DSNs that never show a password."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from calbridge.config import Config, StoreOptions, load_config
from calbridge.errors import ConfigError, StoreBusy, StoreError
from calbridge.registry import TEST_PROVIDERS_ENV, default_registry
from calbridge.store import open_store
from calbridge.store.postgres import PostgresStore, redact
from calbridge.store.sqlite import SqliteStore
from tests.conftest import FakeEnv, fake_event

pytestmark = pytest.mark.usefixtures("calbridge_test_providers")

BASE = (
    "window: {past: 30d, future: 90d}\n"
    "accounts: [{name: f, provider: fake, auth: {kind: token, token: t}, options: {state: /tmp/x.json}}]\n"
)


def _load(tmp: Path, store: str, env: dict[str, str] | None = None) -> Config:
    path = tmp / "c.yaml"
    path.write_text(f"store: {store}\n{BASE}")
    return load_config(path, env=env or {}, registry=default_registry, resolve_auth=False)


def test_store_urls_and_the_mapping_structure(tmp_path: Path) -> None:
    sqlite = _load(tmp_path, "sqlite:///m.db")
    assert (sqlite.store_path, sqlite.store_url) == (tmp_path / "m.db", None)
    plain = _load(tmp_path, "postgres://u@db/cal")
    assert (plain.store_url, plain.store_options) == ("postgres://u@db/cal", StoreOptions())
    mapped = _load(
        tmp_path, '{url: "postgresql://u:${PGPASS}@db:5433/cal?sslmode=require", pool: 3, statement_timeout: 30s}',
        env={"PGPASS": "hunter2"},
    )  # fmt: skip
    assert mapped.store_url == "postgresql://u:hunter2@db:5433/cal?sslmode=require"
    assert mapped.store_options == StoreOptions(pool=3, statement_timeout=30.0)
    assert "hunter2" not in repr(mapped)
    assert isinstance(open_store(sqlite), SqliteStore)
    handle = open_store(mapped)
    assert isinstance(handle, PostgresStore) and "hunter2" not in repr(handle) and "***" in repr(handle)


@pytest.mark.parametrize(
    ("store", "where"),
    [
        ("mysql://x/y", "store: expected sqlite:///PATH or postgresql://"),
        ("postgresql://", "store: the PostgreSQL store needs"),
        ("{url: postgresql://db/x, pool: 0}", "store.pool: expected a number of connections"),
        ("{url: postgresql://db/x, pool: many}", "store.pool: expected a number"),
        ("{url: postgresql://db/x, statement_timeout: soon}", "store.statement_timeout: bad duration"),
        ("{url: postgresql://db/x, poll: 3}", "store.poll: unknown key"),
        ("{pool: 3}", "store.url: expected a store URL"),
        ("{url: sqlite:///m.db, pool: 3}", "store.pool: only a PostgreSQL store takes options"),
        ("[1]", "store: expected a store URL or a mapping"),
    ],
)
def test_bad_store_values_name_the_place(tmp_path: Path, store: str, where: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, store)
    assert where in str(err.value)


def test_cli_bad_store_pool_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"store: {{url: 'postgresql://db/x', pool: -1}}\n{BASE}")
    proc = subprocess.run(
        [sys.executable, "-m", "calbridge.cli.main", "status", "-c", str(path)],
        capture_output=True, text=True, env={**os.environ, TEST_PROVIDERS_ENV: "1"},
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "store.pool" in proc.stderr


def test_without_asyncpg_a_postgres_store_exits_2_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"store: postgresql://postgres@127.0.0.1/x\n{BASE}")
    hide = textwrap.dedent(
        """
        import sys
        class Hide:
            def find_spec(self, name, path=None, target=None):
                if name == "asyncpg" or name.startswith("asyncpg."):
                    raise ModuleNotFoundError(name)
        sys.meta_path.insert(0, Hide())
        import importlib.util
        importlib.util.find_spec = lambda name, *a: None if name == "asyncpg" else _find(name, *a)
        """
    )
    code = "import importlib.util; _find = importlib.util.find_spec\n" + hide
    code += "from calbridge.cli.main import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, "status", "-c", str(path)],
        capture_output=True, text=True, env={**os.environ, TEST_PROVIDERS_ENV: "1"},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "asyncpg is not installed" in line and "pip install 'calbridge[postgres]'" in line


def test_redact_hides_every_password() -> None:
    assert redact("postgresql://u:p%40ss@h:5432/d?sslmode=require") == "postgresql://u:***@h:5432/d?sslmode=require"
    assert "s3" not in redact("postgres://h/d?password=s3&user=u")
    assert redact("postgresql://h/d") == "postgresql://h/d"


def test_an_unreachable_server_is_a_store_error_without_the_password() -> None:
    async def main() -> None:
        with pytest.raises(StoreError) as err:
            async with PostgresStore("postgresql://postgres:s3cr3t-pw@127.0.0.1:1/nope"):
                pass
        assert "s3cr3t-pw" not in str(err.value) and "127.0.0.1:1" in str(err.value)

    asyncio.run(main())


_OPENER = """
import asyncio, sys, time
from calbridge.store.postgres import PostgresStore
async def main():
    time.sleep(max(0.0, float(sys.argv[3]) - time.time()))  # start together
    async with PostgresStore(sys.argv[1], schema=sys.argv[2], pool=1) as store:
        assert await store.get_state("a", "c") is None
asyncio.run(main())
"""


def test_ten_processes_opening_a_fresh_store_migrate_it_once(postgres_database: str, postgres_schema: str) -> None:
    start = str(time.time() + 1.5)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPENER, postgres_database, postgres_schema, start],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(10)
    ]
    results = [(p.wait(timeout=60), p.stderr.read() if p.stderr else "") for p in procs]
    assert [code for code, _ in results] == [0] * 10, [err for _, err in results if err]

    async def applied() -> list[int]:
        import asyncpg

        conn = await asyncpg.connect(postgres_database, server_settings={"search_path": postgres_schema})
        try:
            return [r[0] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")]
        finally:
            await conn.close()

    from calbridge.store.postgres import _schema

    # Every step once, though ten processes raced to apply it.
    assert asyncio.run(applied()) == list(range(1, _schema.SCHEMA_VERSION + 1))


def test_a_read_only_handle_on_a_missing_store_says_so(postgres_database: str, postgres_schema: str) -> None:
    async def main() -> None:
        with pytest.raises(StoreError, match=r"no store at .*run `calbridge sync` first"):
            async with PostgresStore(postgres_database, schema=postgres_schema, create=False, read_only=True):
                pass

    asyncio.run(main())


def test_the_cli_syncs_reads_and_follows_the_feed_on_postgres(
    fake_env: FakeEnv, postgres_database: str, postgres_schema: str
) -> None:
    # The CLI has no schema option: this test owns the run database's default schema.
    config = yaml.safe_load(fake_env.config.read_text())
    config["store"] = {"url": postgres_database, "pool": 2, "statement_timeout": "30s"}
    fake_env.config.write_text(yaml.safe_dump(config))
    with fake_env.server.edit() as s:
        for i in range(5):
            s["calendars"]["cal1"]["events"][f"ev{i:05d}"] = fake_event(i)
    fake_env.cli("sync", check=True)
    events = fake_env.cli("events", "--format", "jsonl", "--include-cancelled", check=True).stdout.splitlines()
    assert sorted(json.loads(line)["id"] for line in events) == [f"ev{i:05d}" for i in range(5)]
    status = fake_env.cli("status", check=True).stdout
    assert "cal1" in status
    changes = fake_env.cli("changes", "--consumer", "c1", check=True).stdout.splitlines()
    assert [json.loads(line)["seq"] for line in changes] == [1, 2, 3, 4, 5]
    assert fake_env.cli("changes", "--consumer", "c1", check=True).stdout == ""  # the offset was stored
    assert not fake_env.store.exists()  # no SQLite file beside it


def test_status_and_a_busy_sync_name_the_holder(postgres_database: str, postgres_schema: str) -> None:
    async def main() -> None:
        url = postgres_database
        async with PostgresStore(url, schema=postgres_schema) as a, PostgresStore(url, schema=postgres_schema) as b:
            async with a.sync_lock(wait=0):
                with pytest.raises(StoreBusy, match=rf"\(pid {os.getpid()}\)"):
                    async with b.sync_lock(wait=0):
                        pass
                await b.status()
                assert b.sync_holder() == str(os.getpid())
            await b.status()
            assert b.sync_holder() is None

    asyncio.run(main())
