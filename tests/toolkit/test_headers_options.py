"""Rate-limit header parsing and the request_timeout option (with its deprecated alias)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from calbridge.errors import ConfigError
from calbridge.toolkit import request_timeout, reset_seconds, retry_after_seconds

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_retry_after_as_seconds_or_an_http_date() -> None:
    assert retry_after_seconds("3") == 3.0 and retry_after_seconds("0.25") == 0.25
    assert retry_after_seconds("-4") == 0.0
    assert retry_after_seconds("Sun, 01 Mar 2026 12:00:30 GMT", now=lambda: NOW) == 30.0
    assert retry_after_seconds("Sun, 01 Mar 2026 11:00:00 GMT", now=lambda: NOW) == 0.0
    assert retry_after_seconds("Sun, 01 Mar 2026 12:01:00 -0000", now=lambda: NOW) == 60.0
    for bad in (None, "", "soon", "nan", "inf"):
        assert retry_after_seconds(bad) is None, bad


def test_reset_seconds_reads_numbers_only() -> None:
    assert reset_seconds("7") == 7.0 and reset_seconds("1.5") == 1.5 and reset_seconds("-1") == 0.0
    assert reset_seconds(None) is None and reset_seconds("Sun, 01 Mar 2026 12:00:30 GMT") is None


def test_request_timeout_default_value_and_deprecated_alias(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="calbridge.toolkit")
    assert request_timeout({}, provider="p") == 60.0
    assert request_timeout({}, provider="p", default=30) == 30.0
    assert request_timeout({"request_timeout": 12}, provider="p") == 12.0
    assert caplog.records == []
    assert request_timeout({"timeout": "9.5"}, provider="p", account="acme") == 9.5
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and "options.timeout is deprecated" in record.getMessage()
    assert "acme" in record.getMessage()
    caplog.clear()
    assert request_timeout({"timeout": 9, "request_timeout": 3}, provider="p") == 3.0 and caplog.records == []


@pytest.mark.parametrize("bad", [0, -1, "x", None, True, float("inf")])
def test_request_timeout_must_be_a_positive_number(bad: object) -> None:
    with pytest.raises(ConfigError) as info:
        request_timeout({"request_timeout": bad}, provider="p")
    assert info.value.where == "options.request_timeout"
    with pytest.raises(ConfigError) as info:
        request_timeout({"timeout": bad}, provider="p")
    assert info.value.where == "options.timeout"
