"""Retry policy for provider calls, built on tenacity.

Transient failures (5xx, dropped connections, timeouts) get capped, jittered exponential backoff;
a :class:`~calbridge.errors.RateLimited` with a provider wait (Retry-After, Feishu's
``x-ogw-ratelimit-reset``) waits exactly that long first. Auth, permission and cursor errors are
never retried. Providers wrap each HTTP request in :meth:`Retrier.call`.
"""

from __future__ import annotations

import asyncio
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
    ) -> None:
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._on_wait = on_wait
        self._backoff = tenacity.wait_random_exponential(
            multiplier=self.policy.base_backoff, max=self.policy.max_backoff
        )

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            # The provider's own wait wins over our backoff: asking earlier only earns another 429.
            return min(max(exc.retry_after, 0.0), self.policy.max_retry_after)
        return float(self._backoff(state))

    async def call(self, fn: Callable[[], Awaitable[T]], *, what: str = "request") -> T:
        """Await ``fn()`` until it succeeds, a non-retryable error escapes, or the policy gives up.

        Raises:
            The last error when the policy gives up, unchanged.
        """

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            delay = state.upcoming_sleep
            logger.info("%s: %s; retrying in %.2fs", what, type(exc).__name__, delay)
            if self._on_wait is not None and exc is not None:
                self._on_wait(what, delay, exc)

        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self.policy.attempts)
            | tenacity.stop_after_delay(self.policy.total_seconds),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type((TransientError, RateLimited)),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )

        async def attempt() -> T:
            # Await explicitly: tenacity would hand back the coroutine of a plain lambda un-awaited.
            return await fn()

        return await retrying(attempt)
