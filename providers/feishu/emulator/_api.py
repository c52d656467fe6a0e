"""The Feishu emulator's side of :class:`calbridge.testing.emulator_api.SeriesEmulatorAPI` beyond
the change methods :class:`FeishuState` already has: calendars, events, cursors, faults, seed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from calbridge.testing.emulator_api import Answered, apply_seed, seed_plan

from ._state import FeishuState, _last_day

Instant = dt.datetime | dt.date
API_PATH = "/open-apis/calendar/"  # faults never hit the token endpoints


class FeishuAPI(FeishuState):
    """The shared verbs over :class:`FeishuState` (``FeishuEmulator`` derives from this)."""

    def new_calendar(self, name: str) -> str:
        """A new shared calendar ``feishu.cn_{name}@group.calendar.feishu.cn`` (made unique)."""
        with self.lock:
            cid, n = f"feishu.cn_{name}@group.calendar.feishu.cn", 1
            while cid in self.calendars:
                n += 1
                cid = f"feishu.cn_{name}-{n}@group.calendar.feishu.cn"
            return self.add_calendar(cid, summary=name)

    def add_event(
        self, title: str, start: Instant, end: Instant, *, calendar: str | None = None, rrule: str | None = None,
        time_zone: str = "UTC",
    ) -> str:  # fmt: skip
        return self.create_event(summary=title, start=start, end=_last_day(end), timezone=time_zone,
                                 recurrence=rrule or "", calendar_id=calendar)  # fmt: skip

    def expire_cursors(self) -> None:
        self.expire_sync_tokens()

    def fail_next(self, status: int, *, count: int = 1, retry_after: float | None = None) -> None:
        if status == 429:
            self.rate_limit(reset=retry_after or 0, path=API_PATH, count=count)
            return
        code, msg = (190003, "internal service error") if status >= 500 else (190002, "invalid parameters")
        self.inject(status, code, path=API_PATH, msg=msg, count=count)

    def request_paths(self) -> list[str]:
        """The API paths answered so far (``calbridge.testing.emulator_api.RequestLog``)."""
        return [r["path"] for r in self.requests(API_PATH)]

    def answered(self) -> list[Answered]:
        """Every request answered so far, the token endpoints included (``RequestLog``)."""
        return [Answered(method=r["method"], path=r["path"], query=r["query"], identity=API_PATH not in r["path"])
                for r in self.requests()]  # fmt: skip

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def seed(self, n_events: int, n_series: int = 0, *, calendar: str | None = None) -> Sequence[str]:
        return apply_seed(self, seed_plan(n_events, n_series), calendar=calendar)
