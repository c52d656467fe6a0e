"""``calbridge run`` as a process: SIGTERM while the emulator holds a page (exit 0 within drain, the
page committed or not started, then an exact mirror), one log line per round, a second run waiting
for the first, a listen address in use (exit 1, one line), a bad ``service`` section (exit 2)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from calbridge.testing.kit import Served

from .stateful.handles import HANDLES
from .test_service import Gate, serve_gated

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
ROUND = re.compile(
    r"^\S+/\S+: (full|incremental) round, \d+ pages; events \d+ upserted, \d+ deleted;"
    r" occurrences \d+ upserted, \d+ deleted$"
)
LISTENING = re.compile(r"^calbridge run: worker \S+, listening on 127\.0\.0\.1:(\d+)$")


class Run:
    """A ``calbridge run`` process, its stderr read line by line as it comes."""

    def __init__(self, config: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "calbridge.cli.main", "-c", str(config), "run", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "CALBRIDGE_NOW": NOW.strftime("%Y-%m-%dT%H:%M:%SZ")},
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: re.Pattern[str], count: int = 1, timeout: float = 30) -> list[re.Match[str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for line in list(self.lines) if (m := pattern.match(line))]
            if len(found) >= count:
                return found
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no {count} lines matching {pattern.pattern!r} in: {self.lines}")

    @property
    def port(self) -> int:
        return int(self.wait_for(LISTENING)[0].group(1))

    def stop(self, timeout: float) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def feishu(gate: Gate) -> Iterator[Served]:
    served = serve_gated("feishu", gate)
    yield served
    gate.release.set()
    served.stop()


def write_config(tmp_path: Path, accounts: list[dict[str, Any]], **service: str) -> Path:
    config = tmp_path / "calbridge.yaml"
    doc = {
        "store": "sqlite:///mirror.db",
        "window": {"past": "30d", "future": "90d"},
        "service": {"listen": "127.0.0.1:0", **service},
        "accounts": accounts,
    }
    config.write_text(yaml.safe_dump(doc))
    return config


def calendar(served: Served, name: str, events: int) -> dict[str, Any]:
    handle = HANDLES[served.name](served)
    handle.reset()
    for i in range(events):
        start = NOW + dt.timedelta(hours=i)
        handle.create_single(f"{name} {i:03d}", start, start + dt.timedelta(minutes=30))
    return handle.account(name)


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "calbridge.cli.main", "-c", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CALBRIDGE_NOW": NOW.strftime("%Y-%m-%dT%H:%M:%SZ")},
    )


def healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def titles(config: Path) -> list[str]:
    out = cli(config, "events", "--format", "jsonl")
    assert out.returncode == 0, out.stderr
    return [json.loads(line)["title"] for line in out.stdout.splitlines()]


def test_sigterm_while_a_page_is_held_exits_0_within_drain_and_sync_finishes_exactly(
    feishu: Served, gate: Gate, tmp_path: Path
) -> None:
    account = calendar(feishu, "a", 130)  # three pages of 50
    config = write_config(tmp_path, [account], poll="1h", drain="2s")
    gate.hold_after = 1  # the second page never arrives
    run = Run(config)
    try:
        assert gate.held.wait(60), run.lines
        port = run.port
        assert healthz(port) == 200
        started = time.monotonic()
        run.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert healthz(port) == 503  # draining: the held page has not arrived
        code = run.proc.wait(timeout=10)  # five times the drain
        elapsed = time.monotonic() - started
    finally:
        run.kill()
    assert code == 0, run.lines
    assert elapsed < 10
    assert len(titles(config)) == 50  # the first page committed, nothing of the held one
    assert not any(ROUND.match(line) for line in run.lines)  # that round did not finish
    gate.release.set()
    gate.hold_after = None
    sync = cli(config, "sync")
    assert sync.returncode == 0, sync.stdout + sync.stderr
    got = titles(config)
    assert sorted(got) == [f"a {i:03d}" for i in range(130)]  # exact, no duplicate
    secret = account["auth"]["app_secret"]
    assert secret not in "\n".join(run.lines) + sync.stdout + sync.stderr


def test_sigterm_while_a_page_is_on_its_way_commits_it_and_requests_no_further_page(
    feishu: Served, gate: Gate, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [calendar(feishu, "a", 130)], poll="1h", drain="10s")
    gate.hold_after, gate.hold_for = 1, 2.0  # the second page takes two seconds
    run = Run(config)
    try:
        assert gate.held.wait(60), run.lines
        run.proc.send_signal(signal.SIGTERM)
        code = run.proc.wait(timeout=50)
    finally:
        run.kill()
    assert code == 0, run.lines
    assert gate.listings == 2  # no third page was asked for
    assert len(titles(config)) == 100  # the page on its way was committed
    stopped = [line for line in run.lines if "round stopped after 2 pages" in line]
    assert len(stopped) == 1, run.lines
    sync = cli(config, "sync")
    assert sync.returncode == 0, sync.stdout + sync.stderr
    assert sorted(titles(config)) == [f"a {i:03d}" for i in range(130)]


def test_one_log_line_per_round_and_status_says_polled(feishu: Served, tmp_path: Path) -> None:
    config = write_config(tmp_path, [calendar(feishu, "a", 3), calendar(feishu, "b", 2)], poll="1s")
    run = Run(config)
    try:
        run.wait_for(ROUND, 6)
        code = run.stop(timeout=25)
    finally:
        run.kill()
    assert code == 0, run.lines
    rounds = [line for line in run.lines if ROUND.match(line)]
    others = [line for line in run.lines if not ROUND.match(line)]
    assert all(LISTENING.match(line) or line.startswith("stopping:") for line in others), others
    assert {r.split(":")[0].split("/")[0] for r in rounds} == {"a", "b"}
    assert sum(" full round" in r for r in rounds) == 2  # one full round each, at start
    status = cli(config, "status")
    assert status.returncode == 0
    assert status.stdout.count("polled: no service.public_url") == 2


def test_a_second_run_waits_for_the_first(feishu: Served, tmp_path: Path) -> None:
    config = write_config(tmp_path, [calendar(feishu, "a", 2)], poll="1h")
    waiting = re.compile(r"^calbridge: .*is using .*waiting for it to finish")
    runs = [Run(config)]
    try:
        runs[0].wait_for(ROUND)
        runs.append(Run(config))
        runs[1].wait_for(waiting)
        assert runs[1].stop(timeout=10) == 0  # a stop while it waits is a clean stop
        assert not any(ROUND.match(line) for line in runs[1].lines)
        runs.append(Run(config))
        runs[2].wait_for(waiting)
        assert runs[0].stop(timeout=25) == 0
        runs[2].wait_for(ROUND)  # it took over once the first stopped
        assert runs[2].stop(timeout=25) == 0
    finally:
        for run in runs:
            run.kill()


def test_a_listen_address_in_use_exits_1_with_one_line(feishu: Served, tmp_path: Path) -> None:
    config = write_config(tmp_path, [calendar(feishu, "a", 1)])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = cli(config, "run", "--listen", f"127.0.0.1:{port}")
    assert proc.returncode == 1
    lines = (proc.stdout + proc.stderr).splitlines()
    assert len(lines) == 1 and f"cannot listen on 127.0.0.1:{port}" in lines[0], lines


@pytest.mark.parametrize(
    ("service", "place"),
    [
        ({"listen": "nowhere"}, "service.listen: expected host:port"),
        ({"poll": "soon"}, "service.poll:"),
        ({"drain": "-1s"}, "service.drain:"),
        ({"public_url": "ftp://x"}, "service.public_url:"),
        ({"colour": "blue"}, "service.colour: unknown key"),
    ],
)
def test_a_bad_service_section_exits_2_naming_the_place(
    feishu: Served, tmp_path: Path, service: dict[str, str], place: str
) -> None:
    config = write_config(tmp_path, [calendar(feishu, "a", 1)], **service)
    proc = cli(config, "run")
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"calbridge: {place}"), proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_a_bad_listen_flag_exits_2(feishu: Served, tmp_path: Path) -> None:
    proc = cli(write_config(tmp_path, [calendar(feishu, "a", 1)]), "run", "--listen", "8765")
    assert proc.returncode == 2 and "--listen: expected host:port" in proc.stderr


def test_a_revoked_account_fails_and_backs_off_while_the_other_stays_fresh(feishu: Served, tmp_path: Path) -> None:
    bad = calendar(feishu, "bad", 1)
    bad["auth"]["app_secret"] = "revoked-secret-CANARY"
    config = write_config(tmp_path, [calendar(feishu, "good", 1), bad], poll="1s")
    failed = re.compile(
        r"^bad/\S+: (full|incremental) round FAILED: AuthError: .*; failure 1, next attempt \S+Z \(in \d+s\)$"
    )
    run = Run(config)
    try:
        run.wait_for(failed)
        run.wait_for(re.compile(r"^good/\S+: incremental round, "), 3)  # fresh meanwhile
        assert run.proc.poll() is None
        status = cli(config, "status")  # while it runs: the store is shared with readers
        assert run.stop(timeout=25) == 0
    finally:
        run.kill()
    assert len([line for line in run.lines if line.startswith("bad/")]) == 1  # backing off: 30 s
    row = next(line for line in status.stdout.splitlines() if "bad/" in line)
    assert "1 failure, next attempt" in row
    assert "revoked-secret-CANARY" not in "\n".join(run.lines) + status.stdout + status.stderr
