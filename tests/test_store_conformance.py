"""The store conformance suite (``calbridge.testing.store_kit``) against both stores: the embedded
SQLite one and PostgreSQL (a fresh schema per test in the run's throwaway database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from calbridge.store.postgres import PostgresStore
from calbridge.store.sqlite import SqliteStore
from calbridge.testing.store_kit import StoreConformance, StoreOpener


class TestSqliteStoreConformance(StoreConformance):
    @pytest.fixture
    def open_store(self, tmp_path: Path) -> StoreOpener:
        return lambda: SqliteStore(tmp_path / "mirror.db")


class TestPostgresStoreConformance(StoreConformance):
    @pytest.fixture
    def open_store(self, postgres_database: str, postgres_schema: str) -> StoreOpener:
        return lambda: PostgresStore(postgres_database, schema=postgres_schema, pool=4)
