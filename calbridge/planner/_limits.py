"""A round's bounds: a page limit counted across runs, a deadline per run, no cursor seen twice, and no
cursor too large to keep (pure)."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib

import attrs

from ..state import CalendarState
from ._rounds import begin_full

DEFAULT_ROUND_PAGES = 10_000
DEFAULT_ROUND_DEADLINE = dt.timedelta(hours=2)
DEFAULT_CURSOR_BYTES = 16 * 1024


class Runaway(enum.StrEnum):
    """Why a round is stopped (``RunawayPaging.reason``)."""

    PAGES = "pages"
    DEADLINE = "deadline"
    REPEAT = "repeat"


@attrs.frozen(kw_only=True)
class RoundLimits:
    """``pages`` per round (its state's count, so a rerun goes on counting), ``deadline`` per run of a
    round, ``cursor_bytes`` of a page's cursor in its stored JSON form (its tokens and links)."""

    pages: int = DEFAULT_ROUND_PAGES
    deadline: dt.timedelta = DEFAULT_ROUND_DEADLINE
    cursor_bytes: int = DEFAULT_CURSOR_BYTES


def cursor_key(cursor: str) -> str:
    """What a round remembers of a cursor it passed (its stored JSON ``cursor``): a digest, 64
    characters whatever the cursor's size."""
    return hashlib.sha256(cursor.encode()).hexdigest()


def runaway(
    state: CalendarState, key: str, *, last: bool, seen: set[str], elapsed: dt.timedelta, limits: RoundLimits
) -> Runaway | None:
    """What is wrong with the page that left ``state`` (its cursor's :func:`cursor_key` ``key``), if
    anything: ``seen`` holds the keys of the cursors the round resumed from or passed in this run."""
    if last:
        return None
    if key in seen:
        return Runaway.REPEAT
    if state.pages >= limits.pages:
        return Runaway.PAGES
    if elapsed > limits.deadline:
        return Runaway.DEADLINE
    return None


def cursor_oversized(cursor: str, limits: RoundLimits) -> bool:
    """A cursor the store must not keep: over the cap it is a dead cursor (the server may refuse it, too)."""
    return len(cursor.encode()) > limits.cursor_bytes


def on_runaway(state: CalendarState, now: dt.datetime, why: Runaway) -> CalendarState | None:
    """The state to save for a runaway round (None: keep the saved one). Its mid-round cursor is dropped,
    so the next run lists in full from the start; past the deadline alone the round is sound and resumes
    after its last committed page (its page count still bounds it)."""
    return None if why is Runaway.DEADLINE else begin_full(state, now)
