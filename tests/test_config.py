"""Config loading: errors name the place, env vars, paths, and the CLI's exit 2."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from calbridge.config import load_config, parse_duration
from calbridge.errors import ConfigError
from calbridge.registry import TEST_PROVIDERS_ENV, default_registry

# GOOD names the testing kit's `fake` provider: visible here, and to the CLI subprocesses below.
pytestmark = pytest.mark.usefixtures("calbridge_test_providers")

GOOD = """
store: sqlite:///data/mirror.db
window: {past: 2w, future: 90d}
history: 365d
accounts:
  - name: f
    provider: fake
    auth: {kind: token, token: "${TOK}"}
    options: {state: /tmp/x.json}
    calendars: [a, b]
"""


def write(tmp: Path, text: str) -> Path:
    p = tmp / "c.yaml"
    p.write_text(text)
    return p


def test_good_config_structures(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD), env={"TOK": "t$x"}, registry=default_registry)
    assert cfg.store_path == tmp_path / "data" / "mirror.db"
    assert cfg.settings.window_past == dt.timedelta(weeks=2)
    assert cfg.settings.history == dt.timedelta(days=365)
    (acc,) = cfg.accounts
    assert acc.calendars == ("a", "b")
    assert acc.auth.token == "t$x"  # type: ignore[attr-defined]
    assert "t$x" not in repr(acc)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (GOOD.replace("provider: fake", "provider: nope"), "accounts[0].provider: unknown provider 'nope'"),
        (GOOD.replace('token: "${TOK}"', "other: 1"), "accounts[0].auth.token: required"),
        (GOOD.replace("past: 2w", "past: 2 weeks"), "window.past: bad duration"),
        (GOOD.replace("${TOK}", "${UNSET_VAR_XYZ}"), "accounts[0].auth.token: environment variable UNSET_VAR_XYZ"),
        (GOOD.replace("    provider: fake\n", ""), "accounts[0].provider: required"),
        (GOOD.replace("history: 365d", "histroy: 365d"), "histroy: unknown key"),
        (GOOD + "  - name: f\n    provider: fake\n    auth: {kind: token, token: x}\n", "accounts[1].name: duplicate"),
        ("accounts: [1, 2]", "accounts[0]"),
        ("store: [", "c.yaml:1"),
    ],
)
def test_bad_config_names_the_place(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), env={"TOK": "t"}, registry=default_registry)
    assert where in str(err.value)


def test_durations() -> None:
    assert parse_duration("45m") == dt.timedelta(minutes=45)
    with pytest.raises(ValueError):
        parse_duration("3y")


@pytest.mark.parametrize("command", ["check-config", "sync"])
@pytest.mark.parametrize(
    ("text", "where"),
    [
        (GOOD.replace("provider: fake", "provider: nope"), "accounts[0].provider: unknown provider"),
        (GOOD.replace('token: "${TOK}"', "other: 1"), "accounts[0].auth.token: required"),
        (GOOD.replace("past: 2w", "past: soon"), "window.past: bad duration"),
        (GOOD.replace("${TOK}", "${UNSET_VAR_XYZ}"), "accounts[0].auth.token: environment variable UNSET_VAR_XYZ"),
    ],
)
def test_cli_bad_config_exits_2_with_one_line(tmp_path: Path, command: str, text: str, where: str) -> None:
    p = write(tmp_path, text)
    proc = subprocess.run(
        [sys.executable, "-m", "calbridge.cli.main", command, "-c", str(p)],
        capture_output=True,
        text=True,
        env={"TOK": "t", "PATH": "/usr/bin", TEST_PROVIDERS_ENV: "1"},
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"calbridge: {where}"), proc.stderr
    assert not (tmp_path / "data").exists()  # nothing written for a bad config


def test_events_does_not_need_secrets(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD)
    proc = subprocess.run(
        [sys.executable, "-m", "calbridge.cli.main", "-c", str(p), "events"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin", TEST_PROVIDERS_ENV: "1"},
    )
    assert proc.returncode == 1 and "run `calbridge sync` first" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "calbridge.cli.main", "-c", str(p), "events", "--account", "zzz"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "unknown account 'zzz'" in proc.stderr
