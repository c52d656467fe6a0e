"""Run one scenario through one provider: its emulator on loopback, the real SyncEngine and
SqliteStore, a full sync, then each scripted step and an incremental sync; after every sync a
quiet round (nothing changed on the server) must publish nothing to the engine's listeners."""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any

import attrs

from calbridge.config import Config, parse_config
from calbridge.engine import ChangeBatch, SyncEngine
from calbridge.model import Delete, Upsert, Window
from calbridge.registry import default_registry
from calbridge.retry import RetryPolicy
from calbridge.store.sqlite import SqliteStore
from calbridge.testing._scenario_catalog import NOW, WINDOW_FUTURE, WINDOW_PAST
from calbridge.testing._scenario_check import Snapshot, normalize
from calbridge.testing.scenario import Scenario, ScenarioLoader
from calbridge.testing.server import ThreadedServer
from calbridge.testing.tls import TestCA
from calbridge_providers.feishu.emulator import FeishuEmulator
from calbridge_providers.google.emulator import GoogleEmulator
from calbridge_providers.graph.emulator import GraphEmulator

PROVIDERS = ("google", "graph", "feishu")
FAST = RetryPolicy(attempts=3, base_backoff=0.01, max_backoff=0.02)


@attrs.define
class Run:
    """What one scenario × provider run saw: a snapshot per logical state, quiet-round problems."""

    scenario: str
    provider: str
    series: list[Snapshot] = attrs.field(factory=list)
    instances: list[Snapshot] = attrs.field(factory=list)
    quiet: list[str] = attrs.field(factory=list)
    error: str | None = None
    lossy: set[str] = attrs.field(factory=set)
    window: Window | None = None
    seconds: float = 0.0


def _describe(batches: list[ChangeBatch]) -> str:
    parts = []
    for b in batches:
        for c in b.changes:
            if isinstance(c, Upsert):
                parts.append(f"upsert {c.event.kind.value} {c.event.id} ({c.event.title!r})")
            else:
                assert isinstance(c, Delete)
                parts.append(f"delete {c.key.id}")
    return "; ".join(parts[:8]) + (f" ... ({len(parts)} changes)" if len(parts) > 8 else "")


class Emulators:
    """The three built-in emulators, each served once for the session (Graph over HTTPS)."""

    def __init__(self, tmp: Path, ca: TestCA) -> None:
        self.tmp = tmp
        self.ca = ca
        self.google = GoogleEmulator()
        self.graph = GraphEmulator()
        self.feishu = FeishuEmulator()
        self.servers = {
            "google": ThreadedServer(self.google.make_app()).start(),
            "graph": ThreadedServer(self.graph.make_app(), ssl_context=ca.server_context).start(),
            "feishu": ThreadedServer(self.feishu.make_app).start(),
        }
        self.runs: dict[tuple[str, str], Run] = {}

    def close(self) -> None:
        for srv in self.servers.values():
            srv.stop()

    def load(self, provider: str, scenario: Scenario) -> tuple[ScenarioLoader, dict[str, Any]]:
        """Load ``scenario`` into a fresh calendar of ``provider``'s emulator; (loader, account entry)."""
        loaded: ScenarioLoader
        if provider == "google":
            loaded = self.google.load_scenario(scenario)
        elif provider == "graph":
            loaded = self.graph.load_scenario(scenario)
        elif provider == "feishu":
            loaded = self.feishu.load_scenario(scenario)
        else:
            raise ValueError(provider)
        ca = str(self.ca.ca_file) if provider == "graph" else None
        return loaded, loaded.account_config(name=f"conf-{provider}", base_url=self.servers[provider].url, ca_file=ca)

    def expire_cursors(self, provider: str) -> None:
        """Every sync/delta token handed out so far is dead (the next round lists everything)."""
        if provider == "google":
            self.google.state.expire_sync_tokens()
        elif provider == "graph":
            self.graph.expire_delta_tokens()
        else:
            self.feishu.expire_sync_tokens()

    async def run(self, scenario: Scenario, provider: str) -> Run:
        """Memoized: each scenario × provider runs once per session."""
        key = (scenario.name, provider)
        if key not in self.runs:
            started = time.monotonic()
            run = Run(scenario=scenario.name, provider=provider)
            try:
                await self._run(scenario, provider, run)
            except Exception as exc:  # recorded: the test reports it with the rest of the run
                run.error = "".join(traceback.format_exception(exc)[-12:])
            run.seconds = time.monotonic() - started
            self.runs[key] = run
        return self.runs[key]

    async def _run(self, scenario: Scenario, provider: str, run: Run) -> None:
        loaded, entry = self.load(provider, scenario)
        run.lossy = loaded.lossy
        where = self.tmp / provider / scenario.name
        where.mkdir(parents=True, exist_ok=True)
        doc = {
            "store": "sqlite:///mirror.db",
            "window": {"past": f"{WINDOW_PAST.days}d", "future": f"{WINDOW_FUTURE.days}d"},
            "accounts": [entry],
        }
        cfg: Config = parse_config(doc, base_dir=where, env={}, registry=default_registry)
        window = cfg.settings.window(NOW)
        run.window = window
        batches: list[ChangeBatch] = []
        async with SqliteStore(cfg.store_path) as store, SyncEngine(
            cfg, store, clock=lambda: NOW, retry_policy=FAST, sleep=_no_sleep
        ) as engine:
            engine.add_listener(batches.append)

            async def sync(label: str, *, full: bool = False) -> None:
                report = await engine.sync(full=full)
                if not report.ok:
                    raise RuntimeError(f"{label}: sync failed: {[c.error for c in report.failures]}")

            async def quiet(label: str, *, full: bool = False) -> None:
                batches.clear()
                await sync(label, full=full)
                if batches:
                    run.quiet.append(f"{label}: {_describe(batches)}")

            async def snapshot() -> None:
                refs = {pid: key for key, pid in loaded.ids.items()}
                run.series.append(normalize(await store.query(include_cancelled=True), refs))
                run.instances.append(
                    normalize(await store.query(window=window, expand=True, include_cancelled=True), refs)
                )

            await sync("initial full sync")
            await snapshot()
            await quiet("quiet round after the full sync")
            for i, step in enumerate(scenario.steps, 1):
                for change in step:
                    loaded.apply(change)
                await sync(f"step {i}")
                await snapshot()
                await quiet(f"quiet round after step {i}")
            await quiet("quiet forced full listing", full=True)
            self.expire_cursors(provider)
            await quiet("quiet round after the server expired the cursor")


async def _no_sleep(seconds: float) -> None:
    return None
