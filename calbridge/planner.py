"""The engine's rules, as pure functions of values: no I/O, no clock, no database.

A calendar's saved :class:`~calbridge.store.base.CalendarState` is in one :class:`Phase`. A run
settles a sweep owed from before (:func:`sweep_first`), starts its round as :func:`plan_round`
says (resume, incremental, or :func:`begin_full`), commits each page with the state
:func:`on_page` gives (a dead cursor: :func:`on_cursor_expired`), settles the sweep a full listing
left (:meth:`SweepPolicy.holds`: run it to :func:`sweep_done`, or :func:`hold_sweep`), then
expands as :func:`plan_expansion` says (:func:`expanded_for`). ``calbridge._calendar_sync``
executes these decisions; the store applies the row rules (:func:`sweep_target`,
:func:`stale_after_upsert`, :func:`stale_after_delete`) inside its transactions and decides
nothing itself.
"""

from __future__ import annotations

import datetime as dt
import enum
import zlib
from collections.abc import Collection, Iterable

import attrs

from .model import Event, Kind, Window
from .provider import Capabilities, Page
from .state import CalendarState, PendingSweep, Round

# -- rounds ----------------------------------------------------------------------------------------

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
    REANCHOR = "re-anchor"  # a window-bound cursor's daily fresh listing


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


def reanchor_due(state: CalendarState, now: dt.datetime, capabilities: Capabilities) -> bool:
    """Window-bound cursors (Graph) get a fresh full listing once a day, staggered per calendar by a
    hash of its name, so the sweep can drop what left the window."""
    if not capabilities.window_bound_cursor or state.full_started is None:
        return False
    stagger = zlib.crc32(f"{state.account}/{state.calendar_id}".encode()) % REANCHOR_STAGGER
    return now - state.full_started >= REANCHOR_EVERY + dt.timedelta(seconds=stagger)


def plan_round(state: CalendarState, now: dt.datetime, *, full: bool, capabilities: Capabilities) -> RoundPlan:
    """How this run's round starts. A full listing in progress resumes even when a full one is asked
    for (it is one); an incremental round in progress gives way to one."""
    expand = not capabilities.sync_yields_occurrences
    if state.round is Round.FULL:
        return RoundPlan(start=Start.RESUME, expand=expand)
    because = _full_because(state, now, full=full, capabilities=capabilities)
    if because is not None:
        return RoundPlan(start=Start.FULL, because=because, expand=expand)
    return RoundPlan(start=Start.INCREMENTAL if state.round is None else Start.RESUME, expand=expand)


def _full_because(
    state: CalendarState, now: dt.datetime, *, full: bool, capabilities: Capabilities
) -> FullBecause | None:
    if full:
        return FullBecause.ASKED
    if state.cursor is None:
        return FullBecause.NO_CURSOR
    if reanchor_due(state, now, capabilities):
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


# -- sweeps ----------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SweepPolicy:
    """How far a sweep may go on its own, and how many rows each of its transactions removes."""

    ratio: float = 0.5
    allow_mass_delete: bool = False
    batch: int = 1000

    def holds(self, candidates: int, total: int) -> bool:
        """A sweep that would remove more than ``ratio`` of a calendar's rows waits for an explicit
        allow: a lost permission must not wipe a mirror."""
        return candidates > 0 and candidates > total * self.ratio and not self.allow_mass_delete


@attrs.frozen(kw_only=True)
class SweepTarget:
    """The rows a sweep removes: stamped with a mark below ``before_mark`` and, when ``within`` is
    set, overlapping it, unless their kind is in ``anywhere``."""

    before_mark: int
    within: Window | None = None
    anywhere: frozenset[Kind] = frozenset()


def sweep_target(sweep: PendingSweep) -> SweepTarget:
    """What ``sweep`` removes. The listing's scope bounds it, except for series, which are always in
    scope: Feishu's anchor_time lists every series whatever its age, and Google's timeMin every
    series with an instance after it; one not listed is gone (or ended before the history floor,
    which a fresh full sync would not hold either)."""
    if sweep.scope is None:
        return SweepTarget(before_mark=sweep.mark)
    return SweepTarget(before_mark=sweep.mark, within=sweep.scope, anywhere=frozenset({Kind.SERIES}))


def hold_sweep(state: CalendarState, candidates: int, total: int) -> CalendarState:
    """The sweep stays owed, marked held with what it would remove, for ``status`` to report."""
    assert state.sweep is not None
    return attrs.evolve(state, sweep=attrs.evolve(state.sweep, held=True, candidates=candidates, total=total))


def sweep_done(state: CalendarState) -> CalendarState:
    """Every batch is committed: nothing is owed any more."""
    return attrs.evolve(state, sweep=None)


# -- expansion -------------------------------------------------------------------------------------


def stale_after_upsert(event: Event, stored_kind: Kind | None) -> str | None:
    """The series whose stored occurrences a new or changed row makes stale: a series itself, one
    that stopped being a series, or the series of an exception (or a synced occurrence)."""
    if event.kind is Kind.SERIES or stored_kind is Kind.SERIES:
        return event.id
    return event.series_id


def stale_after_delete(series_id: str | None) -> str | None:
    """A deleted exception gives its slot back: its series (if any) is expanded again."""
    return series_id


@attrs.frozen(kw_only=True)
class ExpansionPlan:
    """One expansion pass: prune stale occurrences, then expand ``to_expand``, then record the window.

    - ``live``: the series the calendar holds; a prune keeps their occurrences inside the window.
    - ``gone``: flagged series no longer held (deleted, cancelled, turned single).
    - ``to_expand``: every live series once the window moved, else the flagged ones still live.
    - ``flagged``: some series were flagged stale (perhaps by a killed run): the run owes a last batch.
    """

    live: tuple[str, ...]
    gone: frozenset[str]
    window_moved: bool
    to_expand: tuple[str, ...]
    flagged: bool

    @property
    def prune(self) -> bool:
        """Occurrences outside the new window, or of series that are gone, must not linger."""
        return self.window_moved or bool(self.gone)


def plan_expansion(
    live: Iterable[str], flagged: Iterable[str], *, expanded: Window | None, window: Window
) -> ExpansionPlan:
    """Plan a pass from the series held, the series flagged stale, the window the stored
    occurrences were expanded for and the window now."""
    live_set, flagged_set = set(live), set(flagged)
    moved = expanded != window
    wanted = live_set if moved else flagged_set & live_set
    return ExpansionPlan(
        live=tuple(sorted(live_set)),
        gone=frozenset(flagged_set - live_set),
        window_moved=moved,
        to_expand=tuple(sorted(wanted)),
        flagged=bool(flagged_set),
    )


def expanded_for(state: CalendarState, window: Window) -> CalendarState:
    """The stored occurrences answer for ``window`` now: the next pass expands only flagged series
    until the window moves again."""
    return attrs.evolve(state, expanded=window)


def expansion_idle(flagged: Collection[str], *, expanded: Window | None, window: Window) -> bool:
    """Nothing flagged and the window where the last pass left it: a pass would do nothing whatever
    series the calendar holds, so a quiet round need not read them."""
    return not flagged and not plan_expansion((), (), expanded=expanded, window=window).window_moved


__all__ = [
    "REANCHOR_EVERY",
    "ExpansionPlan",
    "FullBecause",
    "Phase",
    "RoundPlan",
    "Start",
    "SweepPolicy",
    "SweepTarget",
    "begin_full",
    "expanded_for",
    "expansion_idle",
    "hold_sweep",
    "on_cursor_expired",
    "on_page",
    "owes_last_batch",
    "phase",
    "plan_expansion",
    "plan_round",
    "reanchor_due",
    "stale_after_delete",
    "stale_after_upsert",
    "sweep_after",
    "sweep_done",
    "sweep_first",
    "sweep_target",
]
