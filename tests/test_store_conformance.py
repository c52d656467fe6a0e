"""The store conformance suite (``calbridge.testing.store_kit``) against the embedded SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from calbridge.store.sqlite import SqliteStore
from calbridge.testing.store_kit import StoreConformance, StoreOpener


class TestSqliteStoreConformance(StoreConformance):
    @pytest.fixture
    def open_store(self, tmp_path: Path) -> StoreOpener:
        return lambda: SqliteStore(tmp_path / "mirror.db")
