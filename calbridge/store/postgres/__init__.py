"""The PostgreSQL store (``store: postgresql://…``), on asyncpg from the ``postgres`` extra: imported
only when such a store is opened, so the rest of calbridge runs without it."""

from __future__ import annotations

from ._dsn import is_postgres, redact
from .store import PostgresStore

__all__ = ["PostgresStore", "is_postgres", "redact"]
