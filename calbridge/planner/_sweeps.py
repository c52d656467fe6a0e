"""The sweep rules: when a sweep waits (the mass-delete guard), what it covers, and its transitions."""

from __future__ import annotations

import attrs

from ..model import Kind, Window
from ..state import CalendarState, PendingSweep


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
