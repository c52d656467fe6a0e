"""The Graph emulator's side of :class:`calbridge.testing.emulator_api.SeriesEmulatorAPI` beyond
what :class:`ServiceMixin` already offers: calendars, events from a bare RRULE, cursors, faults, seed."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from calbridge.testing.emulator_api import Answered, apply_seed, seed_plan

from ._model import resolve_zone

if TYPE_CHECKING:
    from . import LoggedRequest

Instant = dt.datetime | dt.date
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def patterned_from_rrule(rrule: str, start: Instant, time_zone: str) -> dict[str, Any]:
    """The ``patternedRecurrence`` of a bare ``FREQ=DAILY|WEEKLY[;INTERVAL=n][;COUNT=n]`` rule (a weekly
    rule without BYDAY repeats on the start's weekday, as RFC 5545 says)."""
    from calbridge.testing.scenario import EventSpec

    from ._scenario import patterned

    parts = dict(p.split("=", 1) for p in rrule.split(";"))
    if parts.get("FREQ") == "WEEKLY" and "BYDAY" not in parts:
        local = start.astimezone(resolve_zone(time_zone)) if isinstance(start, dt.datetime) else start
        rrule += ";BYDAY=" + _DAYS[local.weekday()][:2].upper()
    if isinstance(start, dt.datetime):
        naive = start.astimezone(resolve_zone(time_zone)).replace(tzinfo=None)
        spec = EventSpec(key="api", title="", start=naive, end=naive, zone=time_zone, rrule=rrule)
    else:
        spec = EventSpec(key="api", title="", start=start, end=start, rrule=rrule)
    return patterned(spec)


class GraphAPI:
    """Mixin for :class:`GraphEmulator`."""

    _lock: threading.RLock
    requests: list[LoggedRequest]
    _failures: list[tuple[int, str, float | None]]
    default_user: str

    if TYPE_CHECKING:  # provided by GraphEmulator and ServiceMixin

        def add_calendar(self, user: str, name: str) -> str: ...

        def create_event(self, subject: str, start: Instant, end: Instant, **kw: Any) -> str: ...

        def expire_delta_tokens(self, *, status: int = 410) -> None: ...

    def new_calendar(self, name: str) -> str:
        """A new calendar in the default user's mailbox (Graph assigns its id)."""
        return self.add_calendar(self.default_user, name)

    def add_event(
        self, title: str, start: Instant, end: Instant, *, calendar: str | None = None, rrule: str | None = None,
        time_zone: str = "UTC",
    ) -> str:  # fmt: skip
        recurrence = None if rrule is None else patterned_from_rrule(rrule, start, time_zone)
        return self.create_event(title, start, end, time_zone=time_zone, calendar=calendar or "primary",
                                 recurrence=recurrence)  # fmt: skip

    def expire_cursors(self) -> None:
        self.expire_delta_tokens()

    def request_paths(self) -> list[str]:
        """The API paths answered so far (``calbridge.testing.emulator_api.RequestLog``)."""
        with self._lock:
            return [r.path for r in self.requests if r.path.startswith("/v1.0/")]

    def answered(self) -> list[Answered]:
        """Every request answered so far, the authority's discovery and token endpoints included
        (``RequestLog``)."""
        with self._lock:
            logged = list(self.requests)
        return [Answered(method=r.method, path=r.path, query=dict(parse_qsl(urlsplit(r.url).query)),
                         identity=not r.path.startswith("/v1.0/")) for r in logged]  # fmt: skip

    def clear_faults(self) -> None:
        with self._lock:
            self._failures.clear()

    def seed(self, n_events: int, n_series: int = 0, *, calendar: str | None = None) -> Sequence[str]:
        api: Any = self  # the whole API is GraphEmulator's (this mixin and ServiceMixin)
        return apply_seed(api, seed_plan(n_events, n_series), calendar=calendar)
