"""Retry policy for provider calls, built on tenacity.

Transient failures (5xx, dropped connections, timeouts) get capped, jittered exponential backoff;
a :class:`~calbridge.errors.RateLimited` with a provider wait (Retry-After, Feishu's
``x-ogw-ratelimit-reset``) waits exactly that long first, unless that wait is longer than what is
left of the budget (or ``max_retry_after``): then it fails at once, its ``retry_at`` saying when the
calendar may be tried again (a sync is never parked on ``Retry-After: 3600``). Auth, permission and
cursor errors are never retried. Providers wrap each HTTP request in :meth:`Retrier.call`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs
import tenacity

from .errors import RateLimited, TransientError

logger = logging.getLogger(__name__)
T = TypeVar("T")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How hard to try: attempts and total time bound the loop, ``max_backoff`` caps one wait."""

    attempts: int = 6
    total_seconds: float = 300.0
    base_backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 600.0


class Retrier:
    """Runs an async call under a :class:`RetryPolicy`; ``sleep`` is injectable for tests."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_wait: Callable[[str, float, BaseException], None] | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._on_wait = on_wait
        self._backoff = tenacity.wait_random_exponential(
            multiplier=self.policy.base_backoff, max=self.policy.max_backoff
        )

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            # The provider's own wait wins over our backoff: asking earlier only earns another 429.
            return max(exc.retry_after, 0.0)
        return float(self._backoff(state))

    def _stop(self, state: tenacity.RetryCallState) -> bool:
        policy = self.policy
        elapsed = state.seconds_since_start or 0.0
        if state.attempt_number >= policy.attempts or elapsed >= policy.total_seconds:
            return True
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            # tenacity's stop cannot cut a sleep once scheduled: refuse a wait past the budget up front.
            return exc.retry_after > min(policy.max_retry_after, policy.total_seconds - elapsed)
        return False

    def _given_up(self, exc: RateLimited) -> RateLimited:
        """``exc`` with ``retry_at``: when the provider said it may be asked again."""
        if exc.retry_after is None or exc.retry_at is not None:
            return exc
        at = (self._clock() + dt.timedelta(seconds=max(exc.retry_after, 0.0))).astimezone(dt.UTC)
        return RateLimited(f"{exc}; retry after {at:%Y-%m-%d %H:%M:%S} UTC", retry_after=exc.retry_after,
                           retry_at=at, provider=exc.provider, status=exc.status, code=exc.code)  # fmt: skip

    async def call(self, fn: Callable[[], Awaitable[T]], *, what: str = "request") -> T:
        """Await ``fn()`` until it succeeds, a non-retryable error escapes, or the policy gives up.

        Raises:
            The last error when the policy gives up, unchanged but for a
            :class:`~calbridge.errors.RateLimited` with a wait, which gains ``retry_at``.
        """

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            delay = state.upcoming_sleep
            logger.info("%s: %s; retrying in %.2fs", what, type(exc).__name__, delay)
            if self._on_wait is not None and exc is not None:
                self._on_wait(what, delay, exc)

        retrying = tenacity.AsyncRetrying(
            stop=self._stop,
            wait=self._wait,
            retry=tenacity.retry_if_exception_type((TransientError, RateLimited)),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )

        async def attempt() -> T:
            # Await explicitly: tenacity would hand back the coroutine of a plain lambda un-awaited.
            return await fn()

        try:
            return await retrying(attempt)
        except RateLimited as exc:
            raise self._given_up(exc) from None
