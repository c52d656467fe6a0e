"""RateLimit: starts per window and requests in flight, on an injected clock (no real waiting)."""

from __future__ import annotations

import asyncio

import pytest

from calbridge.toolkit import RateLimit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_no_window_ever_holds_more_starts_than_its_quota() -> None:
    clock = Clock()
    limit = RateLimit([(5, 1.0), (12, 60.0)], concurrency=100, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(30):
        await limit.acquire()
        starts.append(clock.now)
    for i, t in enumerate(starts):
        assert sum(1 for u in starts[i:] if u < t + 1.0) <= 5
        assert sum(1 for u in starts[i:] if u < t + 60.0) <= 12
    assert starts[:5] == [100.0] * 5 and starts[5] == pytest.approx(101.0)  # a burst, then the next second
    assert starts[12] == pytest.approx(160.0)  # the minute's quota: wait for the first start to leave it
    assert limit.waited == pytest.approx(clock.now - 100.0) and repr(limit) == "RateLimit(5/1s, 12/60s)"


async def test_concurrency_bounds_the_requests_in_flight() -> None:
    limit = RateLimit([(1000, 1.0)], concurrency=3)
    running = peak = 0

    async def one() -> None:
        nonlocal running, peak
        async with limit.slot():
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.005)
            running -= 1

    await asyncio.gather(*(one() for _ in range(12)))
    assert peak == 3


def test_a_limit_needs_positive_numbers() -> None:
    for windows, concurrency in (([(0, 1.0)], 1), ([(1, 0.0)], 1), ([(1, 1.0)], 0)):
        with pytest.raises(ValueError):
            RateLimit(windows, concurrency=concurrency)
