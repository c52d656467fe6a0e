"""Stores: the seams by role (``StateStore``, ``PageCommitter``, ``MirrorReader``, ``SecretStore``;
``Store`` is their union), the embedded SQLite default, and :func:`open_store`, which opens the one a
config names (PostgreSQL, ``calbridge.store.postgres``, is imported only then)."""

from __future__ import annotations

from ._open import open_store
from .base import (
    CalendarState,
    CalendarStatus,
    MirrorReader,
    PageCommitter,
    PendingSweep,
    Round,
    SecretStore,
    StateStore,
    Store,
)
from .sqlite import SqliteStore

__all__ = [
    "CalendarState",
    "CalendarStatus",
    "MirrorReader",
    "PageCommitter",
    "PendingSweep",
    "Round",
    "SecretStore",
    "SqliteStore",
    "StateStore",
    "Store",
    "open_store",
]
