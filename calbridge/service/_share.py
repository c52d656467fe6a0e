"""The fleet's fair share, as a pure decision: how many calendars a worker claims or gives up on each
beat, from the census (workers alive, calendars known) and what it holds. No I/O.

Each worker aims at ``ceil(calendars / workers)``: a worker that joins claims what is free and the
others give up their excess at their next beat, idle calendars only (a round in flight is never cut
short to rebalance), so with 3 workers and 300 calendars each ends between 50 and 150 (at 100 once
settled).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from ..lease import Census, Key


@attrs.frozen(kw_only=True)
class ShareStep:
    """One beat's decision: claim up to ``claim`` more; give up ``release``."""

    claim: int = 0
    release: tuple[Key, ...] = ()


def target(census: Census) -> int:
    """A worker's fair share: every calendar held, none by more than its ceiling."""
    return math.ceil(census.calendars / max(census.workers, 1))


def share(census: Census, *, held: int, idle: Sequence[Key]) -> ShareStep:
    """What to do at a beat holding ``held`` calendars, of which ``idle`` (in the order to give them
    up) run no round now."""
    goal = target(census)
    if held < goal:
        return ShareStep(claim=goal - held)
    excess = min(held - goal, len(idle))
    return ShareStep(release=tuple(idle[:excess])) if excess > 0 else ShareStep()
