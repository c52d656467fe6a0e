"""``calbridge run --unsubscribe`` as a real process against the kit's served Google and Graph
emulators: ``status`` says "pushed until …" while it runs, a change arrives by push, SIGTERM exits 0
and leaves no subscription or live channel behind; no secret in any output."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from calbridge.registry import default_registry
from calbridge.store.sqlite import SqliteStore
from calbridge.testing.kit import Served
from calbridge.testing.tls import TestCA, make_test_ca

from ._service_world import PUSH_WITHIN, Calendar, free_port, served_pair, write_doc

ROUND = re.compile(r"^(\S+)/\S+: (full|incremental) round, \d+ pages; events (\d+) upserted")


class Run:
    """A ``calbridge run`` process with its stdout and stderr read as they come."""

    def __init__(self, config: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "calbridge.cli.main", "-c", str(config), "run", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
        )  # fmt: skip
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(s, d), daemon=True)
                         for s, d in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]  # fmt: skip
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def wait_for(self, pattern: re.Pattern[str], count: int = 1, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(bool(pattern.match(line)) for line in list(self.err)) >= count:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {count} lines matching {pattern.pattern!r} in: {self.err}")

    def stop(self, timeout: float) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_test_ca(tmp_path_factory.mktemp("run-ca"))


@pytest.fixture
def pair(ca: TestCA) -> Iterator[tuple[Served, Served]]:
    with served_pair(default_registry, ca) as both:
        yield both


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "calbridge.cli.main", "-c", str(config), *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def stored_secrets(config: Path) -> list[str]:
    async def read() -> list[str]:
        async with SqliteStore(config.parent / "mirror.db") as store:
            return [s.secret for s in await store.subscriptions() if s.secret]

    return asyncio.run(read())


def until(check: Any, timeout: float = PUSH_WITHIN) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_run_unsubscribe_pushes_then_leaves_nothing_subscribed(pair: tuple[Served, Served], tmp_path: Path) -> None:
    google, graph = pair
    g, m = Calendar(google, "g"), Calendar(graph, "m")
    config = tmp_path / "calbridge.yaml"
    config.write_text(yaml.safe_dump(write_doc(tmp_path, [g.entry, m.entry], free_port(), drain="5s")))
    run = Run(config, "--unsubscribe")
    try:
        run.wait_for(ROUND, 2)
        statuses: list[str] = []

        def pushed() -> bool:
            statuses.append(cli(config, "status").stdout)
            return statuses[-1].count("pushed until") == 2

        until(pushed)
        assert len(google.emulator.state.push.channels(g.calendar_id)) == 1
        assert len(graph.emulator.subscriptions()) == 1
        secrets = stored_secrets(config)
        assert len(secrets) == 2
        for cal in (g, m):
            cal.create("by push")
        run.wait_for(re.compile(r"^[gm]/\S+: incremental round, \d+ pages; events 1 upserted"), 2, PUSH_WITHIN)
        code = run.stop(timeout=30)
    finally:
        run.kill()
    assert code == 0, run.err
    assert google.emulator.state.push.channels() == []  # no live channel
    assert graph.emulator.subscriptions() == []
    after = cli(config, "status")
    assert "pushed until" not in after.stdout
    everything = "\n".join(run.out + run.err + statuses + [after.stdout, after.stderr])
    credentials = [g.entry["auth"]["client_secret"], g.entry["auth"]["refresh_token"],
                   m.entry["auth"]["client_secret"]]  # fmt: skip
    for secret in secrets + credentials:
        assert secret not in everything
