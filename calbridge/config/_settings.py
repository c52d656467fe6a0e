"""The settings every account shares: the instance window and how far back a full listing reaches."""

from __future__ import annotations

import datetime as dt
import re

import attrs

from ..errors import ConfigError
from ..model import Window

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: object) -> dt.timedelta:
    """``30d`` → 30 days; units s, m, h, d, w."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ValueError(f"expected a duration like 30d, got {text!r}")
    m = _DURATION.match(str(text)) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"bad duration {text!r} (use a number and one of s, m, h, d, w: 30d)")
    return dt.timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


@attrs.frozen(kw_only=True)
class Settings:
    """Window and history, shared by every account."""

    window_past: dt.timedelta = dt.timedelta(days=30)
    window_future: dt.timedelta = dt.timedelta(days=365)
    history: dt.timedelta | None = None
    # Expansion (and Graph's calendarView range) reaches this far past the window's end, so a day's
    # move costs nothing until a series' slack is used up (docs/design.md, "The engine").
    slack: dt.timedelta = dt.timedelta(days=30)

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


def settings_from_file(*, past: str, future: str, history: str | None, slack: str = "30d") -> Settings:
    """The file's ``window`` and ``history`` keys as :class:`Settings`; a bad duration names its key."""
    return Settings(
        window_past=_duration(past, "window.past"),
        window_future=_duration(future, "window.future"),
        history=None if history is None else _duration(history, "history"),
        slack=_duration(slack, "window.slack"),
    )
