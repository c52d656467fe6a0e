"""A calendar's sync state: the values the planner decides from and the store saves with each page.

They live apart from both so that the planner (:mod:`calbridge.planner`) and the store
(:mod:`calbridge.store`) can each import them without importing each other's modules first.
"""

from __future__ import annotations

import datetime as dt
import enum

import attrs

from .cursor import Cursor
from .model import Window

__all__ = ["CalendarState", "PendingSweep", "Round"]


class Round(enum.StrEnum):
    """The kind of round in progress for a calendar."""

    FULL = "full"
    INCREMENTAL = "incremental"


@attrs.frozen(kw_only=True)
class PendingSweep:
    """A sweep owed after a full listing: remove unmarked rows inside ``scope`` (None: all).

    ``held`` is set when it would remove more than the allowed share of the mirror.
    """

    mark: int
    scope: Window | None = None
    held: bool = False
    candidates: int = 0
    total: int = 0


@attrs.frozen(kw_only=True)
class CalendarState:
    """What the engine persists per calendar, always together with the page it follows.

    - ``cursor``: with ``round`` None the durable next-round cursor; otherwise the resume point
      inside the round in progress.
    - ``mark``: the generation of the current (or last) full listing; every upsert stamps its row
      with it, and the sweep removes rows of older generations.
    - ``full_started``: when the last full listing began (re-anchoring window-bound cursors).
    - ``expanded``: the window the stored occurrences were last expanded for.
    - ``pages``: the pages the round in progress has committed, over every run (its page limit).
    """

    account: str
    calendar_id: str
    cursor: Cursor | None = None
    round: Round | None = None
    mark: int = 0
    sweep: PendingSweep | None = None
    full_started: dt.datetime | None = None
    expanded: Window | None = None
    pages: int = 0
