"""``open_store(config)``: the store a config names, SQLite or PostgreSQL, as an unopened handle."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, TypeAlias

from ..errors import MissingDependency

if TYPE_CHECKING:
    from ..config import Config
    from .postgres import PostgresStore
    from .sqlite import SqliteStore

StoreHandle: TypeAlias = "SqliteStore | PostgresStore"


def open_store(config: Config, *, create: bool = True, read_only: bool = False) -> StoreHandle:
    """A handle on ``config``'s store (``async with open_store(config) as store: ...``).

    ``create``: make (migrate) the store when missing; ``read_only``: never write (``events``, ``status``).

    Raises:
        MissingDependency: a PostgreSQL store without asyncpg (``pip install 'calbridge[postgres]'``),
            said before anything is opened.
    """
    if config.store_url is None:
        from .sqlite import SqliteStore

        return SqliteStore(config.store_path, create=create, read_only=read_only)
    if importlib.util.find_spec("asyncpg") is None:
        raise MissingDependency("store: the PostgreSQL store", module="asyncpg", extra="postgres")
    from .postgres import PostgresStore

    options = config.store_options
    return PostgresStore(
        config.store_url,
        pool=options.pool,
        statement_timeout=options.statement_timeout,
        create=create,
        read_only=read_only,
    )
