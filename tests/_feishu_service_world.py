"""The Feishu emulator and a running :class:`~calbridge.service.Service` over loopback, the app's request
URL set to the service's own ``{public_url}/push/feishu`` through the emulated console, for the
end-to-end push tests (in process; ``calbridge run`` as a process lives in the test module)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from calbridge._run import CalendarResult, ChangeBatch
from calbridge.config import parse_config
from calbridge.model import Delete, Upsert
from calbridge.service import Service
from calbridge.store.sqlite import SqliteStore
from calbridge.testing.server import ThreadedServer
from calbridge_providers.feishu.emulator import FeishuEmulator

APP = "cli_calbridge_demo"
TOKEN = "vt-canary-e2e-verification-7731"
KEY = "ek-canary-e2e-encrypt-7731"
BOUND = 10.0  # seconds: five times and more the contract's "within seconds" on a loaded machine


async def eventually(check: Callable[[], object], timeout: float = BOUND) -> None:
    """Wait until ``check()`` is true, within ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "not within the bound"
        await asyncio.sleep(0.02)


def free_port() -> int:
    """A loopback port free now (the service binds it next: its public_url must name it up front)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def push_settings(key: str | None) -> dict[str, str]:
    return {"verification_token": TOKEN, **({"encrypt_key": key} if key else {})}


def feishu_account(
    emu: FeishuEmulator, base_url: str, name: str, *, kind: str = "user", key: str | None = None,
    push: dict[str, Any] | bool | None = True, calendars: tuple[str, ...] = ("primary",), app: str = APP,
) -> dict[str, Any]:  # fmt: skip
    """A config ``accounts`` entry of ``app``; ``user`` accounts get a fresh refresh token."""
    auth: dict[str, Any] = {"kind": kind, "app_id": app, "app_secret": emu.apps[app]}
    if kind == "user":
        auth["refresh_token"] = emu.issue_refresh_token(app)
    entry: dict[str, Any] = {"name": name, "provider": "feishu", "base_url": base_url, "auth": auth,
                             "calendars": list(calendars)}  # fmt: skip
    if push is True:
        entry["push"] = push_settings(key)
    elif push is not None:
        entry["push"] = push
    return entry


class Changes:
    """What the engine's listener saw: (account, op, event id) per change, in commit order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def __call__(self, batch: ChangeBatch) -> None:
        for change in batch.changes:
            if isinstance(change, Upsert):
                self.seen.append((batch.account, "upsert", change.event.id))
            elif isinstance(change, Delete):
                self.seen.append((batch.account, "delete", change.key.id))


class World:
    """One running service: ``emu``, ``server``, ``store``, ``service``, ``rounds``, ``changes``."""

    emu: FeishuEmulator
    server: ThreadedServer
    store: SqliteStore
    service: Service
    public_url: str
    accounts: list[dict[str, Any]]
    port: int

    def __init__(self) -> None:
        self.rounds: list[CalendarResult] = []
        self.changes = Changes()

    def of(self, account: str) -> list[CalendarResult]:
        return [r for r in self.rounds if r.account == account]

    def listings(self) -> list[dict[str, Any]]:
        """The emulator's event-listing requests so far (``GET …/events``)."""
        return [r for r in self.emu.requests("/events") if r["method"] == "GET" and r["path"].endswith("/events")]

    def provider_requests(self) -> int:
        """Every request the emulator answered (tokens included): forged pushes must add none."""
        return len(self.emu.requests())

    async def until(self, check: Callable[[], object], timeout: float = BOUND) -> None:
        await eventually(check, timeout)

    async def push_state(self, account: str, calendar_id: str = "primary") -> str | None:
        rows = [s for s in await self.store.status() if (s.account, s.calendar_id) == (account, calendar_id)]
        return rows[0].push if rows else None

    async def titles(self) -> list[str]:
        return sorted(e.title or "" for e in await self.store.query())


@contextlib.asynccontextmanager
async def running(
    tmp: Path,
    make_accounts: Callable[[FeishuEmulator, str], list[dict[str, Any]]],
    *,
    key: str | None = None,
    configure: bool = True,
    served: tuple[FeishuEmulator, ThreadedServer] | None = None,
    accounts: list[dict[str, Any]] | None = None,
    port: int | None = None,
) -> AsyncIterator[World]:
    """The emulator served, the service serving (``poll`` 1h, ``public_url`` its own listen address)
    and, with ``configure``, the app's request URL saved in the console (its challenge answered by the
    service) with the verification token and ``key``; the first round of every calendar is done.
    ``served``, ``accounts`` and ``port`` given again: a restart of the same deployment."""
    w = World()
    port = port or free_port()
    w.port = port
    w.public_url = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:
        if served is None:
            w.emu = FeishuEmulator()
            w.server = stack.enter_context(ThreadedServer(w.emu.make_app))
        else:
            w.emu, w.server = served
        accounts = accounts or make_accounts(w.emu, w.server.url)
        w.accounts = accounts
        doc = {"store": "sqlite:///mirror.db", "window": {"past": "30d", "future": "90d"},
               "service": {"listen": f"127.0.0.1:{port}", "public_url": w.public_url, "poll": "1h"},
               "accounts": accounts}  # fmt: skip
        config = parse_config(doc, base_dir=tmp, env={})
        async with SqliteStore(config.store_path) as store, Service(config, store, on_round=w.rounds.append) as svc:
            w.store, w.service = store, svc
            svc.engine.add_listener(w.changes)
            task = asyncio.create_task(svc.serve())
            try:
                if configure:
                    outcome = await asyncio.wrap_future(w.emu.push.configure(
                        APP, verification_token=TOKEN, encrypt_key=key,
                        request_url=f"{w.public_url}/push/feishu"))  # fmt: skip
                    assert outcome is not None and outcome.ok, outcome
                names = [a["name"] for a in accounts]
                await w.until(lambda: all(w.of(n) for n in names))
                yield w
            finally:
                svc.stop()
                await asyncio.wait_for(task, 20)


def at(hours: float) -> dt.datetime:
    """An instant ``hours`` from now, on the hour (inside the service's window)."""
    base = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return base + dt.timedelta(hours=hours)


__all__ = ["APP", "BOUND", "KEY", "TOKEN", "Changes", "World", "at", "eventually", "feishu_account", "free_port",
           "push_settings", "running"]  # fmt: skip
