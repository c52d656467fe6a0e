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

Modules by rule: ``_rounds``, ``_limits`` (a round's bounds), ``_sweeps``, ``_expansion``.
"""

from __future__ import annotations

from ._expansion import (
    ExpansionPlan,
    ExpansionStep,
    expanded_for,
    expansion_idle,
    plan_expansion,
    refresh_margin,
    stale_after_delete,
    stale_after_upsert,
    window_moved,
)
from ._limits import RoundLimits, Runaway, cursor_key, cursor_oversized, on_runaway, runaway
from ._rounds import (
    REANCHOR_EVERY,
    REANCHOR_STAGGER,
    FullBecause,
    Phase,
    RoundPlan,
    Start,
    begin_full,
    on_cursor_expired,
    on_page,
    owes_last_batch,
    phase,
    plan_round,
    reanchor_due,
    sweep_after,
    sweep_first,
    sync_window,
)
from ._sweeps import SweepPolicy, SweepTarget, hold_sweep, sweep_done, sweep_target

__all__ = [
    "REANCHOR_EVERY",
    "REANCHOR_STAGGER",
    "ExpansionPlan",
    "ExpansionStep",
    "FullBecause",
    "Phase",
    "RoundLimits",
    "RoundPlan",
    "Runaway",
    "Start",
    "SweepPolicy",
    "SweepTarget",
    "begin_full",
    "cursor_key",
    "cursor_oversized",
    "expanded_for",
    "expansion_idle",
    "hold_sweep",
    "on_cursor_expired",
    "on_page",
    "on_runaway",
    "owes_last_batch",
    "phase",
    "plan_expansion",
    "plan_round",
    "reanchor_due",
    "refresh_margin",
    "runaway",
    "stale_after_delete",
    "stale_after_upsert",
    "sweep_after",
    "sweep_done",
    "sweep_first",
    "sweep_target",
    "sync_window",
    "window_moved",
]
