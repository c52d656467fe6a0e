"""`calbridge demo`, and `sync`/`events` against `calbridge emulate`, run as a new user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jsonschema

from calbridge.export import event_schema

CLI = [sys.executable, "-m", "calbridge.cli.main"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE")}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=120)


def test_demo_runs_the_whole_loop_for_every_provider(tmp_path: Path) -> None:
    proc = run("demo", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for account in ("demo-google", "demo-graph", "demo-feishu"):
        assert f"{account}/primary: full" in out
        assert f"{account}/primary: incremental" in out
        assert f"  {account}: " in out.split("== what changed", 1)[1]  # each shows a change
    assert "calendars synced" in out and "FAILED" not in out
    assert list(tmp_path.iterdir()) == []  # the demo leaves nothing behind


def test_sync_and_events_against_calbridge_emulate(tmp_path: Path) -> None:
    config = tmp_path / "calbridge.yaml"
    emulate = subprocess.Popen(
        [*CLI, "emulate", "--write-config", str(config)],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert emulate.stdout is not None
        lines = []
        while not any(line.startswith("config written") for line in lines):
            line = emulate.stdout.readline()
            assert line, f"emulate ended early: {emulate.stderr.read() if emulate.stderr else ''}"
            lines.append(line)
        served = {line.split()[0] for line in lines if line.startswith(" ") is False and "://" in line}
        assert served >= {"google", "graph", "feishu"}  # and any installed third-party emulator

        assert run("check-config", cwd=tmp_path).returncode == 0
        first = run("sync", cwd=tmp_path)
        assert first.returncode == 0, first.stdout + first.stderr
        assert first.stdout.count(": full,") == len(served)
        second = run("sync", cwd=tmp_path)
        assert second.returncode == 0 and second.stdout.count(": incremental,") == len(served)
        assert "0 upserted, 0 deleted" in second.stdout

        for view in ((), ("--expand",)):
            proc = run("events", "--format", "jsonl", *view, cwd=tmp_path)
            assert proc.returncode == 0, proc.stderr
            rows = [json.loads(line) for line in proc.stdout.splitlines()]
            assert {r["account"] for r in rows} >= {"demo-google", "demo-graph", "demo-feishu"}
            for row in rows:
                jsonschema.validate(row, event_schema())
        table = run("events", "--expand", "--format", "table", cwd=tmp_path)
        assert table.returncode == 0 and " events" in table.stdout.splitlines()[-1]
        status = run("status", cwd=tmp_path)
        assert status.returncode == 0 and "demo-graph/primary" in status.stdout
        calendars = run("calendars", cwd=tmp_path)
        assert calendars.returncode == 0, calendars.stdout
    finally:
        emulate.send_signal(signal.SIGTERM)
        emulate.wait(30)
    assert emulate.returncode == 0
