"""The expansion rules: which series a change makes stale, and what to expand, reveal or prune as the window moves."""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Collection, Iterable, Mapping

import attrs

from ..model import Event, Kind, Window
from ..state import CalendarState


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
