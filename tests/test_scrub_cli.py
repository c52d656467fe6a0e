"""Secrets never leave through server text: token endpoints answering 400 invalid_grant with the posted
form echoed (Graph through msal, Google through google-auth, Feishu), and APIs answering 401 then
500 with the Authorization header echoed. The canary secrets and the tokens the emulators issued
appear nowhere: not in what `calbridge -v sync` and `calbridge status` print, not in the log lines,
not in the store's files."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from calbridge.testing.server import ThreadedServer
from calbridge.testing.tls import TestCA, make_test_ca
from calbridge_providers.feishu.emulator import FeishuEmulator
from calbridge_providers.google.emulator import GoogleEmulator
from calbridge_providers.graph.emulator import GraphEmulator

from ._echoing import hostile
from .conftest import NOW

MARK = "CANARY"  # in every configured secret: the marker survives URL and JSON encoding
CLI = [sys.executable, "-m", "calbridge.cli.main"]


def secret(name: str) -> str:
    return f"{name}-{MARK}-s3cr+t/9z="


def _account(provider: str, mode: str, servers: contextlib.ExitStack, ca: TestCA) -> tuple[dict[str, Any], Any]:
    """An emulator whose credentials are canaries, served behind the hostile middleware."""
    name = f"{provider}-{mode}"
    emu: Any
    if provider == "graph":
        emu = GraphEmulator()
        emu.clients = {"calbridge-client": secret(name)}
    elif provider == "google":
        emu = GoogleEmulator()
        emu.state.add_client("calbridge-client", secret(name), secret(name + "-rt"))
    else:
        emu = FeishuEmulator()
        emu.apps["cli_canary"] = secret(name)
    app = emu.make_app()
    app.middlewares.insert(0, hostile(provider, mode))  # outermost: it sees every request first
    tls = ca.server_context if provider == "graph" else None  # msal insists on HTTPS
    server = servers.enter_context(ThreadedServer(app, ssl_context=tls))
    entry: dict[str, Any] = emu.account_config(name=name, base_url=server.url, ca_file=str(ca.ca_file))
    if provider == "google":
        entry["auth"].update(
            client_id="calbridge-client", client_secret=secret(name), refresh_token=secret(name + "-rt")
        )
    elif provider == "feishu":
        entry["auth"].update(app_id="cli_canary", app_secret=secret(name))
    return entry, emu


def _issued(emu: Any) -> list[str]:
    """The access tokens an emulator handed out (secrets calbridge holds, never configured)."""
    if isinstance(emu, GraphEmulator):
        return list(emu._access)
    if isinstance(emu, GoogleEmulator):
        return list(emu.state.access_tokens)
    return list(emu.tenant_tokens)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_test_ca(tmp_path_factory.mktemp("scrub-ca"))


@pytest.fixture
def hostile_accounts(ca: TestCA) -> Iterator[list[tuple[dict[str, Any], Any]]]:
    with contextlib.ExitStack() as servers:
        yield [_account(p, mode, servers, ca) for p in ("graph", "google", "feishu") for mode in ("token", "api")]


def test_no_secret_in_output_logs_or_store(hostile_accounts: list[tuple[dict[str, Any], Any]], tmp_path: Path) -> None:
    config = tmp_path / "calbridge.yaml"
    doc = {"store": "sqlite:///mirror.db", "window": {"past": "1d", "future": "10d"},
           "accounts": [entry for entry, _ in hostile_accounts]}  # fmt: skip
    config.write_text(yaml.safe_dump(doc))
    env = {**os.environ, "CALBRIDGE_NOW": NOW.strftime("%Y-%m-%dT%H:%M:%SZ")}
    env.pop("CALBRIDGE_SECRET_KEY", None)
    sync = subprocess.run([*CLI, "-c", str(config), "-v", "sync"], capture_output=True, text=True, env=env, timeout=120)
    status = subprocess.run([*CLI, "-c", str(config), "status"], capture_output=True, text=True, env=env, timeout=60)

    assert sync.returncode == 1 and status.returncode == 0, sync.stdout + sync.stderr + status.stderr
    failed = [line for line in sync.stdout.splitlines() if "FAILED" in line]
    assert len(failed) == 6, sync.stdout
    # The errors are still useful: the HTTP status and the provider's code are kept.
    assert "invalid_grant" in sync.stdout and "10014" in sync.stdout
    assert "TransientError" in sync.stdout and "500" in sync.stdout
    assert "<redacted>" in sync.stdout + status.stdout
    tokens = [t for _, emu in hostile_accounts for t in _issued(emu)]
    assert len(tokens) >= 3  # each api account got its tokens, and the hostile API echoed them
    printed = sync.stdout + sync.stderr + status.stdout + status.stderr
    assert "calbridge.http" in sync.stderr  # -v: the log lines are there to be checked
    assert MARK not in printed
    assert not [t for t in tokens if t in printed]
    for path in tmp_path.glob("mirror.db*"):
        assert MARK.encode() not in path.read_bytes(), path
    with sqlite3.connect(tmp_path / "mirror.db") as db:
        errors = [row[0] for row in db.execute("SELECT last_error FROM calendar_status")]
    assert len(errors) == 6 and all(errors)
    assert not [t for t in tokens for e in errors if t in e]
