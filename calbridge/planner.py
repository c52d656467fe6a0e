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
from collections.abc import Collection, Iterable, Mapping

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
class ExpansionStep:
    """One call of the provider's ``expand``: ``series_ids`` over ``window``; their stored
    occurrences then answer for everything up to ``horizon`` (at most ``window.end``)."""

    series_ids: tuple[str, ...]
    window: Window
    horizon: dt.datetime


@attrs.frozen(kw_only=True)
class ExpansionPlan:
    """One expansion pass: the ``steps``, then a prune (and reveal) to the window, then record it.

    - ``live``: the series the calendar holds; a prune keeps their occurrences inside the window.
    - ``gone``: flagged series no longer held (deleted, cancelled, turned single).
    - ``steps``: what to expand (see :func:`plan_expansion`).
    - ``flagged``: some series were flagged stale (perhaps by a killed run): the run owes a last batch.
    """

    live: tuple[str, ...]
    gone: frozenset[str]
    window_moved: bool
    steps: tuple[ExpansionStep, ...]
    flagged: bool

    @property
    def to_expand(self) -> tuple[str, ...]:
        """Every series some step expands, sorted."""
        return tuple(sorted({s for step in self.steps for s in step.series_ids}))

    @property
    def prune(self) -> bool:
        """Occurrences outside the new window, or of series that are gone, must not linger, and the
        occurrences stored ahead that the window now reaches are shown."""
        return self.window_moved or bool(self.gone)


def window_moved(expanded: Window | None, window: Window) -> bool:
    """The stored occurrences were shown for another window (or never): the pass looks at every
    series' horizon (:func:`plan_expansion`), so only then does the engine read them."""
    return expanded != window


def refresh_margin(slack: dt.timedelta) -> dt.timedelta:
    """How much of a series' slack may be left when it is expanded again: a sixth (whole days), so a
    series costs one expansion per ``slack - margin`` days (25 of a 30-day slack)."""
    return dt.timedelta(days=slack.days // 6)


def _stagger_key(series_id: str) -> tuple[int, str]:
    return zlib.crc32(series_id.encode()), series_id


def plan_expansion(
    live: Iterable[str],
    flagged: Iterable[str],
    horizons: Mapping[str, dt.datetime] | None = None,
    *,
    expanded: Window | None,
    window: Window,
    slack: dt.timedelta = dt.timedelta(0),
    calendar_wide: bool = False,
) -> ExpansionPlan:
    """Plan a pass from the series held, the series flagged stale, how far each series' stored
    occurrences reach (``horizons``; read only when the window moved), the window they were last
    shown for and the window now.

    Expansion reaches ``slack`` past the window's end (the store keeps what lies beyond the window
    hidden until the window gets there), so a moving window costs nothing until a series' horizon
    comes within :func:`refresh_margin` of the window's end:

    - a flagged series (changed, or new) is expanded over the whole window plus slack;
    - once the window moved, a series never expanded is too, and so is one whose horizon is within
      the margin of the window's end (the window's edge reached what was expanded for it);
    - series expanded together get horizons spread over the part of the slack above the margin,
      by rank of a hash of their ids, so their next expansions fall on different days (each day
      about ``1 / (slack - margin)`` of them);
    - ``calendar_wide`` (Feishu's instance_view: one request serves every series of a 39-day range)
      spreads nothing: when a horizon is reached every series is expanded over the missing tail
      only, ``[lowest horizon, end + slack]``, in one step.

    Without slack every series is expanded once the window moved, as a day passes.
    """
    live_set, flagged_set = set(live), set(flagged)
    moved = window_moved(expanded, window)
    reach = window.end + max(slack, dt.timedelta(0))
    whole = Window(start=window.start, end=reach)
    margin = refresh_margin(slack)
    fresh = flagged_set & live_set
    due: set[str] = set()
    if moved:
        known = dict(horizons or {})
        fresh |= {s for s in live_set if s not in known}
        due = {s for s in live_set - fresh if known[s] < window.end + margin or known[s] > reach}
    steps: list[ExpansionStep] = []
    if fresh:
        steps.extend(_spread(sorted(fresh, key=_stagger_key), whole, slack - margin, calendar_wide))
    if due and calendar_wide:
        rest = sorted(live_set - fresh)
        low = max(min((horizons or {})[s] for s in rest), window.start)
        tail = Window(start=low if low < reach else window.end, end=reach)  # past reach: the slack shrank
        steps.append(ExpansionStep(series_ids=tuple(rest), window=tail, horizon=reach))
    elif due:
        steps.append(ExpansionStep(series_ids=tuple(sorted(due)), window=whole, horizon=reach))
    return ExpansionPlan(
        live=tuple(sorted(live_set)),
        gone=frozenset(flagged_set - live_set),
        window_moved=moved,
        steps=tuple(steps),
        flagged=bool(flagged_set),
    )


def _spread(ranked: list[str], whole: Window, spread: dt.timedelta, calendar_wide: bool) -> list[ExpansionStep]:
    """Steps over ``whole`` whose horizons step down a day at a time over ``spread`` (whole days), so
    the series come due again on different days; one step when nothing is to be spread."""
    days = spread.days
    if calendar_wide or days < 1 or len(ranked) < 2:
        return [ExpansionStep(series_ids=tuple(sorted(ranked)), window=whole, horizon=whole.end)]
    groups: dict[int, list[str]] = {}
    for rank, sid in enumerate(ranked):
        groups.setdefault(rank * days // len(ranked), []).append(sid)
    return [
        ExpansionStep(series_ids=tuple(sorted(ids)), window=whole, horizon=whole.end - dt.timedelta(days=back))
        for back, ids in sorted(groups.items())
    ]


def expanded_for(state: CalendarState, window: Window) -> CalendarState:
    """The stored occurrences are shown for ``window`` now: the next pass expands only flagged series
    until the window moves again."""
    return attrs.evolve(state, expanded=window)


def expansion_idle(flagged: Collection[str], *, expanded: Window | None, window: Window) -> bool:
    """Nothing flagged and the window where the last pass left it: a pass would do nothing whatever
    series the calendar holds, so a quiet round need not read them."""
    return not flagged and not window_moved(expanded, window)


__all__ = [
    "REANCHOR_EVERY",
    "ExpansionPlan",
    "ExpansionStep",
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
    "refresh_margin",
    "stale_after_delete",
    "stale_after_upsert",
    "sweep_after",
    "sweep_done",
    "sweep_first",
    "sweep_target",
    "sync_window",
    "window_moved",
]
