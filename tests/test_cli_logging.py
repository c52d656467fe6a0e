"""`sync -v`: one log line per HTTP request (method, path, allow-listed query key names, status,
ms) for every provider, one per committed page, and never a token, cursor or link value; the
progress line keeps moving during expansion, in the summary's words."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from calbridge._run import CalendarResult
from calbridge.cli._output import Progress
from calbridge.testing.kit import EmulatorPool

from .stateful.handles import HANDLES

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
REQUEST = re.compile(
    r"^DEBUG calbridge\.http: (GET|POST) (/\S*)(?: \?(\S*?)(?:&?\((\d+) more\))?)? (\d{3}|failed: \w+) \d+ms$"
)
PATHS = {"google": "/calendar/v3/calendars/", "graph": "/calendarView/delta", "feishu": "/open-apis/calendar/v4/"}


def strings(value: Any) -> list[str]:
    """Every string inside a JSON-like value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def test_sync_verbose_logs_each_request_and_page_and_no_secret(
    calbridge_emulators: EmulatorPool, tmp_path: Path
) -> None:
    accounts = []
    for provider in PATHS:
        handle = HANDLES[provider](calbridge_emulators.serve(provider))
        handle.reset()
        for i in range(handle.page_size * 2 + 1):  # several pages: page tokens, skip tokens
            start = NOW + dt.timedelta(hours=i)
            handle.create_single(f"E{i:03d}", start, start + dt.timedelta(minutes=30))
        accounts.append(handle.account(f"v-{provider}"))
    config = tmp_path / "calbridge.yaml"
    config.write_text(yaml.safe_dump({"store": "sqlite:///m.db", "window": {"past": "30d", "future": "90d"},
                                      "accounts": accounts}))  # fmt: skip
    env = {**os.environ, "CALBRIDGE_NOW": NOW.strftime("%Y-%m-%dT%H:%M:%SZ")}
    logs = []
    for _ in range(2):  # the second round runs on sync tokens and delta links
        proc = subprocess.run([sys.executable, "-m", "calbridge.cli.main", "-c", str(config), "sync", "-v"],
                              capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        logs.append(proc.stderr)

    for provider in PATHS:
        pages = [line for line in logs[0].splitlines() if f"calbridge.cli._output: v-{provider}/" in line]
        assert pages and "pages," in pages[-1] and "upserted" in pages[-1], logs[0]
    http = [line for text in logs for line in text.splitlines() if "calbridge.http" in line]
    requests = [REQUEST.match(line) for line in http]
    assert all(requests), [line for line in http if not REQUEST.match(line)]
    seen = {m.group(2) for m in requests if m}
    for path in PATHS.values():
        assert any(path in p for p in seen), (path, seen)
    keys = {k for m in requests if m and m.group(3) for k in m.group(3).split("&")}
    assert {"maxResults", "startDateTime", "page_size"} <= keys  # allow-listed names are shown
    assert any(m and m.group(4) for m in requests)  # the others (tokens, links) are only counted
    text = "\n".join(logs)
    assert not [k for k in keys if "oken" in k or "=" in k]  # no token key named, no value at all
    for banned in ("Bearer", "http://", "https://"):
        assert banned not in "\n".join(http), banned

    conn = sqlite3.connect(tmp_path / "m.db")
    cursors = [json.loads(row[0])["cursor"] for row in conn.execute("SELECT state FROM calendar_state")]
    conn.close()
    secrets = [s for a in accounts for k, v in a["auth"].items() if k != "kind" for s in strings(v) if len(s) >= 6]
    secrets += [s for c in cursors for s in strings(c) if len(s) >= 6]
    assert secrets and cursors
    for secret in secrets:
        assert secret not in text, secret


def test_progress_keeps_moving_during_expansion_in_the_summarys_words(caplog: pytest.LogCaptureFixture) -> None:
    result = CalendarResult(account="a", calendar_id="c", pages=2, upserts=5, deletes=1)
    progress = Progress(enabled=True)
    with caplog.at_level(logging.DEBUG, logger="calbridge"), progress:
        progress.hook("a", "page", {"calendar": "c", "result": result})
        result.occurrences = 40
        progress.hook("a", "expand", {"calendar": "c", "result": result, "done": 3, "total": 12})
        assert progress._bar is not None
        shown = [task.description for task in progress._bar.tasks]
    want = "a/c: 2 pages, 5 upserted, 1 deleted, expanding 3/12 series, 40 occurrences refreshed"
    assert shown == [want]
    assert [r.getMessage() for r in caplog.records] == ["a/c: 2 pages, 5 upserted, 1 deleted", want]
