"""The service's schedule as pure functions: jitter, coalescing, backoff, ``retry_at``."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from calbridge.service import _schedule as s

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
POLICY = s.Policy(poll=dt.timedelta(minutes=15))
OK = s.Outcome(ok=True)
FAILED = s.Outcome(ok=False)
rands = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


@given(rands)
def test_a_quiet_calendar_is_due_within_poll_never_later_and_at_most_a_fifth_earlier(rand: float) -> None:
    slot = s.finished(s.started(s.first(NOW)), OK, NOW, rand, POLICY)
    wait = slot.due - NOW
    assert POLICY.poll * (1 - s.JITTER) <= wait <= POLICY.poll
    assert slot.failures == 0 and not slot.running


def test_jitter_spreads_calendars() -> None:
    dues = {s.finished(s.started(s.first(NOW)), OK, NOW, r / 10, POLICY).due for r in range(10)}
    assert len(dues) == 10


def test_every_calendar_is_due_at_start() -> None:
    assert s.due_now(s.first(NOW), NOW)


def test_notices_before_the_round_starts_give_one_round() -> None:
    slot = s.finished(s.started(s.first(NOW)), OK, NOW, 0.5, POLICY)
    later = NOW + dt.timedelta(seconds=5)
    for i in range(30):
        slot = s.triggered(slot, later + dt.timedelta(milliseconds=7 * i), POLICY)
    assert slot.due == later + s.SETTLE  # the burst settles: one round reads it all
    assert not s.due_now(slot, later) and s.due_now(slot, later + s.SETTLE)
    slot = s.started(slot)
    assert not s.due_now(slot, later) and not slot.pending
    slot = s.finished(slot, OK, later + dt.timedelta(seconds=1), 0.5, POLICY)
    assert not s.due_now(slot, later + dt.timedelta(seconds=2))  # no second round owed


def test_notices_during_a_round_give_exactly_one_more() -> None:
    slot = s.started(s.first(NOW))
    for _ in range(5):
        slot = s.triggered(slot, NOW, POLICY)
    assert slot.pending and not s.due_now(slot, NOW)  # not while it runs
    end = NOW + dt.timedelta(seconds=3)
    slot = s.finished(slot, OK, end, 0.5, POLICY)
    assert s.due_now(slot, end) and not slot.pending
    slot = s.finished(s.started(slot), OK, end, 0.5, POLICY)
    assert slot.due > end + dt.timedelta(minutes=10)


def test_backoff_doubles_and_is_capped_at_an_hour() -> None:
    waits = [s.backoff(n, 0.0, POLICY) for n in range(1, 12)]
    assert waits[0] == s.BACKOFF_BASE
    assert waits[1] == 2 * s.BACKOFF_BASE and waits[2] == 4 * s.BACKOFF_BASE
    assert max(waits) == dt.timedelta(hours=1) and waits[-1] == dt.timedelta(hours=1)
    assert s.backoff(1000, 0.0, POLICY) == dt.timedelta(hours=1)


@given(st.integers(min_value=1, max_value=200), rands)
def test_backoff_is_jittered_earlier_never_past_the_cap(failures: int, rand: float) -> None:
    wait = s.backoff(failures, rand, POLICY)
    plain = s.backoff(failures, 0.0, POLICY)
    assert plain * (1 - s.JITTER) <= wait <= plain <= s.BACKOFF_CAP


def test_a_failing_calendar_counts_failures_and_a_success_resets_them() -> None:
    slot, at = s.first(NOW), NOW
    for n in range(1, 5):
        slot = s.finished(s.started(slot), FAILED, at, 0.0, POLICY)
        assert slot.failures == n and slot.due == at + s.backoff(n, 0.0, POLICY)
        at = slot.due
    slot = s.finished(s.started(slot), OK, at, 0.0, POLICY)
    assert slot.failures == 0 and slot.due == at + POLICY.poll


def test_a_notice_does_not_cut_a_backoff_short() -> None:
    slot = s.finished(s.started(s.first(NOW)), FAILED, NOW, 0.0, POLICY)
    assert s.triggered(slot, NOW + dt.timedelta(seconds=1), POLICY).due == slot.due


def test_a_rate_limited_calendar_is_retried_when_the_provider_said() -> None:
    retry_at = NOW + dt.timedelta(seconds=90)
    slot = s.finished(s.started(s.first(NOW)), s.Outcome(ok=False, retry_at=retry_at), NOW, 0.9, POLICY)
    assert slot.due == retry_at and slot.failures == 1
    past = s.finished(s.started(s.first(NOW)), s.Outcome(ok=False, retry_at=NOW - dt.timedelta(1)), NOW, 0.9, POLICY)
    assert past.due == NOW + s.MIN_RETRY  # a wait in the past cannot spin


def test_a_stopped_round_is_due_where_it_stopped_without_a_failure() -> None:
    slot = s.finished(s.started(s.first(NOW)), s.Outcome(ok=False, stopped=True), NOW, 0.5, POLICY)
    assert slot.due == NOW and slot.failures == 0 and not slot.running


def test_next_wake_is_the_earliest_calendar_not_running() -> None:
    a = s.Slot(due=NOW + dt.timedelta(seconds=5))
    b = s.Slot(due=NOW, running=True)
    assert s.next_wake([a, b]) == a.due
    assert s.next_wake([b]) is None
