"""The rough edges a new user hit, through the real `calbridge` entry point: the exact default
window of `events --expand`, a closed pipe, a config without accounts, `status` of unfinished or
held rounds, and what the table shows (widths, zones, unknown calendars, `--to` documented)."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import textwrap
from pathlib import Path

import pytest

from calbridge.model import Kind

from .conftest import NOW, FakeEnv, fake_event

CLI = [sys.executable, "-m", "calbridge.cli.main"]
STAMP = "%Y-%m-%dT%H:%M:%SZ"


def run(env: FakeEnv, *args: str, now: dt.datetime = NOW, **extra: str) -> subprocess.CompletedProcess[str]:
    """The CLI on ``env``'s config with "now" pinned to ``now`` (and extra environment)."""
    environ = {**env.env(), "CALBRIDGE_NOW": now.strftime(STAMP), **extra}
    return subprocess.run(
        [*CLI, "-c", str(env.config), *args], capture_output=True, text=True, env=environ, timeout=60
    )


def one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr


def test_expand_without_range_is_exactly_now_minus_past_to_now_plus_future(fake_env: FakeEnv) -> None:
    # The config's window is 30d past, 90d future; the expansion covers whole UTC days beyond that.
    past, future = NOW - dt.timedelta(days=30), NOW + dt.timedelta(days=90)
    cases = {
        "ends_before_past": (past - dt.timedelta(hours=2), False),  # ends 1h before now - past
        "ends_at_past": (past - dt.timedelta(hours=1), False),  # half-open: ends exactly at the start
        "spans_past": (past - dt.timedelta(minutes=30), True),
        "starts_before_future": (future - dt.timedelta(seconds=1), True),
        "starts_at_future": (future, False),
        "after_future": (future + dt.timedelta(hours=10), False),  # inside the day-aligned expansion
    }
    for name, (start, _) in cases.items():
        fake_env.server.put("cal1", fake_event(name, start=start))
    # A daily series at 23:00 UTC: its occurrence on the last day is expanded but lies past now + future.
    daily = fake_event(
        "daily", start=NOW.replace(hour=23) - dt.timedelta(days=40), kind=Kind.SERIES, recurrence=("RRULE:FREQ=DAILY",)
    )
    daily["start"]["timezone"] = daily["end"]["timezone"] = "UTC"  # no DST shift over the window
    fake_env.server.put("cal1", daily)
    assert run(fake_env, "sync").returncode == 0
    rows = [json.loads(line) for line in run(fake_env, "events", "--expand", "--format", "jsonl").stdout.splitlines()]
    singles = {r["id"] for r in rows if r["kind"] == "single"}
    assert singles == {name for name, (_, shown) in cases.items() if shown}
    occurrences = sorted(r["start"]["datetime"] for r in rows if r["kind"] == "occurrence")
    assert occurrences[0] == (NOW.replace(hour=23) - dt.timedelta(days=30)).strftime(STAMP)
    assert occurrences[-1] == (NOW.replace(hour=23) + dt.timedelta(days=89)).strftime(STAMP)
    assert all(past.strftime(STAMP) <= r["end"]["datetime"] for r in rows if "datetime" in r["end"])


@pytest.mark.parametrize("fmt", ["jsonl", "table"])
def test_events_into_a_closed_pipe_exits_quietly(fake_env: FakeEnv, fmt: str) -> None:
    with fake_env.server.edit() as s:  # far more than a pipe buffer of jsonl
        s["calendars"]["cal1"]["events"] = {
            f"ev{i:05d}": fake_event(i, start=NOW + dt.timedelta(minutes=i)) for i in range(1500)
        }
        s["calendars"]["cal1"]["log"] = {f"ev{i:05d}": i + 1 for i in range(1500)}
        s["seq"] = 1500
    fake_env.server.set(page_size=1500)
    assert run(fake_env, "sync").returncode == 0
    cmd = " ".join([*CLI, "-c", str(fake_env.config), "events", "--expand", "--format", fmt])
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{cmd} | head -1"],
        capture_output=True,
        text=True,
        env={**fake_env.env()},
        timeout=60,
    )
    assert json.loads(proc.stdout)["id"] == "ev00000" if fmt == "jsonl" else proc.stdout.startswith("┏")
    assert proc.stderr == ""  # no BrokenPipeError, no traceback, not even on the final flush
    assert proc.returncode == 141  # 128 + SIGPIPE, as any Unix filter reports it (pipefail)


@pytest.mark.parametrize(
    "text", ["", "# nothing yet\n", "store: sqlite:///x.db\n", "accounts: []\n", "window: {past: 1d}\naccounts:\n"]
)
@pytest.mark.parametrize("command", ["sync", "events", "status", "check-config"])
def test_a_config_without_accounts_is_a_bad_config(tmp_path: Path, text: str, command: str) -> None:
    config = tmp_path / "calbridge.yaml"
    config.write_text(text)
    proc = subprocess.run([*CLI, "-c", str(config), command], capture_output=True, text=True, timeout=60)
    assert one_line_error(proc, 2).strip() == "calbridge: accounts: none configured"


def test_status_without_a_store_exits_1_like_events(fake_env: FakeEnv) -> None:
    for command in ("status", "events"):
        assert "run `calbridge sync` first" in one_line_error(run(fake_env, command), 1)


def status_row(env: FakeEnv) -> str:
    proc = run(env, "status", COLUMNS="200")
    assert proc.returncode == 0, proc.stderr
    return next(line for line in proc.stdout.splitlines() if "fake/cal1" in line)


def test_status_shows_a_round_a_kill_left_unfinished(fake_env: FakeEnv) -> None:
    for i in range(7):
        fake_env.server.put("cal1", fake_event(i))
    fake_env.server.set(kill_after_pages=1)
    assert run(fake_env, "sync").returncode < 0  # SIGKILLed after its first committed page
    row = status_row(fake_env)
    assert "full round unfinished" in row and "never" not in row

    fake_env.server.set(kill_after_pages=None)
    assert run(fake_env, "sync").returncode == 0
    assert NOW.strftime("%Y-%m-%d %H:%M:%SZ") in status_row(fake_env)

    later = NOW + dt.timedelta(hours=3)
    fake_env.server.expire_cursors()
    fake_env.server.set(kill_after_pages=1)
    assert run(fake_env, "sync", now=later).returncode < 0
    row = status_row(fake_env)
    assert "full round unfinished" in row
    assert NOW.strftime("%Y-%m-%d %H:%M") not in row  # not the old success, as if nothing were owed


def test_status_shows_a_round_in_progress_while_a_sync_holds_the_store(fake_env: FakeEnv) -> None:
    for i in range(7):
        fake_env.server.put("cal1", fake_event(i))
    fake_env.server.set(kill_after_pages=1)
    run(fake_env, "sync")
    fake_env.server.set(kill_after_pages=None)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import asyncio, sys
                from calbridge.store.sqlite import SqliteStore
                async def main():
                    async with SqliteStore({str(fake_env.store)!r}) as s, s.sync_lock(wait=0):
                        print("held", flush=True)
                        sys.stdin.readline()
                asyncio.run(main())
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert f"full round in progress (pid {holder.pid})" in status_row(fake_env)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
    assert "full round unfinished" in status_row(fake_env)


def test_a_held_sweep_is_not_a_success(fake_env: FakeEnv) -> None:
    for i in range(10):
        fake_env.server.put("cal1", fake_event(i))
    assert run(fake_env, "sync").returncode == 0
    for i in range(8):
        fake_env.server.delete("cal1", f"ev{i:05d}")
    fake_env.server.expire_cursors()
    later = NOW + dt.timedelta(hours=5)
    assert run(fake_env, "sync", now=later).returncode == 1  # held: 8 of 10
    row = status_row(fake_env)
    assert "sweep held" in row
    assert NOW.strftime("%Y-%m-%d %H:%M:%SZ") in row and later.strftime("%Y-%m-%d %H:%M") not in row


def table(env: FakeEnv, *args: str, columns: int = 80, **extra: str) -> tuple[int, list[str]]:
    """``events --format table`` on a pseudo-terminal ``columns`` wide: (exit status, lines)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    environ = {k: v for k, v in env.env().items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(
        [*CLI, "-c", str(env.config), "events", "--format", "table", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**environ, "TERM": "xterm", **extra},
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    code = proc.wait(60)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode())
    return code, [line.rstrip("\r") for line in text.split("\n") if line.strip()]


LONG_TITLE = "Quarterly architecture review with the platform, payments and identity teams"


@pytest.fixture
def wide_events(fake_env: FakeEnv) -> FakeEnv:
    fake_env.server.put("cal1", fake_event("weekly-sync-with-a-rather-long-identifier-0001", title=LONG_TITLE))
    fake_env.server.put("cal1", fake_event("lunch", start=NOW + dt.timedelta(days=1), title="Lunch"))
    assert run(fake_env, "sync").returncode == 0
    return fake_env


@pytest.mark.parametrize("columns", [80, 60, 120, 220])
def test_the_table_breaks_no_word_whatever_the_width(wide_events: FakeEnv, columns: int) -> None:
    code, lines = table(wide_events, "--tz", "UTC", columns=columns)
    assert code == 0
    assert all(len(line) <= columns for line in lines), lines
    whole = {"2026-03-01", "12:00Z", "13:00Z", "2026-03-02", "single", "confirmed", "fake/cal1", "Lunch",
             "weekly-sync-with-a-rather-long-identifier-0001", "lunch", *LONG_TITLE.split()}  # fmt: skip
    body = [line for line in lines if "│" in line or "┃" in line]
    assert len(body) == 3  # the header and two rows, each on one line
    for line in body[1:]:
        for token in re.split(r"[\s│┃]+", line):
            assert not token or token in whole or token.endswith("…"), (token, line)
    assert "2026-03-01 12:00Z" in body[1] and "Quarterly" in body[1]  # start and title always stay
    if columns >= 220:
        assert "weekly-sync-with-a-rather-long-identifier-0001" in body[1] and LONG_TITLE in body[1]


def first_row(lines: list[str]) -> str:
    return next(line for line in lines if "Quarterly" in line)


def test_the_table_shows_local_time_by_default_and_tz_on_request(wide_events: FakeEnv) -> None:
    code, lines = table(wide_events, columns=120, TZ="Asia/Tokyo")  # NOW is 12:00Z: 21:00 in Tokyo
    assert code == 0 and "2026-03-01 21:00 " in first_row(lines) and "12:00Z" not in "".join(lines)
    assert lines[-1] == "2 events, times in Asia/Tokyo"
    code, lines = table(wide_events, "--tz", "America/New_York", columns=120, TZ="Asia/Tokyo")
    assert code == 0 and "2026-03-01 07:00 " in first_row(lines) and lines[-1].endswith("in America/New_York")
    code, lines = table(wide_events, "--tz", "UTC", columns=120, TZ="Asia/Tokyo")
    assert code == 0 and "2026-03-01 12:00Z" in first_row(lines) and lines[-1].endswith("times in UTC")
    code, lines = table(wide_events, columns=120, TZ="Etc/UTC")  # a machine on UTC: the stored form
    assert code == 0 and "2026-03-01 12:00Z" in first_row(lines) and lines[-1].endswith("times in UTC")
    bad = run(wide_events, "events", "--tz", "Mars/Olympus")
    assert "--tz: unknown time zone 'Mars/Olympus'" in one_line_error(bad, 2)


def test_an_unknown_calendar_is_a_usage_error_like_an_unknown_account(wide_events: FakeEnv) -> None:
    assert "--calendar: unknown calendar 'nosuch' (known: cal1)" in one_line_error(
        run(wide_events, "events", "--calendar", "nosuch"), 2
    )
    bad_account = run(wide_events, "events", "--account", "nosuch")
    assert "--account: unknown account 'nosuch'" in one_line_error(bad_account, 2)
    ok = run(wide_events, "events", "--calendar", "cal1", "--format", "jsonl")
    assert ok.returncode == 0 and len(ok.stdout.splitlines()) == 2


def test_to_with_a_date_is_documented_and_works_as_exclusive_midnight(wide_events: FakeEnv) -> None:
    help_text = " ".join(run(wide_events, "events", "--help").stdout.split())
    assert "a date (exclusive: its midnight UTC" in help_text
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    assert "`--to` with a date is exclusive: midnight UTC" in readme
    rows = run(wide_events, "events", "--to", "2026-03-02", "--format", "jsonl").stdout.splitlines()
    assert [json.loads(r)["id"] for r in rows] == ["weekly-sync-with-a-rather-long-identifier-0001"]
