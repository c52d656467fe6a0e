"""Stores: the seams by role (``StateStore``, ``PageCommitter``, ``MirrorReader``, ``SecretStore``;
``Store`` is their union) and the embedded SQLite default."""

from __future__ import annotations

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
]
