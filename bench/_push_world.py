"""What the push benchmarks share: the three built-in emulators served on loopback in threads of their
own, each with a timing middleware (how long the emulator itself spent answering each request), the
accounts that point calbridge at them with push on, and a listening socket bound before the service
exists (so ``public_url`` names a port that already accepts connections).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from aiohttp import web

from calbridge.registry import default_registry
from calbridge.testing.server import ThreadedServer
from calbridge.testing.tls import TestCA

PROVIDERS = ("google", "graph", "feishu")
FEISHU_APP = "cli_calbridge_demo"
FEISHU_TOKEN = "bench-verification-token"  # a throwaway console value, never printed
FEISHU_KEY = "bench-encrypt-key"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.frozen
class Hit:
    """One request a server answered: ``start``/``end`` are ``time.perf_counter()`` (one clock for
    every thread of the process)."""

    path: str
    start: float
    end: float
    status: int


class Timing:
    """An aiohttp middleware recording every request it wraps (thread-safe: an emulator's thread
    writes, the benchmark reads)."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self._lock = threading.Lock()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        response = await handler(request)
        hit = Hit(request.path, start, time.perf_counter(), response.status)
        with self._lock:
            self.hits.append(hit)
        return response

    def between(self, start: float, end: float, *, path: str = "") -> list[Hit]:
        """The requests that began within [start, end] (and whose path contains ``path``)."""
        with self._lock:
            return [h for h in self.hits if start <= h.start <= end and path in h.path]


@attrs.define
class Emulated:
    """One emulator served in its own thread, its requests timed."""

    name: str
    emulator: Any
    server: ThreadedServer
    timing: Timing
    ca_file: str | None

    def account(self, name: str, calendars: list[str]) -> dict[str, Any]:
        """A config ``accounts`` entry with push on (Feishu: a user token and its app's console values)."""
        entry: dict[str, Any] = self.emulator.account_config(name=name, base_url=self.server.url, ca_file=self.ca_file)
        entry["calendars"] = calendars
        if self.name == "feishu":
            emu = self.emulator
            entry["auth"] = {"kind": "user", "app_id": FEISHU_APP, "app_secret": emu.apps[FEISHU_APP],
                             "refresh_token": emu.issue_refresh_token(FEISHU_APP)}  # fmt: skip
            entry["push"] = {"verification_token": FEISHU_TOKEN, "encrypt_key": FEISHU_KEY}
        return entry

    def stop(self) -> None:
        self.server.stop()


def serve(name: str, ca: TestCA) -> Emulated:
    """A fresh emulator of ``name`` (from the registry) served on loopback, HTTPS where it asks."""
    emulator: Any = default_registry.emulator(name)
    timing = Timing()

    def build() -> web.Application:
        app: web.Application = emulator.make_app()
        app.middlewares.insert(0, timing.middleware)
        return app

    tls = bool(getattr(emulator, "tls", False))
    server = ThreadedServer(build, ssl_context=ca.server_context if tls else None).start()
    return Emulated(name, emulator, server, timing, str(ca.ca_file) if tls else None)


async def point_feishu(emulated: Emulated, public_url: str) -> None:
    """Save ``{public_url}/push/feishu`` as the app's request URL (its challenge must be answered)."""
    future = emulated.emulator.push.configure(FEISHU_APP, verification_token=FEISHU_TOKEN, encrypt_key=FEISHU_KEY,
                                              request_url=f"{public_url}/push/feishu")  # fmt: skip
    outcome = await asyncio.wrap_future(future)
    if outcome is None or not outcome.ok:
        raise SystemExit(f"the Feishu emulator's url_verification failed: {outcome}")


def listening_socket() -> socket.socket:
    """A loopback socket bound and listening now: connections wait in its backlog until served."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def soon(days: float = 1.0) -> dt.datetime:
    """A time inside every sync window: ``days`` from now, on the minute."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).replace(second=0, microsecond=0)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0–1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def config_doc(accounts: list[dict[str, Any]], *, port: int, poll: str = "1h") -> dict[str, Any]:
    """A config document (parse it with ``base_dir`` where the store goes): a SQLite store, the
    service listening on ``port`` with push on."""
    service = {"listen": f"127.0.0.1:{port}", "public_url": f"http://127.0.0.1:{port}", "poll": poll}
    window = {"past": "30d", "future": "180d"}
    return {"store": "sqlite:///bench.db", "window": window, "service": service, "accounts": accounts}
