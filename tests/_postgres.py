"""A throwaway PostgreSQL database for the test run, and a fresh schema in it for each test.

``CALBRIDGE_TEST_POSTGRES`` (a DSN to a server where the user may create databases) overrides the
local default. Without a reachable server the PostgreSQL tests are left out with one line in the
summary (:func:`leave_out`); under ``CI=true`` they run and fail instead, so CI never passes
without them.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from calbridge.store.postgres import redact

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
_schemas = itertools.count()


def admin_dsn() -> str:
    return os.environ.get("CALBRIDGE_TEST_POSTGRES") or DEFAULT_DSN


def with_database(dsn: str, name: str) -> str:
    parts = urllib.parse.urlsplit(dsn)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def _admin(dsn: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def unreachable() -> str | None:
    """Why the PostgreSQL tests cannot run here (None: they can): no asyncpg, or no server answering."""
    try:
        import asyncpg
    except ImportError:
        return "asyncpg is not installed (pip install 'calbridge[postgres]')"

    async def probe() -> None:
        conn = await asyncpg.connect(admin_dsn(), timeout=5)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # refused, timed out, auth: whatever keeps us from the server
        return f"{redact(admin_dsn())} answered {type(exc).__name__}: {exc}"
    return None


def leave_out(config: pytest.Config, items: list[pytest.Item]) -> str | None:
    """Outside CI, drop the tests that need the server when none answers; the one line to show, if any."""
    needing = [i for i in items if needs_server(i)]
    if not needing or os.environ.get("CI") == "true":
        return None
    why = unreachable()
    if why is None:
        return None
    config.hook.pytest_deselected(items=needing)
    items[:] = [i for i in items if i not in set(needing)]
    return f"{len(needing)} PostgreSQL tests skipped: {why} (set CALBRIDGE_TEST_POSTGRES to a DSN)"


def _unreachable(why: str) -> None:
    line = f"PostgreSQL tests need a server: {why} (set CALBRIDGE_TEST_POSTGRES to a DSN)"
    if os.environ.get("CI") == "true":
        pytest.fail(line, pytrace=False)
    pytest.skip(line)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """The DSN of a database created for this run (dropped at its end)."""
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        _unreachable("asyncpg is not installed (pip install 'calbridge[postgres]')")
    admin = admin_dsn()
    name = f"calbridge_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(admin, f"CREATE DATABASE {name}"))
    except Exception as exc:  # refused, timed out, auth: whatever keeps us from the server
        _unreachable(f"{redact(admin)} answered {type(exc).__name__}: {exc}")
    try:
        yield with_database(admin, name)
    finally:
        asyncio.run(_admin(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def postgres_schema(postgres_database: str) -> str:
    """A schema name no other test of this run uses: the test's own empty store in the run's database."""
    return f"t{os.getpid()}_{next(_schemas)}"


# --- Both stores: the store-level tests outside the conformance suite, on SQLite and on PostgreSQL ---


def needs_server(item: pytest.Item) -> bool:
    """Whether a test needs the PostgreSQL server: it asks for the run's database, or is ``any_store``'s
    postgres case (marked ``postgres``, since that fixture asks for the database only when it runs)."""
    return "postgres_database" in getattr(item, "fixturenames", ()) or item.get_closest_marker("postgres") is not None


class AnyStore:
    """The test's own empty store, SQLite or PostgreSQL: a config value naming it and handles on it.

    The PostgreSQL one is a database of its own (not a schema), so a config, and a CLI run in another
    process, can name it by URL alone.
    """

    def __init__(self, kind: str, *, path: Path | None = None, dsn: str | None = None) -> None:
        self.kind = kind
        self.path = path
        self.dsn = dsn

    def __repr__(self) -> str:
        return f"AnyStore({self.kind})"

    @property
    def url(self) -> str:
        """The ``store:`` config value."""
        return f"sqlite:///{self.path}" if self.dsn is None else self.dsn

    def open(self, **kw: Any) -> Any:
        """An unopened handle (``async with store.open() as s``); ``kw``: ``create``, ``read_only``, ..."""
        if self.dsn is None:
            from calbridge.store.sqlite import SqliteStore

            assert self.path is not None
            return SqliteStore(self.path, **kw)
        from calbridge.store.postgres import PostgresStore

        return PostgresStore(self.dsn, pool=4, **kw)


STORE_KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=STORE_KINDS)
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnyStore]:
    """Each test that asks for it runs twice: on a SQLite file in ``tmp_path`` (``mirror.db``, where
    :class:`tests.conftest.FakeEnv` keeps it) and on a PostgreSQL database created for the test."""
    if request.param == "sqlite":
        yield AnyStore("sqlite", path=tmp_path / "mirror.db")
        return
    request.getfixturevalue("postgres_database")  # skips (fails under CI) without a server
    admin = admin_dsn()
    name = f"calbridge_any_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(admin, f"CREATE DATABASE {name}"))
    try:
        yield AnyStore("postgres", dsn=with_database(admin, name))
    finally:
        asyncio.run(_admin(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
