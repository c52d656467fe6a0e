"""The settings every account shares: the instance window and how far back a full listing reaches."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

import attrs

from ..errors import ConfigError
from ..model import Window

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB)?\s*$")
_SIZE_UNITS = {None: 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
MiB = 1024 * 1024


def parse_duration(text: object) -> dt.timedelta:
    """``30d`` → 30 days; units s, m, h, d, w."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ValueError(f"expected a duration like 30d, got {text!r}")
    m = _DURATION.match(str(text)) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"bad duration {text!r} (use a number and one of s, m, h, d, w: 30d)")
    return dt.timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def parse_size(text: object) -> int:
    """``64MiB`` → bytes; a bare number is bytes; units B, KiB, MiB, GiB."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ValueError(f"expected a size like 64MiB, got {text!r}")
    m = _SIZE.match(str(text))
    if m is None or int(m.group(1)) <= 0:
        raise ValueError(f"bad size {text!r} (use a positive number of bytes, or with KiB, MiB, GiB: 64MiB)")
    return int(m.group(1)) * _SIZE_UNITS[m.group(2)]


@attrs.frozen(kw_only=True)
class Settings:
    """Window and history, shared by every account."""

    window_past: dt.timedelta = dt.timedelta(days=30)
    window_future: dt.timedelta = dt.timedelta(days=365)
    history: dt.timedelta | None = None
    # Expansion (and Graph's calendarView range) reaches this far past the window's end, so a day's
    # move costs nothing until a series' slack is used up (docs/design.md, "The engine").
    slack: dt.timedelta = dt.timedelta(days=30)
    # Bounds a hostile or broken server cannot push past (the ``limits`` section, README).
    round_pages: int = 10_000  # pages per round, counted in the saved state across runs
    round_deadline: dt.timedelta = dt.timedelta(hours=2)  # one run of one round
    body_bytes: int = 64 * MiB  # one response body, after decompression
    token_bytes: int = 16 * 1024  # a page token or link (a page's cursor as stored)

    def window(self, now: dt.datetime) -> Window:
        """The instance window around ``now``, at whole UTC days so it moves once a day."""
        day = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return Window(start=day - self.window_past, end=day + self.window_future + dt.timedelta(days=1))

    def history_floor(self, now: dt.datetime) -> dt.datetime | None:
        return None if self.history is None else now - self.history


def _duration(text: str, where: str) -> dt.timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigError(str(exc), where=where) from None


def _size(text: object, where: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise ConfigError(str(exc), where=where) from None


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"expected a positive whole number, got {value!r}", where=where)
    return value


def settings_from_file(
    *, past: str, future: str, history: str | None, slack: str = "30d", limits: Mapping[str, object] | None = None
) -> Settings:
    """The file's ``window``, ``history`` and ``limits`` keys as :class:`Settings`; a bad value names its key."""
    limits = limits or {}
    unknown = sorted(set(limits) - {"round_pages", "round_deadline", "body_bytes", "token_bytes"})
    if unknown:
        raise ConfigError("unknown key", where=f"limits.{unknown[0]}")
    default = Settings()
    return Settings(
        window_past=_duration(past, "window.past"),
        window_future=_duration(future, "window.future"),
        history=None if history is None else _duration(history, "history"),
        slack=_duration(slack, "window.slack"),
        round_pages=_count(limits["round_pages"], "limits.round_pages")
        if "round_pages" in limits
        else default.round_pages,
        round_deadline=_duration(limits["round_deadline"], "limits.round_deadline")  # type: ignore[arg-type]
        if "round_deadline" in limits
        else default.round_deadline,
        body_bytes=_size(limits["body_bytes"], "limits.body_bytes") if "body_bytes" in limits else default.body_bytes,
        token_bytes=_size(limits["token_bytes"], "limits.token_bytes")
        if "token_bytes" in limits
        else default.token_bytes,
    )
