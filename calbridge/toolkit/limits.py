"""A provider's request quota on the client side: :class:`RateLimit`, at most so many requests started in
any window of each given length (Feishu's tier 4: 50 a second and 1,000 a minute), and at most so many
in flight at once. Callers wait their turn instead of running into 429s; a 429 that still comes (other
processes share the quota) is the retry policy's, as before.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

__all__ = ["RateLimit"]


class RateLimit:
    """``windows`` pairs (requests, seconds): no more than ``requests`` starts in any ``seconds``;
    ``concurrency`` bounds the requests in flight. ``clock``/``sleep`` are injectable for tests.

    Usage: ``async with limit.slot(): await send()``. Fair enough for one provider's fan-out: waiters
    queue on one lock, so starts keep their order.
    """

    def __init__(
        self,
        windows: Sequence[tuple[int, float]],
        *,
        concurrency: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if concurrency < 1 or any(n < 1 or span <= 0 for n, span in windows):
            raise ValueError("a rate limit needs positive counts, spans and concurrency")
        self._windows = tuple(windows)
        self._clock = clock
        self._sleep = sleep
        self._starts: collections.deque[float] = collections.deque()
        self._keep = max((span for _, span in self._windows), default=0.0)
        self._lock = asyncio.Lock()
        self._in_flight = asyncio.Semaphore(concurrency)
        self.waited = 0.0  # seconds spent waiting for the quota (not for a free slot)

    def __repr__(self) -> str:
        quota = ", ".join(f"{n}/{span:g}s" for n, span in self._windows)
        return f"RateLimit({quota})"

    def _delay(self, now: float) -> float:
        """How long until one more start fits every window (0: now)."""
        while self._starts and self._starts[0] <= now - self._keep:
            self._starts.popleft()
        delay = 0.0
        starts = self._starts
        for n, span in self._windows:
            # The n-th latest start still inside the window: the next start waits for it to leave.
            if len(starts) >= n and starts[-n] > now - span:
                delay = max(delay, starts[-n] + span - now)
        return delay

    async def acquire(self) -> None:
        """Wait until a request may start within the quota, and count it as started."""
        async with self._lock:
            while True:
                now = self._clock()
                delay = self._delay(now)
                if delay <= 0:
                    self._starts.append(now)
                    return
                self.waited += delay
                await self._sleep(delay)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """A free in-flight slot, then a start within the quota; released when the block ends."""
        async with self._in_flight:
            await self.acquire()
            yield
