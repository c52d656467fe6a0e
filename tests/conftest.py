from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from calbridge.export import event_to_dict
from calbridge.model import Event, Kind, When
from calbridge.registry import TEST_PROVIDERS_ENV
from calbridge.testing.fake import FakeServer
from tests._postgres import (  # fixtures for the PostgreSQL tests
    AnyStore,
    any_store,
    leave_out,
    postgres_database,
    postgres_schema,
)

CANARY = "tok-CANARY-7f3a9c"
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def fake_event(
    i: int | str, *, start: dt.datetime | None = None, title: str | None = None, **kw: Any
) -> dict[str, Any]:
    """An event dict in the exported form, as the fake server holds it."""
    start = start or NOW + dt.timedelta(days=int(i) if isinstance(i, int) else 0)
    ev = Event(
        provider="fake",
        account="fake",
        calendar_id="x",
        id=f"ev{i:05d}" if isinstance(i, int) else i,
        kind=kw.pop("kind", Kind.SINGLE),
        start=When.at(start, "Europe/London"),
        end=When.at(start + dt.timedelta(hours=1), "Europe/London"),
        title=title or f"event {i}",
        **kw,
    )
    d = event_to_dict(ev)
    for k in ("provider", "account", "calendar_id"):
        d.pop(k)
    return d


class FakeEnv:
    """A fake server file plus a config pointing at it, in tmp_path. The ``fake`` provider is the
    kit's test double: the CLI it runs finds it through ``CALBRIDGE_TEST_PROVIDERS``."""

    def __init__(self, tmp: Path, calendars: tuple[str, ...] = ("cal1",)) -> None:
        self.tmp = tmp
        self.server = FakeServer(tmp / "server.json")
        self.server.set(page_size=3)
        for cal in calendars:
            with self.server.edit() as s:
                s["calendars"].setdefault(cal, {"events": {}, "log": {}})
        self.config = tmp / "calbridge.yaml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "store": "sqlite:///mirror.db",
                    "window": {"past": "30d", "future": "90d"},
                    "accounts": [
                        {
                            "name": "fake",
                            "provider": "fake",
                            "auth": {"kind": "token", "token": "${FAKE_TOKEN}"},
                            "options": {"state": str(tmp / "server.json")},
                            "calendars": list(calendars),
                        }
                    ],
                }
            )
        )
        self.store = tmp / "mirror.db"
        self.any_store = AnyStore("sqlite", path=self.store)

    def use(self, store: AnyStore) -> None:
        """Name ``store`` in the config instead of the SQLite file (:meth:`open` opens it too)."""
        doc = yaml.safe_load(self.config.read_text())
        doc["store"] = store.url
        self.config.write_text(yaml.safe_dump(doc))
        self.any_store = store

    def open(self, **kw: Any) -> Any:
        """An unopened handle on the config's store, SQLite or PostgreSQL."""
        return self.any_store.open(**kw)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            TEST_PROVIDERS_ENV: "1",
            "FAKE_TOKEN": CANARY,
            "CALBRIDGE_NOW": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def cli(self, *args: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "calbridge.cli.main", "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
        )
        assert CANARY not in proc.stdout + proc.stderr
        if check:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc


_postgres_note: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: any_store's PostgreSQL case (needs the server)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    note = leave_out(config, items)
    if note:
        _postgres_note.append(note)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How many stateful steps ran (the issue asks to say it), in every run, not only with -s; and
    the one line saying the PostgreSQL tests were left out, when they were."""
    for note in _postgres_note:
        terminalreporter.write_line(note)
    stateful = sys.modules.get("tests.test_stateful")
    lines = stateful.summary_lines() if stateful is not None else []
    if lines:
        terminalreporter.section("stateful property tests")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calbridge_test_providers: list[str]) -> FakeEnv:
    """A :class:`FakeEnv`, with the kit's ``fake`` provider visible in this process too."""
    monkeypatch.setenv("FAKE_TOKEN", CANARY)
    return FakeEnv(tmp_path)


@pytest.fixture
def store_env(fake_env: FakeEnv, any_store: AnyStore) -> FakeEnv:
    """A :class:`FakeEnv` whose config names the test's own store: SQLite, then PostgreSQL."""
    fake_env.use(any_store)
    return fake_env


__all__ = ["any_store", "postgres_database", "postgres_schema"]  # re-exported fixtures
