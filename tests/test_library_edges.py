"""The library's rough edges: readable `When`/`Event`, listener failures logged with their
calendar, `AccountConfig(calendars=[...])`, and the emulators' needs as core dependencies."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
import tomllib
from pathlib import Path

import attrs
import pytest

from calbridge.config import AccountConfig, load_config
from calbridge.engine import ChangeBatch, SyncEngine
from calbridge.model import Event, Kind, Status, When
from calbridge.registry import default_registry

from .conftest import NOW, FakeEnv, fake_event

ROOT = Path(__file__).parents[1]


def test_when_and_event_print_as_one_short_line() -> None:
    start = When.at(dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC), "Europe/London")
    end = When.at(dt.datetime(2026, 3, 1, 13, tzinfo=dt.UTC), "Europe/London")
    assert repr(start) == "When(2026-03-01T12:00:00Z Europe/London)"
    day = When.on(dt.date(2026, 3, 3))
    assert str(day) == "2026-03-03" and repr(day) == "When(2026-03-03)"
    ev = Event(provider="fake", account="a", calendar_id="c", id="x1", kind=Kind.EXCEPTION, start=start, end=end,
               series_id="s1", status=Status.CANCELLED, title="Standup", original_start=start)  # fmt: skip
    assert str(ev) == (
        "'Standup' 2026-03-01T12:00:00Z Europe/London – 2026-03-01T13:00:00Z Europe/London"
        " (exception of s1) [cancelled]"
    )
    assert repr(ev) == f"Event(a/c/x1: {ev})"
    # attrs' equality and hashing are untouched.
    twin = attrs.evolve(ev)
    assert twin == ev and hash(twin) == hash(ev) and len({ev, twin}) == 1
    assert attrs.evolve(ev, title="Other") != ev and When.on(dt.date(2026, 3, 3)) == When.on(dt.date(2026, 3, 3))


def test_account_config_takes_a_list_of_calendars() -> None:
    account = AccountConfig(name="a", provider="fake", calendars=["primary", "team"])
    assert account.calendars == ("primary", "team")
    assert AccountConfig(name="a", provider="fake", calendars="primary").calendars == ("primary",)
    assert AccountConfig(name="a", provider="fake").calendars is None


async def test_a_failing_listener_is_logged_with_its_calendar(
    store_env: FakeEnv, caplog: pytest.LogCaptureFixture
) -> None:
    store_env.server.put("cal1", fake_event(1))

    def broken(batch: ChangeBatch) -> None:
        raise RuntimeError("listener bug")

    config = load_config(store_env.config, registry=default_registry)
    with caplog.at_level(logging.ERROR, logger="calbridge.engine"):
        async with store_env.open() as store, SyncEngine(config, store, clock=lambda: NOW) as engine:
            engine.add_listener(broken)
            report = await engine.sync()
    assert report.ok  # swallowed by design: the changes are committed either way
    # The page's batch, then the round's (empty) last batch: each failure logged, none fatal.
    record, marker = caplog.records
    assert record.getMessage() == "fake/cal1: a change listener failed on 1 changes"
    assert marker.getMessage() == "fake/cal1: a change listener failed on 0 changes"
    assert record.exc_info is not None and "listener bug" in str(record.exc_info[1])


def test_the_emulators_needs_are_core_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("=")[0].split("[")[0].strip() for dep in project["dependencies"]}
    assert {"trustme", "cryptography"} <= names
    assert project["optional-dependencies"]["emulators"] == []  # kept as an alias for old install lines


@pytest.mark.parametrize("command", [["demo"], ["emulate", "--write-config", "emulated.yaml"]])
def test_a_missing_dependency_is_one_line_and_exit_2(tmp_path: Path, command: list[str]) -> None:
    # `sys.modules[name] = None` makes `import name` fail exactly as an absent package does.
    code = f"import sys; sys.modules['trustme'] = None; import calbridge.cli.main as m; sys.exit(m.main({command!r}))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "HTTPS emulators: trustme is not installed (reinstall" in proc.stderr
