"""The handle calbridge's plugin kit drives: the emulator's Python API in the kit's terms."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from typing import Any, ClassVar

from calbridge.testing.kit import BaseHandle, Served

from .emulator import ExampleEmulator

_calendars = itertools.count(1)


class ExampleHandle(BaseHandle):
    """An :class:`~calbridge.testing.kit.EmulatorHandle` over :class:`ExampleEmulator`."""

    plugin_name = "example"
    page_size = 2
    # Small pages, so the kit exercises paging and resuming mid-round.
    options: ClassVar[Mapping[str, Any]] = {"page_size": 2}

    def __init__(self, served: Served) -> None:
        super().__init__(served)
        self.faults = frozenset({"rate_limit", "server_error", "drop"})

    @property
    def emu(self) -> ExampleEmulator:
        assert isinstance(self.served.emulator, ExampleEmulator)
        return self.served.emulator

    @property
    def cal(self) -> str:
        assert self.calendar_id is not None, "reset() first"
        return self.calendar_id

    def reset(self) -> None:
        super().reset()  # drops no connection any more
        self.calendar_id = self.emu.new_calendar(f"kit-{next(_calendars)}")

    def create_single(self, title: str, start: dt.datetime, end: dt.datetime) -> str:
        return self.emu.add_event(title, start, end, calendar=self.cal)

    def update(self, event_id: str, *, title: str | None = None, start: dt.datetime | None = None,
               end: dt.datetime | None = None) -> None:  # fmt: skip
        self.emu.update_event(event_id, calendar=self.cal, title=title, start=start, end=end)

    def delete(self, event_id: str) -> None:
        self.emu.delete_event(event_id, calendar=self.cal)

    def expire_cursor(self) -> None:
        self.emu.expire_cursors()

    def inject(self, fault: str) -> None:
        if fault == "rate_limit":
            self.emu.fail_next(429, retry_after=0)
        elif fault == "server_error":
            self.emu.fail_next(503)
        else:
            super().inject(fault)  # "drop": the kit aborts the connection at the transport

    def clear_faults(self) -> None:
        super().clear_faults()
        self.emu.clear_faults()
