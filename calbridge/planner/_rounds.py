"""The round rules: a saved state's phase, how a round starts, and what each page or a dead cursor leaves."""

from __future__ import annotations

import datetime as dt
import enum
import zlib

import attrs

from ..model import Window
from ..provider import Capabilities, Page
from ..state import CalendarState, PendingSweep, Round

REANCHOR_EVERY = dt.timedelta(days=1)
REANCHOR_STAGGER = 3600  # seconds: calendars do not all resync in the same minute


class Phase(enum.Enum):
    """Where a calendar stands, read from its saved state (see :func:`phase`)."""

    NEW = "new"  # no durable cursor yet: the next round is a full listing
    IDLE = "idle"  # a durable cursor and nothing owed: the next round is incremental
    LISTING = "listing"  # a full listing in progress: it resumes from its cursor (None: its start)
    INCREMENTAL = "incremental"  # an incremental round in progress: it resumes from its cursor
    SWEEP_OWED = "sweep owed"  # a full listing ended and its sweep has not (yet)
    SWEEP_HELD = "sweep held"  # the sweep would remove too much: it waits for --allow-mass-delete


def phase(state: CalendarState) -> Phase:
    """The phase of ``state``. A round in progress comes first: a sweep it carries waits for its end."""
    if state.round is Round.FULL:
        return Phase.LISTING
    if state.round is Round.INCREMENTAL:
        return Phase.INCREMENTAL
    if state.sweep is not None:
        return Phase.SWEEP_HELD if state.sweep.held else Phase.SWEEP_OWED
    return Phase.NEW if state.cursor is None else Phase.IDLE


class Start(enum.Enum):
    """How a round starts."""

    RESUME = "resume"  # the round in progress goes on after its last committed page
    INCREMENTAL = "incremental"  # a new round from the durable cursor
    FULL = "full"  # a new full listing, from nothing, under a new mark


class FullBecause(enum.Enum):
    """Why a new full listing starts."""

    ASKED = "asked"  # ``sync --full``
    NO_CURSOR = "no cursor"  # never listed
    REANCHOR = "re-anchor"  # a window-bound cursor's fresh listing once its slack is used up


@attrs.frozen(kw_only=True)
class RoundPlan:
    """What a run does with a calendar once any sweep owed from before is settled."""

    start: Start
    because: FullBecause | None = None  # set when ``start`` is FULL
    expand: bool = True  # expand series after the round (not when the stream carries occurrences)


def owes_last_batch(state: CalendarState) -> bool:
    """A run that finishes what a killed run began ends with a ``last`` batch even when its own part
    is quiet: the killed run may have published changes without one."""
    return phase(state) not in (Phase.NEW, Phase.IDLE)


def sweep_first(state: CalendarState) -> bool:
    """A sweep owed (or held) with no round in progress is settled before anything else."""
    return phase(state) in (Phase.SWEEP_OWED, Phase.SWEEP_HELD)


def sweep_after(state: CalendarState) -> bool:
    """After the round: the sweep its full listing left, or an older held one it carried, is settled."""
    return state.sweep is not None


def reanchor_due(
    state: CalendarState, now: dt.datetime, capabilities: Capabilities, slack: dt.timedelta = dt.timedelta(0)
) -> bool:
    """Whether a window-bound cursor (Graph) needs a fresh full listing (see :func:`sync_window`).

    Without slack (under two days), once a day. With slack, before the slack is used up: at the first
    boundary of the calendar's own ``slack``-day cycle after the listing began (so at most ``slack``
    days later, when the window's end has moved at most that far), the cycle's phase and an offset of
    up to an hour taken from a hash of the calendar's name, so calendars re-anchor on different days
    and minutes, and each exactly once in any ``slack`` consecutive days.
    """
    if not capabilities.window_bound_cursor or state.full_started is None:
        return False
    digest = zlib.crc32(f"{state.account}/{state.calendar_id}".encode())
    stagger = dt.timedelta(seconds=digest % REANCHOR_STAGGER)
    period = slack.days
    if period < 2:
        return now - state.full_started >= REANCHOR_EVERY + stagger
    phase = digest % period

    def cycle(at: dt.datetime) -> int:
        return ((at - stagger).astimezone(dt.UTC).date().toordinal() + phase) // period

    return cycle(now) > cycle(state.full_started)


def sync_window(window: Window, capabilities: Capabilities, slack: dt.timedelta = dt.timedelta(0)) -> Window:
    """The window a round asks the provider for: a window-bound cursor is frozen to the window of its
    full listing, so it asks for ``slack`` beyond the configured end and lasts until
    :func:`reanchor_due` (rows outside the configured window are not shown by ``events --expand``)."""
    if not capabilities.window_bound_cursor or slack <= dt.timedelta(0):
        return window
    return Window(start=window.start, end=window.end + slack)


def plan_round(
    state: CalendarState,
    now: dt.datetime,
    *,
    full: bool,
    capabilities: Capabilities,
    slack: dt.timedelta = dt.timedelta(0),
) -> RoundPlan:
    """How this run's round starts. A full listing in progress resumes even when a full one is asked
    for (it is one); an incremental round in progress gives way to one."""
    expand = not capabilities.sync_yields_occurrences
    if state.round is Round.FULL:
        return RoundPlan(start=Start.RESUME, expand=expand)
    because = _full_because(state, now, full=full, capabilities=capabilities, slack=slack)
    if because is not None:
        return RoundPlan(start=Start.FULL, because=because, expand=expand)
    return RoundPlan(start=Start.INCREMENTAL if state.round is None else Start.RESUME, expand=expand)


def _full_because(
    state: CalendarState, now: dt.datetime, *, full: bool, capabilities: Capabilities, slack: dt.timedelta
) -> FullBecause | None:
    if full:
        return FullBecause.ASKED
    if state.cursor is None:
        return FullBecause.NO_CURSOR
    if reanchor_due(state, now, capabilities, slack):
        return FullBecause.REANCHOR
    return None


def begin_full(state: CalendarState, now: dt.datetime) -> CalendarState:
    """A full listing from nothing under a new mark; a sweep still held is kept until it ends."""
    return attrs.evolve(state, cursor=None, round=Round.FULL, mark=state.mark + 1, full_started=now)


def on_cursor_expired(state: CalendarState, now: dt.datetime) -> CalendarState:
    """A dead cursor, incremental or in the middle of a full listing, starts the listing over from
    nothing: rows the dead round already stamped are stamped again, or swept, like any others."""
    return begin_full(state, now)


def on_page(state: CalendarState, page: Page) -> CalendarState:
    """The state committed with ``page``: its cursor resumes after it. The last page ends the round
    (its cursor is the durable one) and, ending a full listing, owes the sweep of older marks within
    the scope the listing could see."""
    kind = state.round or Round.INCREMENTAL
    sweep = state.sweep
    if page.last and kind is Round.FULL:
        sweep = PendingSweep(mark=state.mark, scope=page.sweep_scope)
    return attrs.evolve(state, cursor=page.cursor, round=None if page.last else kind, sweep=sweep)
