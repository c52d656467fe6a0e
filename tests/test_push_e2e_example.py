"""Issue 13's "plugins can push too", end to end: the example plugin's emulator delivers to a running
service (``poll`` 1h, ``public_url`` its own loopback listen address) in process and as ``calbridge
run``; a change reaches the store by push, forged deliveries ask nothing of the provider, and
``--unsubscribe`` leaves no subscription alive."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from calbridge_example.emulator import ExampleEmulator

from calbridge._run import CalendarResult
from calbridge.config import parse_config
from calbridge.registry import Registry, default_registry
from calbridge.service import Service
from calbridge.store.sqlite import SqliteStore
from calbridge.testing.server import ThreadedServer

from ._feishu_service_world import BOUND, at, free_port
from ._feishu_service_world import eventually as until
from .test_push_e2e_feishu import Run, cli


class Logged:
    """The example emulator served with a middleware logging each request's method, path and query."""

    def __init__(self) -> None:
        self.emu = ExampleEmulator()
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    @web.middleware
    async def log(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.requests.append((request.method, request.path, dict(request.query)))
        return await handler(request)

    def make_app(self) -> web.Application:
        app = self.emu.make_app()
        app.middlewares.insert(0, self.log)
        return app

    def listings(self) -> list[dict[str, str]]:
        return [q for m, p, q in self.requests if m == "GET" and p.endswith("/events")]


@contextlib.contextmanager
def served() -> Iterator[tuple[Logged, ThreadedServer]]:
    logged = Logged()
    with ThreadedServer(logged.make_app) as server:
        yield logged, server


def config_doc(logged: Logged, server: ThreadedServer, port: int, *, push: bool = True) -> dict[str, Any]:
    """The service's config; without ``push`` the account has no ``push`` key (the plugin needs none)."""
    entry = logged.emu.account_config(name="ex", base_url=server.url, ca_file=None)
    return {"store": "sqlite:///mirror.db", "window": {"past": "30d", "future": "90d"},
            "service": {"listen": f"127.0.0.1:{port}", "public_url": f"http://127.0.0.1:{port}", "poll": "1h"},
            "accounts": [{**entry, "push": {}} if push else entry]}  # fmt: skip


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, logged: Logged, server: ThreadedServer, *, push: bool = True, registry: Registry | None = None
) -> AsyncIterator[tuple[Service, list[Any]]]:
    """The service serving; ``registry`` None: a config built in code, its accounts structured by the service."""
    port = free_port()
    config = parse_config(config_doc(logged, server, port, push=push), base_dir=tmp_path, env={}, registry=registry)
    rounds: list[CalendarResult] = []
    async with SqliteStore(config.store_path) as store, Service(config, store, on_round=rounds.append) as svc:
        task = asyncio.create_task(svc.serve())
        try:
            await until(lambda: rounds and logged.emu.subscriptions_alive())
            yield svc, rounds
        finally:
            svc.stop()
            await asyncio.wait_for(task, 20)


async def test_a_change_on_the_example_emulator_reaches_the_service_by_push(tmp_path: Path) -> None:
    with served() as (logged, server):
        async with serving(tmp_path, logged, server) as (svc, rounds), aiohttp.ClientSession() as http:
            assert await svc.store.status() and (await svc.store.status())[0].push.startswith("pushed until ")
            seen: list[str] = []
            svc.engine.add_listener(lambda batch: seen.extend(type(c).__name__ for c in batch.changes))
            before, listed = len(rounds), len(logged.listings())
            eid = logged.emu.add_event("by push", at(2), at(3))
            await until(lambda: len(rounds) > before and seen)
            assert [e.title for e in await svc.store.query()] == ["by push"]
            assert not rounds[before].full and seen == ["Upsert"]
            assert all("sync_token" in q for q in logged.listings()[listed:])
            logged.emu.delete_event(eid)
            await until(lambda: len(rounds) > before + 1)
            assert await svc.store.query() == []
            # Forged: an unknown subscription, a wrong secret, garbage; none asks the provider anything.
            sub = logged.emu.subscriptions_alive()[0]
            asked, done = len(logged.requests), len(rounds)
            url = f"http://127.0.0.1:{svc.port}/push/example"
            body = json.dumps({"subscription": sub, "calendar": "work", "event": eid, "change": "changed"})
            for headers, status in (({"X-Example-Subscription": "sub-999", "X-Example-Secret": "x"}, 404),
                                    ({"X-Example-Subscription": sub, "X-Example-Secret": "wrong"}, 403),
                                    ({}, 400)):  # fmt: skip
                async with http.post(url, data=body, headers=headers) as resp:
                    assert resp.status == status
            async with http.post(url, data=b"x" * (2 * 1024 * 1024)) as resp:
                assert resp.status == 413
            await asyncio.sleep(1.5)
            assert len(logged.requests) == asked and len(rounds) == done


@pytest.mark.parametrize("registry", [None, default_registry], ids=["built-in-code", "loaded"])
async def test_an_account_without_a_push_key_is_pushed_too(tmp_path: Path, registry: Registry | None) -> None:
    with served() as (logged, server):
        async with serving(tmp_path, logged, server, push=False, registry=registry) as (svc, rounds):
            before = len(rounds)
            logged.emu.add_event("by push", at(2), at(3))
            await until(lambda: len(rounds) > before)
            assert [e.title for e in await svc.store.query()] == ["by push"]
            assert [status for _, status, _ in logged.emu.push.deliveries] == [202]


def test_calbridge_run_with_the_example_plugin_pushes_and_unsubscribes(tmp_path: Path) -> None:
    with served() as (logged, server):
        port = free_port()
        config = tmp_path / "calbridge.yaml"
        config.write_text(yaml.safe_dump(config_doc(logged, server, port)))
        run = Run(config, {}, "--unsubscribe")
        try:
            run.wait_for(r"^ex/work: full round, ")
            run.wait_for(r"POST /calendars/work/subscriptions 201")  # -v logs each request
            assert len(logged.emu.subscriptions_alive()) == 1
            status = cli(config, {}, "status")
            assert "pushed until " in status.stdout, status
            logged.emu.add_event("by push", at(2), at(3))
            run.wait_for(r"^ex/work: incremental round, \d+ pages; events 1 upserted", timeout=BOUND)
            events = cli(config, {}, "events", "--format", "jsonl")
            assert [json.loads(line)["title"] for line in events.stdout.splitlines()] == ["by push"]
            code = run.stop(timeout=30)
        finally:
            run.kill()
        assert code == 0, run.lines
        assert logged.emu.subscriptions_alive() == []
