"""The example plugin's emulator, a SQLite store, the engine, the receiver and the subscription manager,
all real and on loopback, for the receiver and subscription tests."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from calbridge_example.emulator import ExampleEmulator

from calbridge.config import parse_config
from calbridge.engine import SyncEngine
from calbridge.registry import Registry, default_registry
from calbridge.service._subscriptions import SubscriptionManager
from calbridge.store.sqlite import SqliteStore
from calbridge.testing.harness import FAST_RETRY
from calbridge.testing.push_rig import PushRig
from calbridge.testing.server import ThreadedServer

ACCOUNT = "ex"


@contextlib.contextmanager
def served(emulator: ExampleEmulator) -> Iterator[ThreadedServer]:
    with ThreadedServer(emulator.make_app()) as server:
        yield server


def account(server: ThreadedServer, emulator: ExampleEmulator, **extra: Any) -> dict[str, Any]:
    entry = emulator.account_config(name=ACCOUNT, base_url=server.url, ca_file=None)
    return {**entry, **extra}


class World:
    """What one test runs: ``store``, ``engine``, ``rig`` (the receiver), ``manager``."""

    store: SqliteStore
    engine: SyncEngine
    rig: PushRig
    manager: SubscriptionManager

    def __init__(self, config: Any) -> None:
        self.config = config

    def acct(self, name: str = ACCOUNT) -> Any:
        return self.config.account(name)


@contextlib.asynccontextmanager
async def world(
    tmp: Path,
    accounts: list[dict[str, Any]],
    *,
    registry: Registry | None = None,
    public_url: bool = True,
    clock: Callable[[], dt.datetime] | None = None,
    lifetime: dt.timedelta = dt.timedelta(hours=1),
    store_path: Path | None = None,
    retry: dt.timedelta = dt.timedelta(seconds=1),
) -> AsyncIterator[World]:
    registry = registry or default_registry
    config = parse_config({"store": "sqlite:///push.db", "accounts": accounts}, base_dir=tmp, env={},
                          registry=registry)  # fmt: skip
    w = World(config)
    now = clock or (lambda: dt.datetime.now(dt.UTC))
    async with (
        SqliteStore(store_path or tmp / "push.db") as store,
        SyncEngine(config, store, registry=registry, clock=now, retry_policy=FAST_RETRY) as engine,
        PushRig(config, store, registry=registry) as rig,
    ):
        w.store, w.engine, w.rig = store, engine, rig
        w.manager = SubscriptionManager(store, engine, rig.url if public_url else None, now, lifetime,
                                        retry=retry)  # fmt: skip
        yield w


__all__ = ["ACCOUNT", "ExampleEmulator", "World", "account", "default_registry", "served", "world"]
