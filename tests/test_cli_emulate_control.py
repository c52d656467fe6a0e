"""``calbridge emulate --seed N`` and its loopback control endpoint, driven from this process while
the emulators serve in another, and read back through ``calbridge sync`` and ``events``."""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from calbridge.testing.control import control_app
from calbridge.testing.server import ThreadedServer
from calbridge_providers.google.emulator import GoogleEmulator

from .test_cli_emulate import CLI, ENV, run


def post(url: str, body: Any, *, content_type: str = "application/json", host: str | None = None) -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": content_type})  # fmt: skip
    if host is not None:
        req.add_header("Host", host)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def emulate(tmp_path: Path) -> Iterator[str]:
    """``calbridge emulate --seed 40`` in its own process; yields the control endpoint's URL."""
    args = [*CLI, "emulate", "--seed", "40", "--write-config", str(tmp_path / "calbridge.yaml")]
    proc = subprocess.Popen(args, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        while True:
            line = proc.stdout.readline()
            assert line, f"emulate ended early: {proc.stderr.read() if proc.stderr else ''}"
            if line.startswith("control endpoint: "):
                yield line.split()[2]
                break
    finally:
        proc.terminate()
        proc.wait(30)


def events(tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    proc = run("events", "--format", "jsonl", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_emulate_seed_serves_a_bigger_calendar_and_the_control_endpoint_changes_it(
    emulate: str, tmp_path: Path
) -> None:
    with urllib.request.urlopen(emulate + "/", timeout=30) as resp:
        listed = json.loads(resp.read())["emulators"]
    assert {"google", "graph", "feishu"} <= set(listed) and "cancel" in listed["feishu"]["verbs"]
    first = run("sync", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    rows = events(tmp_path)
    for account in ("demo-google", "demo-graph", "demo-feishu"):
        titles = [r["title"] for r in rows if r["account"] == account and r["kind"] in ("single", "series")]
        assert sum(t.startswith("event ") for t in titles) == 36, account
        assert sum(t.startswith("series ") for t in titles) == 4, account

    def row(account: str, title: str) -> dict[str, Any]:
        return next(r for r in rows if r["account"] == account and r["title"] == title and r["kind"] != "exception")

    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(microsecond=0)
    status, body = post(f"{emulate}/google/add", {"title": "from control", "start": start.isoformat(),
                                                   "end": (start + dt.timedelta(hours=1)).isoformat()})  # fmt: skip
    assert status == 200 and isinstance(body["result"], str)
    assert post(f"{emulate}/graph/delete", {"id": row("demo-graph", "event 1")["id"]})[0] == 200
    series = row("demo-feishu", "series 2")  # daily, no exception
    original = dt.datetime.fromisoformat(series["start"]["datetime"]) + dt.timedelta(days=1)
    cancelled = post(f"{emulate}/feishu/cancel", {"series_id": series["id"], "original_start": original.isoformat()})
    assert cancelled[0] == 200, cancelled
    assert post(f"{emulate}/feishu/update", {"id": row("demo-feishu", "event 2")["id"], "title": "renamed"})[0] == 200
    assert post(f"{emulate}/graph/expire", {})[0] == 200
    assert post(f"{emulate}/google/fail", {"status": 503})[0] == 200

    second = run("sync", cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "demo-graph/primary: full" in second.stdout, "expired cursors make a full listing"
    after = events(tmp_path, "--include-cancelled")
    titles = {(r["account"], r["title"]) for r in after if r["status"] != "cancelled"}
    assert ("demo-google", "from control") in titles
    assert ("demo-graph", "event 1") not in titles
    assert ("demo-feishu", "renamed") in titles and ("demo-feishu", "event 2") not in titles
    stub = [r for r in after if r["account"] == "demo-feishu" and r.get("series_id") == series["id"]
            and r["status"] == "cancelled"]  # fmt: skip
    assert stub and stub[0]["original_start"]["datetime"] == original.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_control_endpoint_refuses_what_it_cannot_do(emulate: str) -> None:
    assert post(f"{emulate}/nosuch/add", {})[0] == 404
    assert post(f"{emulate}/google/explode", {})[0] == 404
    status, body = post(f"{emulate}/google/delete", {"id": "no-such-event"})
    assert status == 400 and "error" in body
    assert post(f"{emulate}/google/add", {"title": "x", "start": "tomorrow", "end": "later"})[0] == 400
    assert post(f"{emulate}/google/expire", {}, content_type="text/plain")[0] == 415
    assert post(f"{emulate}/google/expire", {}, host="attacker.example")[0] == 403, "a rebinding Host is refused"
    if "example" in json.loads(urllib.request.urlopen(emulate + "/", timeout=30).read())["emulators"]:
        status, body = post(f"{emulate}/example/cancel", {"series_id": "x", "original_start": "2026-01-01"})
        assert status == 400 and "serves" in body["error"]


def _outside_address() -> str | None:
    """This machine's address on a non-loopback interface, if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = str(s.getsockname()[0])
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_the_control_endpoint_refuses_non_loopback_peers() -> None:
    address = _outside_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to connect from")
    emu = GoogleEmulator()
    with ThreadedServer(control_app({"google": emu}), host="0.0.0.0") as server:
        port = server.port
        status, body = post(f"http://{address}:{port}/google/expire", {}, host=f"127.0.0.1:{port}")
        assert status == 403 and "loopback" in body["error"]
        assert post(f"http://127.0.0.1:{port}/google/expire", {})[0] == 200
