"""Bad values end to end (issue 12, items 4, 5 and 11): the emulators serve items no converter can
read faithfully beside good ones; ``calbridge sync`` keeps the good events, quarantines the bad items,
and reads non-essential junk as the schema's neutral value, counted in ``calbridge status``."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from calbridge.testing.server import ThreadedServer
from calbridge.toolkit import TEXT_LIMIT
from calbridge_providers.feishu.emulator import FeishuEmulator
from calbridge_providers.google.emulator import GoogleEmulator

CAL = "alice@example.com"


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE")}, "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", "calbridge.cli.main", "-c", str(config), *args], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def write_config(tmp_path: Path, account: dict[str, Any]) -> Path:
    doc = {"store": "sqlite:///mirror.db", "window": {"past": "400d", "future": "400d"}, "accounts": [account]}
    path = tmp_path / "calbridge.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def events(config: Path) -> dict[str, dict[str, Any]]:
    proc = cli(config, "events", "--format", "jsonl")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {e["id"]: e for e in map(json.loads, proc.stdout.splitlines())}


def status_row(config: Path) -> dict[str, str]:
    """The one calendar's ``calbridge status`` row, cell by column (cells folded over lines joined)."""
    proc = cli(config, "status")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    (head,) = [line.split("┃")[1:-1] for line in lines if line.count("┃") > 2]
    body = [line.split("│")[1:-1] for line in lines if line.count("│") > 2]
    cells = [" ".join(" ".join(r[i].split()) for r in body).strip() for i in range(len(head))]
    return {" ".join(h.split()): c for h, c in zip(head, cells, strict=True)}


def timed(start: str, end: str, zone: str | None = "Europe/Zurich") -> dict[str, Any]:
    return {"start": {"dateTime": start, **({"timeZone": zone} if zone else {})},
            "end": {"dateTime": end, **({"timeZone": zone} if zone else {})}}  # fmt: skip


@pytest.fixture
def google(tmp_path: Path) -> Iterator[tuple[GoogleEmulator, Path]]:
    emu = GoogleEmulator()
    emu.state.add_calendar(CAL, summary="Alice", time_zone="Europe/Zurich", primary=True)
    with ThreadedServer(emu.make_app()) as srv:
        yield emu, write_config(tmp_path, emu.account_config(name="acme-google", base_url=srv.url, ca_file=None))


def test_google_calendar_with_year_1_and_9999_items_keeps_its_good_events(
    google: tuple[GoogleEmulator, Path],
) -> None:
    emu, config = google
    put = emu.state.put_event
    for i in range(3):
        put(CAL, {"id": f"good{i}", "summary": f"good {i}", **timed(f"2026-03-0{i + 2}T09:00:00+01:00",
                                                                  f"2026-03-0{i + 2}T10:00:00+01:00")})  # fmt: skip
    # Each has no UTC datetime: today's main raised OverflowError outside the per-item quarantine.
    put(CAL, {"id": "year1", **timed("0001-01-01T00:00:00+05:00", "0001-01-01T01:00:00+05:00")}, raw=True)
    put(CAL, {"id": "year9999", **timed("9999-12-31T23:00:00-05:00", "9999-12-31T23:30:00-05:00")}, raw=True)
    for _ in range(2):  # the full listing, then an incremental round: neither fails
        proc = cli(config, "sync")
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(events(config)) == ["good0", "good1", "good2"]
    row = status_row(config)
    assert (row["quarantined"], row["events"], row["last error"]) == ("2", "3", "")


def test_google_bad_essential_values_quarantine_and_junk_is_coerced_and_counted(
    google: tuple[GoogleEmulator, Path],
) -> None:
    emu, config = google
    put = emu.state.put_event
    good = timed("2026-03-02T09:00:00+01:00", "2026-03-02T10:00:00+01:00")
    put(CAL, {"id": "plain", "summary": "plain", **good})
    put(CAL, {"id": "junk", "summary": "junk", "visibility": "galactic", "transparency": "translucent",
              "attendees": [{"email": "bob@example.com", "responseStatus": "maybe-later"}], **good})  # fmt: skip
    put(CAL, {"id": "long", "summary": "é" * TEXT_LIMIT, **good})  # 2 MiB of UTF-8: cut to 1 MiB
    # A floating time in a zone calbridge does not know: reading it elsewhere would move the event.
    put(CAL, {"id": "mars", **timed("2026-03-02T09:00:00", "2026-03-02T10:00:00", "Mars/Olympus_Mons")}, raw=True)
    put(CAL, {"id": "passwd", **timed("2026-03-02T09:00:00", "2026-03-02T10:00:00", "../../etc/passwd")}, raw=True)
    put(CAL, {"id": "setpos", "recurrence": ["RRULE:FREQ=MONTHLY;BYDAY=MO;BYSETPOS=0,999"], **good})
    put(CAL, {"id": "status", "status": "maybe", **good}, raw=True)
    proc = cli(config, "-v", "sync")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 coerced" in proc.stdout + proc.stderr
    for field in ("visibility", "show_as", "response", "title"):  # logged once per field and round
        assert (proc.stdout + proc.stderr).count(f"unreadable {field} values") == 1
    held = events(config)
    assert sorted(held) == ["junk", "long", "plain"]
    assert held["junk"]["visibility"] == "default" and held["junk"]["show_as"] == "unknown"
    assert held["junk"]["attendees"][0]["response"] == "none"
    assert len(held["long"]["title"].encode()) == TEXT_LIMIT and held["long"]["title"] == "é" * (TEXT_LIMIT // 2)
    row = status_row(config)
    assert (row["coerced"], row["quarantined"]) == ("4 (response 1, show_as 1, title 1, visibility 1)", "4")
    proc = cli(config, "sync")  # a quiet round: nothing new read, nothing new counted
    assert proc.returncode == 0 and "coerced" not in proc.stdout
    assert status_row(config)["coerced"] == "4 (response 1, show_as 1, title 1, visibility 1)"


@pytest.fixture
def feishu(tmp_path: Path) -> Iterator[tuple[FeishuEmulator, Path]]:
    emu = FeishuEmulator()
    with ThreadedServer(emu.make_app()) as srv:
        yield emu, write_config(tmp_path, emu.account_config(name="acme-feishu", base_url=srv.url, ca_file=None))


def test_feishu_invalid_bysetpos_and_junk_status_quarantine_and_sync_keeps_working(
    feishu: tuple[FeishuEmulator, Path],
) -> None:
    emu, config = feishu
    start = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    hour = dt.timedelta(hours=1)
    emu.create_event(summary="weekly", start=start, end=start + hour, recurrence="FREQ=WEEKLY;BYDAY=MO")
    # Expanding this one failed in the emulator on every sync: it is never stored, so never expanded.
    emu.create_event(summary="bad", start=start, end=start + hour, recurrence="FREQ=MONTHLY;BYDAY=MO;BYSETPOS=0,999")
    emu.create_event(summary="odd", start=start, end=start + hour, status="postponed")
    emu.create_event(summary="junk", start=start, end=start + hour, visibility="galactic",
                           free_busy_status="translucent")  # fmt: skip
    for _ in range(2):
        proc = cli(config, "sync")
        assert proc.returncode == 0, proc.stdout + proc.stderr
    held = events(config)
    assert sorted(e["title"] for e in held.values()) == ["junk", "weekly"]
    junk = next(e for e in held.values() if e["title"] == "junk")
    assert (junk["visibility"], junk["show_as"]) == ("default", "unknown")
    proc = cli(config, "events", "--expand", "--from", "2026-03-01", "--to", "2026-03-31", "--format", "jsonl")
    assert [json.loads(line)["title"] for line in proc.stdout.splitlines()].count("weekly") == 5
    row = status_row(config)
    assert (row["coerced"], row["quarantined"]) == ("2 (show_as 1, visibility 1)", "2")  # listed once: counted once
