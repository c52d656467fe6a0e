"""Kit handles (:class:`calbridge.testing.kit.SeriesHandle`) over the built-in emulators: the kit's
:class:`SeriesBaseHandle` drives each through the shared emulator API; a handle only says how small
its pages are and clears the emulator's request log on :meth:`reset`.

Each :meth:`reset` moves to a fresh calendar of the running emulator, so one server serves many
examples. Events are timed and in UTC; a series is ``FREQ=DAILY|WEEKLY;COUNT=n`` in each provider's
native form (Google recurrence lines, Graph patternedRecurrence, Feishu bare RRULE).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from calbridge.testing.kit import SeriesBaseHandle


class GoogleHandle(SeriesBaseHandle):
    plugin_name = "google"
    page_size = 3
    api_path = "/calendar/v3"

    @staticmethod
    def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
        """The google provider always asks for 2,500 a page; ask for 3 (restored after the test)."""
        from calbridge_providers.google import _provider

        monkeypatch.setattr(_provider, "PAGE_SIZE", str(GoogleHandle.page_size))

    def reset(self) -> None:
        super().reset()
        self.emulator.state.clear_log()


class GraphHandle(SeriesBaseHandle):
    plugin_name = "graph"
    page_size = 2
    options: ClassVar[Mapping[str, Any]] = {"page_size": 2}
    api_path = "/v1.0/"

    def reset(self) -> None:
        super().reset()
        self.emulator.requests.clear()


class FeishuHandle(SeriesBaseHandle):
    plugin_name = "feishu"
    page_size = 50  # Feishu's minimum
    options: ClassVar[Mapping[str, Any]] = {"page_size": 50}
    api_path = "/open-apis/calendar/"

    def reset(self) -> None:
        super().reset()
        with self.emulator.lock:
            self.emulator.empty_pages = 0
        self.emulator.clear_log()


HANDLES: dict[str, type[SeriesBaseHandle]] = {"google": GoogleHandle, "graph": GraphHandle, "feishu": FeishuHandle}
