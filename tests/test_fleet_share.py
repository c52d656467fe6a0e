"""The fleet's fair share (``calbridge.service._share``), as the pure decision it is: claims toward
``ceil(calendars / workers)``, gives up only idle calendars, a bounded number per beat."""

from __future__ import annotations

import pytest

from calbridge.lease import Census
from calbridge.service._share import ShareStep, share, target

IDLE = [("a", f"c{i:03}") for i in range(300)]


@pytest.mark.parametrize(("workers", "calendars", "goal"), [(1, 300, 300), (3, 300, 100), (7, 300, 43), (4, 0, 0)])
def test_the_target_is_the_ceiling_of_the_even_split(workers: int, calendars: int, goal: int) -> None:
    assert target(Census(workers=workers, calendars=calendars)) == goal


def test_a_worker_below_its_share_claims_the_difference() -> None:
    assert share(Census(workers=3, calendars=300), held=40, idle=IDLE[:40]) == ShareStep(claim=60)


def test_a_worker_above_its_share_gives_up_its_idle_excess() -> None:
    # The first worker held all 300; a second joined: it gives up 150 at once.
    step = share(Census(workers=2, calendars=300), held=300, idle=IDLE)
    assert step.claim == 0 and step.release == tuple(IDLE[:150])


def test_a_round_in_flight_is_never_given_up() -> None:
    step = share(Census(workers=3, calendars=300), held=120, idle=IDLE[:5])
    assert step.release == tuple(IDLE[:5])


def test_at_its_share_a_worker_does_nothing() -> None:
    assert share(Census(workers=3, calendars=300), held=100, idle=IDLE[:100]) == ShareStep()


def test_three_workers_beating_in_turn_settle_between_50_and_150_each() -> None:
    """A simulation of the beats: workers joining one by one end within the issue's bounds, every
    calendar held once, settled within a few beats."""
    free = set(IDLE)
    held: list[list[tuple[str, str]]] = []
    for _joined in range(3):
        held.append([])
        for _ in range(3):  # beats, in turn
            for mine in held:
                census = Census(workers=len(held), calendars=len(IDLE))
                step = share(census, held=len(mine), idle=sorted(mine, reverse=True))
                for key in step.release:
                    mine.remove(key)
                    free.add(key)
                for key in sorted(free)[: step.claim]:
                    free.remove(key)
                    mine.append(key)
    counts = [len(m) for m in held]
    assert not free and sum(counts) == 300
    assert all(50 <= n <= 150 for n in counts), counts
    assert counts == [100, 100, 100]
