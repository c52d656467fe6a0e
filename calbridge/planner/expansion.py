"""Expansion rules: which series a committed change makes stale, and what an expansion pass does."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs

from ..model import Event, Kind, Window

if TYPE_CHECKING:  # the store imports this module: at run time it must not import the store back
    from ..store.base import CalendarState


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
