"""Options every provider reads the same way from an account's ``options`` mapping."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError

__all__ = ["DEFAULT_REQUEST_TIMEOUT", "request_timeout"]

logger = logging.getLogger("calbridge.toolkit")

DEFAULT_REQUEST_TIMEOUT = 60.0
_ALIASES = ("timeout",)  # older names of request_timeout, still read (deprecated)


def request_timeout(
    options: Mapping[str, Any], *, provider: str, account: str | None = None, default: float = DEFAULT_REQUEST_TIMEOUT
) -> float:
    """``options.request_timeout``: the deadline of one HTTP attempt, in seconds (``default`` when unset).

    The older name ``timeout`` still works as a deprecated alias and logs a warning (a provider reads
    its options once, when it is built, so once per account and run); ``request_timeout`` wins when
    both are given.

    Raises:
        ConfigError: not a positive number (``where`` names the key).
    """
    key = "request_timeout"
    if key not in options:
        for alias in _ALIASES:
            if alias in options:
                who = f"{provider} account {account}" if account else provider
                logger.warning("%s: options.%s is deprecated; use options.request_timeout", who, alias)
                key = alias
                break
        else:
            return default
    value = options[key]
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"expected a positive number of seconds, got {value!r}", where=f"options.{key}")
    return seconds
