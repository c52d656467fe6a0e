"""Stores: the ``Store`` protocol and the embedded SQLite default."""

from __future__ import annotations

from .base import CalendarState, CalendarStatus, PendingSweep, Round, Store
from .sqlite import SqliteStore

__all__ = ["CalendarState", "CalendarStatus", "PendingSweep", "Round", "SqliteStore", "Store"]
