"""A store the CLI cannot (fully) use: read-only, unreadable, behind a closed folder, or with a
corrupt row. `events` and `status` read a read-only store; everything else is one line, exit 1.

Root ignores file modes, so the CLI runs as an unprivileged user (uid 65534 through ``setpriv``)
when these tests run as root; otherwise it runs as the current user, whose modes already apply.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import CANARY, NOW, FakeEnv, fake_event

NOBODY = 65534
ROOT = os.geteuid() == 0
pytestmark = pytest.mark.skipif(ROOT and shutil.which("setpriv") is None, reason="root without setpriv")


def _ancestors(path: Path) -> list[Path]:
    return [*reversed(path.resolve().parents), path.resolve()]


@pytest.fixture(scope="module", autouse=True)
def _reachable_by_the_user() -> Iterator[None]:
    """Let the unprivileged user reach this interpreter's environment and the checkout.

    A checkout or venv under a private folder (``mktemp -d`` is 0700) is out of uid 65534's reach, so
    the CLI would not even import. Folders on the way that lack ``o+x`` get it (traversal only, no
    listing) for this module's tests and get their mode back afterwards.
    """
    if not ROOT:
        yield
        return
    changed: dict[Path, int] = {}
    for top in (Path(sys.prefix), Path(__file__).parents[1]):
        for folder in _ancestors(top):
            mode = folder.stat().st_mode
            if folder not in changed and not mode & 0o001:
                changed[folder] = mode & 0o7777
                folder.chmod(changed[folder] | 0o001)
    probe = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable, "-c",
         "import calbridge.cli.main"],
        capture_output=True, text=True, timeout=60, cwd="/",
    )  # fmt: skip
    try:
        assert probe.returncode == 0, f"uid {NOBODY} cannot import calbridge here: {probe.stderr.strip()}"
        yield
    finally:
        for folder, mode in changed.items():
            folder.chmod(mode)


def as_user(env: FakeEnv, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI on ``env``'s config, as an unprivileged user when we are root."""
    prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] if ROOT else []
    return subprocess.run(
        [*prefix, sys.executable, "-m", "calbridge.cli.main", "-c", str(env.config), *args],
        capture_output=True,
        text=True,
        env={**env.env(), "HOME": str(env.tmp)},
        cwd=env.tmp,
        timeout=60,
    )


def one_line(proc: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert CANARY not in proc.stdout + proc.stderr
    return proc.stderr


@pytest.fixture
def shared_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEnv]:
    """A synced fake env in a folder the unprivileged user can enter and, for now, write."""
    tmp = Path(tempfile.mkdtemp(prefix="calbridge-access-"))
    tmp.chmod(0o777)
    monkeypatch.setenv("FAKE_TOKEN", CANARY)
    try:
        env = FakeEnv(tmp)
        for i in range(3):
            env.server.put("cal1", fake_event(i))
        env.cli("sync", check=True)  # as ourselves: the store is ours, closed cleanly (no -wal/-shm)
        for path in tmp.iterdir():
            path.chmod(0o644)
        assert not list(tmp.glob("mirror.db-*"))
        yield env
    finally:
        tmp.chmod(0o700)
        shutil.rmtree(tmp)


def read_only(env: FakeEnv) -> None:
    """What a read-only medium looks like to a process: no file or folder it may write."""
    env.store.chmod(0o444)
    env.tmp.chmod(0o555)


def test_events_and_status_read_a_read_only_store(shared_env: FakeEnv) -> None:
    read_only(shared_env)
    proc = as_user(shared_env, "events", "--format", "jsonl")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["id"] for line in proc.stdout.splitlines()] == ["ev00000", "ev00001", "ev00002"]
    proc = as_user(shared_env, "events", "--expand", "--format", "jsonl")
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 3, proc.stderr
    proc = as_user(shared_env, "status")
    assert proc.returncode == 0 and "fake/cal1" in proc.stdout, proc.stderr
    assert NOW.strftime("%Y-%m-%d %H:%M:%SZ") in proc.stdout
    assert not list(shared_env.tmp.glob("mirror.db-*"))  # nothing written beside it


def test_a_read_only_store_under_a_writable_folder_is_read_too(shared_env: FakeEnv) -> None:
    shared_env.store.chmod(0o444)
    shared_env.tmp.chmod(0o777)
    proc = as_user(shared_env, "events", "--format", "jsonl")
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 3, proc.stderr


def test_sync_on_a_read_only_store_is_one_line(shared_env: FakeEnv) -> None:
    read_only(shared_env)
    assert "cannot open store" in one_line(as_user(shared_env, "sync"))


def test_an_unreadable_store_is_one_line_for_every_command(shared_env: FakeEnv) -> None:
    shared_env.store.chmod(0o000)
    for command in ("events", "status", "sync", "calendars"):
        assert "permission denied" in one_line(as_user(shared_env, command)), command


def test_a_store_behind_a_closed_folder_is_one_line(shared_env: FakeEnv) -> None:
    inner = shared_env.tmp / "closed"
    inner.mkdir()
    shared_env.store.rename(inner / "mirror.db")
    text = shared_env.config.read_text().replace("sqlite:///mirror.db", "sqlite:///closed/mirror.db")
    shared_env.config.write_text(text)
    inner.chmod(0o700 if ROOT else 0o000)  # the user the CLI runs as cannot enter it
    try:
        for command in ("events", "status", "sync"):
            assert "Permission denied" in one_line(as_user(shared_env, command)), command
    finally:
        inner.chmod(0o700)


def corrupt(env: FakeEnv, sql: str) -> None:
    conn = sqlite3.connect(env.store)
    with conn:
        conn.execute(sql)
    conn.close()
    for path in env.tmp.glob("mirror.db*"):
        path.chmod(0o666)


def test_a_corrupt_event_row_is_one_line(shared_env: FakeEnv) -> None:
    corrupt(shared_env, "UPDATE events SET json = '{\"id\": \"ev00001\", broken' WHERE id = 'ev00001'")
    for args in (("events",), ("events", "--expand")):
        assert "corrupt events row" in one_line(as_user(shared_env, *args, "--format", "jsonl"))


def test_a_corrupt_calendar_state_is_one_line(shared_env: FakeEnv) -> None:
    corrupt(shared_env, "UPDATE calendar_state SET state = '{\"cursor\": 7, \"round\": \"sideways\"}'")
    assert "corrupt calendar_state row for fake/cal1" in one_line(as_user(shared_env, "status"))
    proc = as_user(shared_env, "sync")  # that calendar fails, named in the summary; no traceback
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    assert "fake/cal1" in proc.stdout and "corrupt calendar_state row" in proc.stdout


def test_a_corrupt_status_time_is_one_line(shared_env: FakeEnv) -> None:
    corrupt(shared_env, "UPDATE calendar_status SET last_success = 'yesterday-ish'")
    assert "corrupt calendar_status time 'yesterday-ish'" in one_line(as_user(shared_env, "status"))
