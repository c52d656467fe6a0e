"""The planner's rules, one test per transition: pure values in, values out; no SQLite, no HTTP."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator

import attrs
import pytest

from calbridge import planner
from calbridge.cursor import Cursor
from calbridge.model import Event, Kind, When, Window
from calbridge.planner import FullBecause, Phase, Start
from calbridge.provider import Capabilities, Page
from calbridge.store.base import CalendarState, PendingSweep, Round

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
WINDOW = Window(start=dt.datetime(2026, 1, 30, tzinfo=dt.UTC), end=dt.datetime(2026, 6, 1, tzinfo=dt.UTC))
DURABLE = Cursor(scheme="t", version=1, state={"sync": "s1"})
MID = Cursor(scheme="t", version=1, state={"sync": "s1", "page": 2})
PLAIN = Capabilities()
GRAPH = Capabilities(sync_yields_occurrences=True, window_bound_cursor=True)


@pytest.fixture(autouse=True)
def no_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the planner opened a database")

    monkeypatch.setattr(sqlite3, "connect", refuse)
    yield


def state(**kw: object) -> CalendarState:
    return CalendarState(account="a", calendar_id="c", **kw)  # type: ignore[arg-type]


def idle(**kw: object) -> CalendarState:
    """A calendar between rounds: a durable cursor from a full listing of mark 3, expanded for WINDOW."""
    fields: dict[str, object] = {"cursor": DURABLE, "mark": 3, "full_started": NOW, "expanded": WINDOW, **kw}
    return state(**fields)


def page(*, last: bool, cursor: Cursor = MID, scope: Window | None = None) -> Page:
    return Page(changes=(), cursor=cursor, last=last, sweep_scope=scope)


def event(id: str, kind: Kind = Kind.SINGLE, series_id: str | None = None) -> Event:
    at = When.at(NOW)
    return Event(provider="t", account="a", calendar_id="c", id=id, kind=kind, start=at, end=at, series_id=series_id)


# -- phases ---------------------------------------------------------------------------------------


def test_each_saved_state_reads_as_one_phase() -> None:
    held = PendingSweep(mark=3, held=True)
    assert planner.phase(state()) is Phase.NEW
    assert planner.phase(idle()) is Phase.IDLE
    assert planner.phase(idle(round=Round.FULL, cursor=None)) is Phase.LISTING
    assert planner.phase(idle(round=Round.INCREMENTAL, cursor=MID)) is Phase.INCREMENTAL
    assert planner.phase(idle(sweep=PendingSweep(mark=3))) is Phase.SWEEP_OWED
    assert planner.phase(idle(sweep=held)) is Phase.SWEEP_HELD
    # A round in progress comes first: the sweep it carries waits for the round's end.
    assert planner.phase(idle(round=Round.INCREMENTAL, sweep=held)) is Phase.INCREMENTAL


def test_a_run_finishing_a_killed_runs_work_owes_a_last_batch() -> None:
    assert not planner.owes_last_batch(state()) and not planner.owes_last_batch(idle())
    assert planner.owes_last_batch(idle(round=Round.INCREMENTAL, cursor=MID))
    assert planner.owes_last_batch(idle(round=Round.FULL))
    assert planner.owes_last_batch(idle(sweep=PendingSweep(mark=3)))
    assert planner.owes_last_batch(idle(sweep=PendingSweep(mark=3, held=True)))


# -- how a round starts ---------------------------------------------------------------------------


def test_never_listed_starts_a_full_listing_under_a_new_mark() -> None:
    plan = planner.plan_round(state(), NOW, full=False, capabilities=PLAIN)
    assert plan == planner.RoundPlan(start=Start.FULL, because=FullBecause.NO_CURSOR, expand=True)
    begun = planner.begin_full(state(), NOW)
    assert (begun.cursor, begun.round, begun.mark, begun.full_started) == (None, Round.FULL, 1, NOW)
    assert planner.phase(begun) is Phase.LISTING


def test_idle_starts_an_incremental_round_and_asked_starts_a_full_one() -> None:
    assert planner.plan_round(idle(), NOW, full=False, capabilities=PLAIN).start is Start.INCREMENTAL
    plan = planner.plan_round(idle(), NOW, full=True, capabilities=PLAIN)
    assert (plan.start, plan.because) == (Start.FULL, FullBecause.ASKED)


def test_resume_mid_round_from_the_last_committed_page() -> None:
    incremental = idle(round=Round.INCREMENTAL, cursor=MID)
    assert planner.plan_round(incremental, NOW, full=False, capabilities=PLAIN).start is Start.RESUME
    listing = idle(round=Round.FULL, cursor=MID, mark=4)
    # A full listing in progress resumes even when a full one is asked for: it is one.
    assert planner.plan_round(listing, NOW, full=True, capabilities=PLAIN).start is Start.RESUME
    # An incremental round in progress gives way to an asked full listing.
    plan = planner.plan_round(incremental, NOW, full=True, capabilities=PLAIN)
    assert (plan.start, plan.because) == (Start.FULL, FullBecause.ASKED)
    # Resuming, the next page goes on in the round's kind and keeps the mark.
    after = planner.on_page(listing, page(last=False, cursor=Cursor(scheme="t", version=1, state={"page": 3})))
    assert (after.round, after.mark, after.cursor.state) == (Round.FULL, 4, {"page": 3})  # type: ignore[union-attr]


def test_reanchor_due_once_a_day_for_window_bound_cursors_only() -> None:
    synced = idle()
    stagger = planner.REANCHOR_EVERY + dt.timedelta(hours=1)
    assert planner.plan_round(synced, NOW + dt.timedelta(hours=23), full=False, capabilities=GRAPH).start is (
        Start.INCREMENTAL
    )
    plan = planner.plan_round(synced, NOW + stagger, full=False, capabilities=GRAPH)
    assert (plan.start, plan.because) == (Start.FULL, FullBecause.REANCHOR)
    assert planner.plan_round(synced, NOW + 30 * stagger, full=False, capabilities=PLAIN).start is Start.INCREMENTAL
    assert not planner.reanchor_due(idle(full_started=None), NOW + 30 * stagger, GRAPH)


def test_a_stream_that_carries_occurrences_is_not_expanded() -> None:
    assert planner.plan_round(idle(), NOW, full=False, capabilities=PLAIN).expand
    assert not planner.plan_round(idle(), NOW, full=False, capabilities=GRAPH).expand


# -- pages ----------------------------------------------------------------------------------------


def test_an_incremental_round_pages_then_ends_with_the_durable_cursor() -> None:
    first = planner.on_page(idle(), page(last=False))
    assert (first.round, first.cursor, first.sweep) == (Round.INCREMENTAL, MID, None)
    end = planner.on_page(first, page(last=True, cursor=DURABLE))
    assert (end.round, end.cursor, end.sweep, end.mark) == (None, DURABLE, None, 3)
    assert planner.phase(end) is Phase.IDLE and not planner.sweep_after(end)


def test_the_last_page_of_a_full_listing_owes_a_sweep_within_its_scope() -> None:
    scope = Window(start=NOW - dt.timedelta(days=30), end=NOW + dt.timedelta(days=365))
    listing = planner.begin_full(idle(), NOW)
    listing = planner.on_page(listing, page(last=False))
    assert listing.sweep is None and listing.round is Round.FULL
    end = planner.on_page(listing, page(last=True, cursor=DURABLE, scope=scope))
    assert end.sweep == PendingSweep(mark=4, scope=scope)
    assert (end.round, end.cursor) == (None, DURABLE)
    assert planner.phase(end) is Phase.SWEEP_OWED and planner.sweep_after(end)


def test_expired_cursor_during_a_full_listing_restarts_it_from_nothing() -> None:
    listing = planner.on_page(planner.begin_full(idle(), NOW), page(last=False))
    later = NOW + dt.timedelta(minutes=5)
    restarted = planner.on_cursor_expired(listing, later)
    assert (restarted.cursor, restarted.round, restarted.mark, restarted.full_started) == (None, Round.FULL, 5, later)
    # The same answer to a dead incremental cursor: a full listing.
    dead = planner.on_cursor_expired(idle(round=Round.INCREMENTAL, cursor=MID), later)
    assert (dead.cursor, dead.round, dead.mark) == (None, Round.FULL, 4)


# -- sweeps ---------------------------------------------------------------------------------------


def test_sweep_owed_by_a_killed_run_is_settled_first_then_done() -> None:
    owed = idle(sweep=PendingSweep(mark=3))
    assert planner.sweep_first(owed)
    assert not planner.sweep_first(idle()) and not planner.sweep_first(idle(round=Round.FULL, sweep=owed.sweep))
    policy = planner.SweepPolicy()
    assert not policy.holds(4, 10) and not policy.holds(5, 10) and not policy.holds(0, 0)
    done = planner.sweep_done(owed)
    assert done.sweep is None and planner.phase(done) is Phase.IDLE


def test_held_sweep_waits_is_checked_again_and_a_full_listing_replaces_it() -> None:
    owed = idle(sweep=PendingSweep(mark=3))
    policy = planner.SweepPolicy(ratio=0.5)
    assert policy.holds(6, 10)
    assert not attrs.evolve(policy, allow_mass_delete=True).holds(6, 10)
    held = planner.hold_sweep(owed, 6, 10)
    assert held.sweep == PendingSweep(mark=3, held=True, candidates=6, total=10)
    assert planner.phase(held) is Phase.SWEEP_HELD and planner.sweep_first(held)
    # An incremental round carries it, and it is checked again after the round.
    carried = planner.on_page(planner.on_page(held, page(last=False)), page(last=True, cursor=DURABLE))
    assert carried.sweep == held.sweep and planner.sweep_after(carried)
    # A new full listing keeps it until its own last page owes a fresh one.
    listing = planner.on_page(planner.begin_full(held, NOW), page(last=False))
    assert listing.sweep == held.sweep and planner.phase(listing) is Phase.LISTING
    end = planner.on_page(listing, page(last=True, cursor=DURABLE))
    assert end.sweep == PendingSweep(mark=4)


def test_sweep_target_keeps_series_in_scope_wherever_they_lie() -> None:
    assert planner.sweep_target(PendingSweep(mark=4)) == planner.SweepTarget(before_mark=4)
    scoped = planner.sweep_target(PendingSweep(mark=4, scope=WINDOW))
    assert scoped == planner.SweepTarget(before_mark=4, within=WINDOW, anywhere=frozenset({Kind.SERIES}))


# -- expansion ------------------------------------------------------------------------------------


def test_a_quiet_pass_with_the_same_window_does_nothing() -> None:
    plan = planner.plan_expansion(["s1", "s2"], [], expanded=WINDOW, window=WINDOW)
    assert not plan.prune and plan.to_expand == () and not plan.window_moved and not plan.flagged


def test_window_moved_prunes_and_expands_every_series_then_records_the_window() -> None:
    moved = Window(start=WINDOW.start + dt.timedelta(days=1), end=WINDOW.end + dt.timedelta(days=1))
    plan = planner.plan_expansion(["s2", "s1"], ["s1"], expanded=WINDOW, window=moved)
    assert plan.prune and plan.window_moved and plan.to_expand == ("s1", "s2") and plan.live == ("s1", "s2")
    assert planner.expanded_for(idle(), moved).expanded == moved
    never = planner.plan_expansion(["s1"], [], expanded=None, window=WINDOW)
    assert never.window_moved and never.to_expand == ("s1",)


def test_dirty_series_are_expanded_and_gone_ones_pruned() -> None:
    plan = planner.plan_expansion(["s1", "s2", "s3"], ["s3", "s1"], expanded=WINDOW, window=WINDOW)
    assert plan.to_expand == ("s1", "s3") and not plan.prune and plan.flagged
    # A flagged series no longer held (deleted, cancelled, turned single) leaves no occurrences.
    gone = planner.plan_expansion(["s1"], ["s1", "old"], expanded=WINDOW, window=WINDOW)
    assert gone.gone == {"old"} and gone.prune and gone.to_expand == ("s1",) and gone.live == ("s1",)


def test_which_series_a_committed_change_makes_stale() -> None:
    series, exc = event("s", Kind.SERIES), event("s_x", Kind.EXCEPTION, series_id="s")
    assert planner.stale_after_upsert(series, None) == "s"
    assert planner.stale_after_upsert(series, Kind.SERIES) == "s"
    assert planner.stale_after_upsert(event("s"), Kind.SERIES) == "s"  # no longer a series
    assert planner.stale_after_upsert(exc, Kind.EXCEPTION) == "s"
    assert planner.stale_after_upsert(event("single"), Kind.SINGLE) is None
    assert planner.stale_after_delete("s") == "s"  # a deleted exception gives its slot back
    assert planner.stale_after_delete(None) is None


# -- expansion ahead of the window (slack) --------------------------------------------------------

SLACK = dt.timedelta(days=30)


def _day(window: Window, days: int) -> Window:
    return Window(start=window.start + days * DAY, end=window.end + days * DAY)


DAY = dt.timedelta(days=1)


def _simulate(n: int, days: int, *, calendar_wide: bool) -> tuple[int, list[int]]:
    """Run the planner as the engine does over ``days`` quiet days: (the first pass's requests, each
    day's), a request being one series expanded (or, calendar-wide, one step)."""
    live = [f"series-{i}" for i in range(n)]
    horizons: dict[str, dt.datetime] = {}

    def apply(plan: planner.ExpansionPlan) -> int:
        for step in plan.steps:
            assert step.horizon <= step.window.end
            horizons.update(dict.fromkeys(step.series_ids, step.horizon))
        return len(plan.steps) if calendar_wide else len(plan.to_expand)

    first = planner.plan_expansion(live, live, {}, expanded=None, window=WINDOW, slack=SLACK,
                                   calendar_wide=calendar_wide)  # fmt: skip
    full = apply(first)
    cost = []
    for d in range(1, days + 1):
        window = _day(WINDOW, d)
        plan = planner.plan_expansion(live, [], horizons, expanded=_day(WINDOW, d - 1), window=window, slack=SLACK,
                                      calendar_wide=calendar_wide)  # fmt: skip
        cost.append(apply(plan))
        assert all(h >= window.end for h in horizons.values()), d  # the window never outruns an expansion
    return full, cost


@pytest.mark.parametrize("n", [1, 20, 37, 100, 1000])
def test_thirty_quiet_days_cost_under_one_and_a_half_expansions_and_a_tenth_a_day(n: int) -> None:
    full, cost = _simulate(n, 30, calendar_wide=False)
    assert full == n
    assert sum(cost) < 1.5 * full and max(cost) <= max(1, 0.1 * full), cost
    # and so on, every 30 days, not just the first: a year of quiet days stays within the budget
    _, year = _simulate(n, 365, calendar_wide=False)
    for start in range(0, 365 - 30):
        assert sum(year[start : start + 30]) < 1.5 * full or n == 1, (start, year[start : start + 30])
    assert max(year) <= max(1, 0.1 * full)


def test_calendar_wide_expansion_asks_for_the_missing_tail_only() -> None:
    full, cost = _simulate(50, 365, calendar_wide=True)
    assert full == 1  # one step: every series over the window plus slack
    assert max(cost) == 1 and sum(cost[:30]) <= 1 and sum(cost) <= 365 // 25 + 1
    live = ["a", "b"]
    reach = _day(WINDOW, 26).end + SLACK
    horizons = dict.fromkeys(live, WINDOW.end + SLACK)
    plan = planner.plan_expansion(live, [], horizons, expanded=_day(WINDOW, 25), window=_day(WINDOW, 26), slack=SLACK,
                                  calendar_wide=True)  # fmt: skip
    assert plan.steps == (
        planner.ExpansionStep(series_ids=("a", "b"), window=Window(start=WINDOW.end + SLACK, end=reach), horizon=reach),
    )


def test_first_expansion_spreads_the_horizons_by_a_hash_of_the_ids() -> None:
    live = [f"s{i}" for i in range(50)]
    plan = planner.plan_expansion(live, live, {}, expanded=None, window=WINDOW, slack=SLACK)
    whole = Window(start=WINDOW.start, end=WINDOW.end + SLACK)
    assert {step.window for step in plan.steps} == {whole}  # every series asked for the same, whole range
    horizons = sorted(step.horizon for step in plan.steps)
    margin = planner.refresh_margin(SLACK)
    assert horizons[-1] == whole.end and horizons[0] > WINDOW.end + margin
    assert len(horizons) == (SLACK - margin).days  # one group per day of the spread
    assert plan.to_expand == tuple(sorted(live))


def test_a_changed_series_is_expanded_whole_and_a_moved_window_alone_costs_nothing() -> None:
    horizons = dict.fromkeys(["s1", "s2"], WINDOW.end + SLACK)
    moved = _day(WINDOW, 1)
    quiet = planner.plan_expansion(["s1", "s2"], [], horizons, expanded=WINDOW, window=moved, slack=SLACK)
    assert quiet.steps == () and quiet.prune and quiet.window_moved  # shown anew, nothing asked
    changed = planner.plan_expansion(["s1", "s2"], ["s2"], {}, expanded=WINDOW, window=WINDOW, slack=SLACK)
    whole = Window(start=WINDOW.start, end=WINDOW.end + SLACK)
    assert changed.steps == (planner.ExpansionStep(series_ids=("s2",), window=whole, horizon=whole.end),)
    # A series never expanded (a store from before horizons were kept) is expanded once the window moves.
    upgraded = planner.plan_expansion(["s1", "s3"], [], horizons, expanded=WINDOW, window=moved, slack=SLACK)
    assert upgraded.to_expand == ("s3",)
    # A horizon past the window plus slack (the slack was shortened) is not trusted.
    shrunk = planner.plan_expansion(["s1"], [], horizons, expanded=WINDOW, window=moved, slack=dt.timedelta(days=5))
    assert shrunk.to_expand == ("s1",)
    assert not planner.window_moved(WINDOW, WINDOW) and planner.window_moved(None, WINDOW)


def test_a_window_bound_cursor_asks_for_the_slack_and_reanchors_once_per_cycle() -> None:
    assert planner.sync_window(WINDOW, GRAPH, SLACK) == Window(start=WINDOW.start, end=WINDOW.end + SLACK)
    assert planner.sync_window(WINDOW, PLAIN, SLACK) == WINDOW
    assert planner.sync_window(WINDOW, GRAPH) == WINDOW
    days_due: list[int] = []
    for cal in range(40):
        synced = CalendarState(account="a", calendar_id=f"cal{cal}", full_started=NOW, cursor=DURABLE)
        due = [d for d in range(1, 91) if planner.reanchor_due(synced, NOW + d * DAY, GRAPH, SLACK)]
        assert due and due[0] <= SLACK.days, due  # before the window's end passes what was listed
        days_due.append(due[0])
        # Once re-anchored on its day, the next is a whole cycle later.
        again = attrs.evolve(synced, full_started=NOW + due[0] * DAY)
        later = [d for d in range(1, 91) if planner.reanchor_due(again, NOW + (due[0] + d) * DAY, GRAPH, SLACK)]
        assert later[0] == SLACK.days
        plan = planner.plan_round(synced, NOW + due[0] * DAY, full=False, capabilities=GRAPH, slack=SLACK)
        assert (plan.start, plan.because) == (Start.FULL, FullBecause.REANCHOR)
    assert len(set(days_due)) > 15  # calendars re-anchor on different days
