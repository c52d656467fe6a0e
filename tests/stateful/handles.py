"""Kit handles (:class:`calbridge.testing.kit.SeriesHandle`) over the built-in emulators' Python APIs.

Each :meth:`reset` moves to a fresh calendar of the running emulator, so one server serves many
examples. Events are timed and in UTC; a series is ``FREQ=DAILY|WEEKLY;COUNT=n`` in each provider's
native form (Google recurrence lines, Graph patternedRecurrence, Feishu bare RRULE).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from calbridge.testing.kit import BaseHandle, Served

UTC = dt.UTC
_calendars = itertools.count(1)


def _g(value: dt.datetime) -> dict[str, str]:
    return {"dateTime": value.astimezone(UTC).isoformat(), "timeZone": "UTC"}


class GoogleHandle(BaseHandle):
    plugin_name = "google"
    page_size = 3
    api_path = "/calendar/v3"

    def __init__(self, served: Served) -> None:
        super().__init__(served)
        self.faults = frozenset({"rate_limit", "server_error", "drop"})

    @staticmethod
    def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
        """The google provider always asks for 2,500 a page; ask for 3 (restored after the test)."""
        from calbridge_providers.google import _provider

        monkeypatch.setattr(_provider, "PAGE_SIZE", str(GoogleHandle.page_size))

    @property
    def cal(self) -> str:
        assert self.calendar_id is not None, "reset() first"
        return self.calendar_id

    def reset(self) -> None:
        super().reset()
        state = self.emulator.state
        self.calendar_id = f"cal{next(_calendars)}@example.com"
        state.add_calendar(self.calendar_id, time_zone="UTC")
        state.clear_log()

    def create_single(self, title: str, start: dt.datetime, end: dt.datetime) -> str:
        event = self.emulator.state.put_event(self.cal, {"summary": title, "start": _g(start), "end": _g(end)})
        return str(event["id"])

    def update(self, event_id: str, *, title: str | None = None, start: dt.datetime | None = None,
               end: dt.datetime | None = None) -> None:  # fmt: skip
        fields: dict[str, Any] = {}
        if title is not None:
            fields["summary"] = title
        if start is not None:
            fields["start"] = _g(start)
        if end is not None:
            fields["end"] = _g(end)
        self.emulator.state.update_event(self.cal, event_id, **fields)

    def delete(self, event_id: str) -> None:
        self.emulator.state.delete_event(self.cal, event_id)

    def expire_cursor(self) -> None:
        self.emulator.state.expire_sync_tokens(self.cal)

    def inject(self, fault: str) -> None:
        if fault == "rate_limit":
            self.emulator.state.inject(429, retry_after=0)
        elif fault == "server_error":
            self.emulator.state.inject(503)
        else:
            super().inject(fault)

    def clear_faults(self) -> None:
        super().clear_faults()
        with self.emulator.state.lock:
            self.emulator.state.faults.clear()

    def create_series(self, title: str, start: dt.datetime, end: dt.datetime, *, freq: str, count: int) -> str:
        payload = {"summary": title, "start": _g(start), "end": _g(end),
                   "recurrence": [f"RRULE:FREQ={freq};COUNT={count}"]}  # fmt: skip
        return str(self.emulator.state.put_event(self.cal, payload)["id"])

    def rename_series(self, series_id: str, title: str) -> None:
        self.emulator.state.update_event(self.cal, series_id, summary=title)

    def delete_series(self, series_id: str) -> None:
        self.emulator.state.delete_event(self.cal, series_id)

    def cancel_occurrence(self, series_id: str, original_start: dt.datetime) -> None:
        self.emulator.state.cancel_occurrence(self.cal, series_id, _g(original_start))

    def move_occurrence(self, series_id: str, original_start: dt.datetime, start: dt.datetime,
                        end: dt.datetime) -> None:  # fmt: skip
        self.emulator.state.move_occurrence(self.cal, series_id, _g(original_start), start=_g(start), end=_g(end))


class GraphHandle(BaseHandle):
    plugin_name = "graph"
    page_size = 2
    options: ClassVar[Mapping[str, Any]] = {"page_size": 2}
    api_path = "/v1.0/"

    def __init__(self, served: Served) -> None:
        super().__init__(served)
        self.faults = frozenset({"rate_limit", "server_error", "drop"})

    def reset(self) -> None:
        super().reset()
        emu = self.emulator
        self.calendar_id = emu.add_calendar(emu.default_user, f"Stateful {next(_calendars)}")
        emu.requests.clear()

    def create_single(self, title: str, start: dt.datetime, end: dt.datetime) -> str:
        return str(self.emulator.create_event(title, start, end, time_zone="UTC", calendar=self.calendar_id))

    def update(self, event_id: str, *, title: str | None = None, start: dt.datetime | None = None,
               end: dt.datetime | None = None) -> None:  # fmt: skip
        fields: dict[str, Any] = {}
        if title is not None:
            fields["subject"] = title
        if start is not None:
            fields["start"] = start
        if end is not None:
            fields["end"] = end
        self.emulator.update_event(event_id, **fields)

    def delete(self, event_id: str) -> None:
        self.emulator.delete_event(event_id)

    def expire_cursor(self) -> None:
        self.emulator.expire_delta_tokens()

    def inject(self, fault: str) -> None:
        if fault == "rate_limit":
            self.emulator.fail_next(429, retry_after=0)
        elif fault == "server_error":
            self.emulator.fail_next(503)
        else:
            super().inject(fault)

    def clear_faults(self) -> None:
        super().clear_faults()
        with self.emulator._lock:  # the emulator has no public "clear": tests own it
            self.emulator._failures.clear()

    def create_series(self, title: str, start: dt.datetime, end: dt.datetime, *, freq: str, count: int) -> str:
        pattern: dict[str, Any] = {"type": "daily"}
        if freq == "WEEKLY":
            pattern = {"type": "weekly", "daysOfWeek": [start.astimezone(UTC).strftime("%A").lower()]}
        recurrence = {"pattern": pattern, "range": {"type": "numbered", "numberOfOccurrences": count}}
        return str(self.emulator.create_event(title, start, end, time_zone="UTC", calendar=self.calendar_id,
                                              recurrence=recurrence))  # fmt: skip

    def rename_series(self, series_id: str, title: str) -> None:
        self.emulator.update_event(series_id, subject=title)

    def delete_series(self, series_id: str) -> None:
        self.emulator.delete_event(series_id)

    def cancel_occurrence(self, series_id: str, original_start: dt.datetime) -> None:
        self.emulator.cancel_occurrence(series_id, original_start)

    def move_occurrence(self, series_id: str, original_start: dt.datetime, start: dt.datetime,
                        end: dt.datetime) -> None:  # fmt: skip
        self.emulator.move_occurrence(series_id, original_start, start, end)


class FeishuHandle(BaseHandle):
    plugin_name = "feishu"
    page_size = 50  # Feishu's minimum
    options: ClassVar[Mapping[str, Any]] = {"page_size": 50}
    api_path = "/open-apis/calendar/"

    def __init__(self, served: Served) -> None:
        super().__init__(served)
        self.faults = frozenset({"rate_limit", "server_error", "drop"})

    def reset(self) -> None:
        super().reset()
        emu = self.emulator
        self.calendar_id = emu.add_calendar(f"feishu.cn_stateful{next(_calendars)}@group.calendar.feishu.cn")
        with emu.lock:
            emu.empty_pages = 0
        emu.clear_log()

    def create_single(self, title: str, start: dt.datetime, end: dt.datetime) -> str:
        return str(self.emulator.create_event(summary=title, start=start, end=end, timezone="UTC",
                                              calendar_id=self.calendar_id))  # fmt: skip

    def update(self, event_id: str, *, title: str | None = None, start: dt.datetime | None = None,
               end: dt.datetime | None = None) -> None:  # fmt: skip
        fields: dict[str, Any] = {}
        if title is not None:
            fields["summary"] = title
        if start is not None:
            fields["start"] = start
        if end is not None:
            fields["end"] = end
        self.emulator.update_event(event_id, calendar=self.calendar_id, **fields)

    def delete(self, event_id: str) -> None:
        self.emulator.delete_event(event_id, calendar=self.calendar_id)

    def expire_cursor(self) -> None:
        self.emulator.expire_sync_tokens()

    def inject(self, fault: str) -> None:
        if fault == "rate_limit":
            self.emulator.rate_limit(reset=0, path=self.api_path)
        elif fault == "server_error":
            self.emulator.inject(503, 190003, path=self.api_path, msg="internal service error")
        else:
            super().inject(fault)

    def clear_faults(self) -> None:
        super().clear_faults()
        with self.emulator.lock:
            self.emulator.faults.clear()

    def create_series(self, title: str, start: dt.datetime, end: dt.datetime, *, freq: str, count: int) -> str:
        return str(self.emulator.create_event(summary=title, start=start, end=end, timezone="UTC",
                                              recurrence=f"FREQ={freq};COUNT={count}",
                                              calendar_id=self.calendar_id))  # fmt: skip

    def rename_series(self, series_id: str, title: str) -> None:
        self.emulator.update_event(series_id, calendar=self.calendar_id, summary=title)

    def delete_series(self, series_id: str) -> None:
        self.emulator.delete_event(series_id, calendar=self.calendar_id)

    def cancel_occurrence(self, series_id: str, original_start: dt.datetime) -> None:
        self.emulator.cancel_occurrence(series_id, original_start, calendar=self.calendar_id)

    def move_occurrence(self, series_id: str, original_start: dt.datetime, start: dt.datetime,
                        end: dt.datetime) -> None:  # fmt: skip
        self.emulator.move_occurrence(series_id, original_start, start, end, calendar=self.calendar_id)


HANDLES: dict[str, type[BaseHandle]] = {"google": GoogleHandle, "graph": GraphHandle, "feishu": FeishuHandle}
