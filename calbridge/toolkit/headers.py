"""Rate-limit headers as seconds to wait: ``Retry-After`` and reset counters (Feishu's
``x-ogw-ratelimit-reset``). Error tables put the result in :class:`~calbridge.errors.RateLimited`,
whose ``retry_after`` the retry policy waits exactly."""

from __future__ import annotations

import datetime as dt
import email.utils
import math
from collections.abc import Callable

__all__ = ["reset_seconds", "retry_after_seconds"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def reset_seconds(value: str | None) -> float | None:
    """A header holding seconds to wait (``x-ogw-ratelimit-reset: 3``); None when absent or not a number.

    Negative values count as 0; ``nan`` and ``inf`` as absent.
    """
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def retry_after_seconds(value: str | None, *, now: Callable[[], dt.datetime] = _now) -> float | None:
    """``Retry-After`` in seconds: a (possibly fractional) number, or an HTTP date (RFC 9110), measured
    from ``now()``. None when absent or unreadable; a date in the past is 0.
    """
    seconds = reset_seconds(value)
    if seconds is not None or not value:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=dt.UTC)
    return max((when - now()).total_seconds(), 0.0)
