"""The service's schedule, as pure decisions: when each calendar is due, how triggers coalesce, how a
failing calendar backs off. No I/O and no clock of its own: the service passes ``now`` and a number
in [0, 1) for the jitter, so every rule is tested as a function.

A calendar's :class:`Slot` moves through three events: :func:`triggered` (a push notice),
:func:`started` (its round begins), :func:`finished` (its round ended, with an :class:`Outcome`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import attrs

BACKOFF_BASE = dt.timedelta(seconds=30)
BACKOFF_CAP = dt.timedelta(hours=1)
MIN_RETRY = dt.timedelta(seconds=1)
SETTLE = dt.timedelta(milliseconds=250)
"""A notice's round starts this long after it, so a burst of notices (a change often sends several)
is read by one round; well inside the second push latency may take."""
JITTER = 0.2
"""Jitter takes up to this share off a period, never adds: calendars spread, and each is synced at
least every ``poll`` (a backoff at most every cap)."""


@attrs.frozen(kw_only=True)
class Policy:
    """The schedule's periods: ``poll`` between quiet rounds, backoff from ``base`` doubling to ``cap``."""

    poll: dt.timedelta = dt.timedelta(minutes=15)
    base: dt.timedelta = BACKOFF_BASE
    cap: dt.timedelta = BACKOFF_CAP
    jitter: float = JITTER
    settle: dt.timedelta = SETTLE


@attrs.frozen(kw_only=True)
class Outcome:
    """How a round ended, as the schedule needs it: ``ok``, ``stopped`` (a drain cut it short), and
    the provider's ``retry_at`` when it rate-limited the calendar."""

    ok: bool
    stopped: bool = False
    retry_at: dt.datetime | None = None


@attrs.frozen(kw_only=True)
class Slot:
    """One calendar's place in the schedule.

    ``due``: when its next round may start. ``running``: a round runs now. ``pending``: a trigger
    arrived during that round, which owes one more. ``failures``: rounds failed in a row.
    """

    due: dt.datetime
    running: bool = False
    pending: bool = False
    failures: int = 0

    @property
    def backing_off(self) -> bool:
        return self.failures > 0


def jittered(period: dt.timedelta, rand: float, jitter: float = JITTER) -> dt.timedelta:
    """``period`` shortened by up to ``jitter`` of it (``rand`` in [0, 1)): earlier, never later."""
    return period * (1 - jitter * min(max(rand, 0.0), 1.0))


def backoff(failures: int, rand: float, policy: Policy) -> dt.timedelta:
    """The wait after ``failures`` failed rounds in a row: ``base`` doubling each time, capped, jittered."""
    if failures <= 0:
        return dt.timedelta(0)
    doubled = policy.base * (2 ** min(failures - 1, 30))
    return jittered(min(doubled, policy.cap), rand, policy.jitter)


def first(now: dt.datetime) -> Slot:
    """A calendar the service just took on: due now (a round at start for every calendar)."""
    return Slot(due=now)


def triggered(slot: Slot, now: dt.datetime, policy: Policy) -> Slot:
    """A push notice: due once the burst settles, or one more round after the one running. Any number
    of notices before the round starts give that one round; a calendar backing off keeps its backoff."""
    if slot.running:
        return attrs.evolve(slot, pending=True)
    if slot.backing_off:
        return slot
    return attrs.evolve(slot, due=min(slot.due, now + policy.settle))


def started(slot: Slot) -> Slot:
    """Its round begins: the notices so far are what this round reads."""
    return attrs.evolve(slot, running=True, pending=False)


def finished(slot: Slot, outcome: Outcome, now: dt.datetime, rand: float, policy: Policy) -> Slot:
    """Its round ended: a success is next due within ``poll`` (at once when a notice came meanwhile),
    a failure after its backoff, a rate-limited one when the provider said (at least ``MIN_RETRY``
    on, so a ``retry_at`` in the past cannot spin); a stopped one where it stopped."""
    if outcome.stopped:
        return attrs.evolve(slot, running=False, due=now)
    if outcome.ok:
        due = now if slot.pending else now + jittered(policy.poll, rand, policy.jitter)
        return Slot(due=due, failures=0)
    failures = slot.failures + 1
    if outcome.retry_at is not None:
        due = max(outcome.retry_at, now + MIN_RETRY)
    else:
        due = now + backoff(failures, rand, policy)
    return Slot(due=due, failures=failures)


def deferred(slot: Slot, due: dt.datetime) -> Slot:
    """Not now: due at ``due`` instead (a fleet's calendar whose lease is being renewed)."""
    return attrs.evolve(slot, running=False, due=max(slot.due, due))


def next_wake(slots: Iterable[Slot]) -> dt.datetime | None:
    """The earliest ``due`` among the calendars not running, ``None`` when every one runs."""
    dues = [s.due for s in slots if not s.running]
    return min(dues) if dues else None


def due_now(slot: Slot, now: dt.datetime) -> bool:
    """Whether a round of it should start now."""
    return not slot.running and slot.due <= now
