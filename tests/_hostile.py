"""A hostile server for the tests: a real emulator behind an aiohttp middleware that answers some of
its requests itself (endless paging, floods, bombs), and the engine run against it."""

from __future__ import annotations

import datetime as dt
import json
import resource
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from calbridge.config import Config, parse_config
from calbridge.engine import SyncEngine, SyncReport
from calbridge.registry import default_registry
from calbridge.retry import RetryPolicy
from calbridge.state import CalendarState
from calbridge.store.sqlite import SqliteStore

FAST = RetryPolicy(attempts=3, base_backoff=0.01, max_backoff=0.02)
Answer = Callable[[web.Request, int], Awaitable[web.StreamResponse]]


class Hostile:
    """Middleware: requests whose path ends with ``path`` (while ``on``) are answered by ``answer(request,
    n)``, n counting from 1; ``hits`` counts them."""

    def __init__(self, path: str, answer: Answer) -> None:
        self.path, self.answer, self.hits, self.on = path, answer, 0, True

    def wrap(self, app: web.Application) -> web.Application:
        app.middlewares.insert(0, self.middleware)
        return app

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not self.on or not request.path.endswith(self.path):
            return await handler(request)
        self.hits += 1
        return await self.answer(request, self.hits)


def answer_json(page: Callable[[web.Request, int], dict[str, Any]]) -> Answer:
    async def answer(request: web.Request, n: int) -> web.StreamResponse:
        return web.json_response(page(request, n))

    return answer


def config(entry: dict[str, Any], tmp: Path, **limits: Any) -> Config:
    doc = {"store": "sqlite:///mirror.db", "window": {"past": "30d", "future": "90d"}, "accounts": [entry]}
    if limits:
        doc["limits"] = limits
    return parse_config(doc, base_dir=tmp, env={}, registry=default_registry)


async def sync(cfg: Config, **kw: Any) -> SyncReport:
    async with SqliteStore(cfg.store_path) as store, SyncEngine(cfg, store, retry_policy=FAST, **kw) as engine:
        return await engine.sync()


async def saved(cfg: Config, calendar_id: str = "primary") -> tuple[CalendarState | None, int]:
    """The calendar's saved state and how many events the store holds."""
    async with SqliteStore(cfg.store_path) as store:
        start = await store.round_start(cfg.accounts[0].name, calendar_id)
        return start.state, len(await store.query(include_cancelled=True))


def raw_states(cfg: Config) -> list[str]:
    """The stored JSON of every calendar_state row, read with sqlite3 directly."""
    import sqlite3

    with sqlite3.connect(cfg.store_path) as db:
        return [row[0] for row in db.execute("SELECT state FROM calendar_state")]


def peak_rss_mib() -> float:
    """This process's peak resident set so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stamp(n: int) -> str:
    return (dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=n)).isoformat()


def dumps(data: Any) -> bytes:
    return json.dumps(data).encode()
