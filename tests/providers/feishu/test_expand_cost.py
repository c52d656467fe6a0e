"""The instance_view switch point docs/design.md states: 12 series with the default 396-day window."""

from __future__ import annotations

import datetime as dt

from calbridge.config import Settings
from calbridge_providers.feishu._expand import instance_calls, view_chunks


def test_instance_view_is_cheaper_from_twelve_series_with_the_default_window() -> None:
    window = Settings().window(dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC))
    assert window.end - window.start == dt.timedelta(days=396)
    chunks = len(view_chunks(window))
    assert chunks == 11 and instance_calls(window, 1) == 1
    assert [n for n in range(1, 20) if chunks < instance_calls(window, n)][0] == 12
