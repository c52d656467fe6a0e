"""``calbridge emulate`` + ``calbridge run`` on the config it writes, as a new user runs them: changes
made through the control endpoint reach the store by push (``poll`` is 15 minutes, so nothing else
brings them within the bound), a Graph ``subscriptionRemoved`` sent through the control endpoint
gives a new subscription that delivers, and both processes exit 0 on SIGTERM without a secret in
any line they or the control endpoint wrote."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from calbridge.testing.control import call
from calbridge_providers.feishu.emulator import FeishuEmulator
from calbridge_providers.google.emulator import GoogleEmulator
from calbridge_providers.graph.emulator import GraphEmulator

from .test_cli_emulate import CLI, ENV, run

BOUND = 30.0  # seconds: generous, a loaded CI machine must not flake (push takes well under one)
PUSHED = ("google", "graph", "feishu")
T = TypeVar("T")


class Proc:
    """A CLI process whose stdout and stderr are read line by line as they come."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.proc = subprocess.Popen([*CLI, *args], cwd=cwd, env=ENV, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)  # fmt: skip
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, lines), daemon=True).start()

    @staticmethod
    def _read(stream: Any, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.out + self.err)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


def eventually(check: Callable[[], T | None], what: str, timeout: float = BOUND) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout:g}s: {what}"
        time.sleep(0.2)


def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def emulate(tmp_path: Path) -> Iterator[tuple[Proc, str]]:
    """``calbridge emulate`` writing ./calbridge.yaml; yields it and its control endpoint's URL."""
    proc = Proc("emulate", cwd=tmp_path)
    try:
        line = eventually(lambda: next((x for x in proc.out if x.startswith("control endpoint: ")), None),
                          f"emulate started ({proc.text()})")  # fmt: skip
        yield proc, line.split()[2]
    finally:
        assert proc.stop() == 0, proc.text()


def secrets_in(config: dict[str, Any]) -> list[str]:
    """Every secret value of the written config: auth and push values but ids and addresses."""
    plain = {"kind", "app_id", "client_id", "tenant_id", "token_uri", "authority"}
    found = []
    for account in config["accounts"]:
        for section in ("auth", "push"):
            found += [str(v) for k, v in (account.get(section) or {}).items() if k not in plain]
    return found


def test_emulate_then_run_gets_changes_by_push(emulate: tuple[Proc, str], tmp_path: Path) -> None:
    emulator, control = emulate
    config = yaml.safe_load((tmp_path / "calbridge.yaml").read_text(encoding="utf-8"))
    service = config["service"]
    assert service["public_url"] == f"http://{service['listen']}" and service["listen"].startswith("127.0.0.1:")
    feishu = next(a for a in config["accounts"] if a["provider"] == "feishu")
    assert feishu["auth"]["kind"] == "user" and set(feishu["push"]) == {"verification_token", "encrypt_key"}
    answers: list[str] = []

    def verb(name: str, what: str, **args: Any) -> Any:
        status, body = post(f"{control}/{name}/{what}", args)
        answers.append(json.dumps(body))
        assert status == 200, body
        return body["result"]

    service_run = Proc("run", cwd=tmp_path)
    try:

        def subscribed(name: str) -> list[dict[str, Any]] | None:
            live = verb(name, "subscriptions")  # Feishu's address: its console's, once the challenge passed
            return live if live and all(s["address"] for s in live) else None

        subs = {name: eventually(lambda n=name: subscribed(n), f"{name} subscribed") for name in PUSHED}
        for name in PUSHED:
            assert [s["address"] for s in subs[name]] == [f"{service['public_url']}/push/{name}"], name
        eventually(lambda: all(f"demo-{n}/primary: full round" in service_run.text() for n in PUSHED), "first rounds")

        start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(microsecond=0)
        when = {"start": start.isoformat(), "end": (start + dt.timedelta(hours=1)).isoformat()}
        ids = {name: verb(name, "add", title=f"pushed to {name}", **when) for name in PUSHED}

        def mirrored() -> dict[str, str] | None:
            proc = run("events", "--format", "jsonl", cwd=tmp_path)
            assert proc.returncode == 0, proc.stderr
            rows = [json.loads(line) for line in proc.stdout.splitlines()]
            got = {r["account"]: r["id"] for r in rows if r["title"].startswith("pushed to ")}
            return got if len(got) == len(PUSHED) else None

        assert eventually(mirrored, "the changes in the store") == {f"demo-{n}": ids[n] for n in PUSHED}
        for name in PUSHED:
            assert f"demo-{name}/primary: incremental round" in service_run.text(), name

        def graph_rounds() -> int:
            return service_run.text().count("demo-graph/primary: incremental round")

        removed, before = subs["graph"][0]["id"], graph_rounds()
        verb("graph", "lifecycle", id=removed, event="subscriptionRemoved")
        renewed = eventually(lambda: [s for s in verb("graph", "subscriptions") if s["id"] != removed],
                             "a new Graph subscription")  # fmt: skip
        assert len(renewed) == 1
        eventually(lambda: graph_rounds() > before, "the round that follows a new subscription")
        later = verb("graph", "add", title="after the new subscription", **when)

        def arrived() -> bool:
            proc = run("events", "--format", "jsonl", "--account", "demo-graph", cwd=tmp_path)
            return any(json.loads(line)["id"] == later for line in proc.stdout.splitlines())

        eventually(arrived, "a change delivered to the new subscription")
        status = run("status", cwd=tmp_path)
        assert status.returncode == 0 and "pushed until" in status.stdout
    finally:
        assert service_run.stop() == 0, service_run.text()
    for secret in secrets_in(config):
        for text in (emulator.text(), service_run.text(), status.stdout, *answers):
            assert secret not in text


def test_the_push_verbs_reach_each_emulator_and_refuse_bad_arguments() -> None:
    google, graph, feishu = GoogleEmulator(), GraphEmulator(), FeishuEmulator()
    assert call(google, "lifetime", {"seconds": 5}) is None and google.state.push.max_lifetime == 5
    assert call(graph, "lifetime", {"seconds": 7.5}) is None
    assert graph.max_subscription_lifetime == dt.timedelta(seconds=7.5)
    assert call(google, "subscriptions", {}) == [] and call(feishu, "subscriptions", {}) == []
    with pytest.raises(ValueError, match="seconds"):
        call(google, "lifetime", {"seconds": 0})
    with pytest.raises(TypeError, match="missing argument 'seconds'"):
        call(graph, "lifetime", {})
    with pytest.raises(ValueError, match="no live subscription"):
        call(graph, "lifecycle", {"id": "nope", "event": "missed"})
    with pytest.raises(LookupError, match="no verb 'lifecycle'"):
        call(google, "lifecycle", {"id": "x", "event": "missed"})
    with pytest.raises(LookupError, match="no verb 'lifetime'"):
        call(feishu, "lifetime", {"seconds": 5})
