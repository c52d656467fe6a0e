"""``calbridge emulate`` and ``calbridge demo``: the installed plugins' emulators on loopback.

Every installed provider's emulator (the ``calbridge.emulators`` group, or a plugin's
``create_emulator()``, both through the registry: this module never imports an emulator) is started,
seeded with its sample calendar (plus ``--seed N`` more events), and described in a config file that
points calbridge at it; ``emulate`` also serves the loopback control endpoint
(:mod:`calbridge.testing.control`) and writes a ``service`` section (a free loopback port, its own
``public_url``) so ``calbridge run`` on that config is pushed by the emulators. The serving helpers
come from the testing kit, which only this CLI module of the core may import (an import contract).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from ..model import Window
from ..registry import default_registry
from ..testing.control import control_app, push_account
from ..testing.emulator_api import EmulatorAPI, SeriesEmulatorAPI
from ..testing.server import ThreadedServer

MARKER = "# written by `calbridge emulate`"


def seed_counts(n: int, *, series: bool) -> tuple[int, int]:
    """``--seed N``: N events, one in ten of them a series where the emulator has recurring events."""
    n_series = max(1, n // 10) if series and n >= 2 else 0
    return n - n_series, n_series


@contextlib.contextmanager
def running_emulators(workdir: Path, *, port: int = 0, seed: int = 0) -> Iterator[list[tuple[Any, ThreadedServer]]]:
    """Start every installed emulator (``seed`` more events each); yields (emulator, server) pairs."""
    started: list[tuple[Any, ThreadedServer]] = []
    ca = None
    try:
        for n, name in enumerate(default_registry.emulator_names()):
            emu = default_registry.emulator(name)
            emu.seed_demo()
            if seed and isinstance(emu, EmulatorAPI):
                emu.seed(*seed_counts(seed, series=isinstance(emu, SeriesEmulatorAPI)))
            ssl_ctx = None
            if emu.tls:
                if ca is None:
                    from ..testing.tls import make_test_ca

                    ca = make_test_ca(workdir)
                ssl_ctx = ca.server_context
            server = ThreadedServer(emu.make_app(), port=port + n if port else 0, ssl_context=ssl_ctx).start()
            started.append((emu, server))
        yield started
    finally:
        for _, server in started:
            server.stop()


def free_port(port: int = 0) -> int:
    """``port``, or (0) a loopback port free right now, for ``calbridge run`` to listen on later."""
    if port:
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


Waiter = Callable[[threading.Event], None]


def write_config(
    path: Path, started: list[tuple[Any, ThreadedServer]], workdir: Path, store: str, *, service_port: int | None = None
) -> list[Waiter]:
    """Write the config; with ``service_port``, a ``service`` section listening there on loopback
    (``public_url`` the same address: the emulators accept loopback http) and every account set up
    for push. Returns what must run on threads until an emulator's console takes the URL (Feishu)."""
    ca_file = str(workdir / "calbridge-test-ca.pem")
    public_url = None if service_port is None else f"http://127.0.0.1:{service_port}"
    accounts, waiters = [], []
    for emu, server in started:
        entry = emu.account_config(name=f"demo-{emu.name}", base_url=server.url, ca_file=ca_file if emu.tls else None)
        if public_url is not None:
            entry, waiter = push_account(emu, entry, public_url)
            if waiter is not None:
                waiters.append(waiter)
        accounts.append(entry)
    doc: dict[str, Any] = {"store": store, "window": {"past": "30d", "future": "180d"}}
    if public_url is not None:
        doc["service"] = {"listen": f"127.0.0.1:{service_port}", "public_url": public_url}
    doc["accounts"] = accounts
    path.write_text(MARKER + "\n" + yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return waiters


def run(args: argparse.Namespace) -> int:
    if args.command == "emulate":
        return _emulate(args)
    return asyncio.run(_demo())


def _emulate(args: argparse.Namespace) -> int:
    target = Path(args.write_config or "calbridge.yaml")
    if target.exists() and not target.read_text(encoding="utf-8").startswith(MARKER):
        print(f"calbridge: {target} exists and was not written by `calbridge emulate`; pass --write-config FILE")
        return 2
    workdir = target.resolve().parent
    seed = int(getattr(args, "seed", 0) or 0)
    if seed < 0:
        print("calbridge: --seed takes a number of events >= 0")
        return 2
    with running_emulators(workdir, port=args.port, seed=seed) as started:
        if not started:
            print("calbridge: no installed provider plugin ships an emulator")
            return 1
        service_port = free_port(args.port + len(started) + 1 if args.port else 0)
        waiters = write_config(target, started, workdir, "sqlite:///calbridge.db", service_port=service_port)
        for emu, server in started:
            print(f"{emu.name:8} {server.url}")
        print(f"config written to {target}; try `calbridge -c {target} sync`, then `events --expand`")
        print(f"push: `calbridge -c {target} run` listens on 127.0.0.1:{service_port} (service.listen)")
        named = ((str(emu.name), emu) for emu, _ in started)
        apis: dict[str, EmulatorAPI] = {name: emu for name, emu in named if isinstance(emu, EmulatorAPI)}
        control_port = args.port + len(started) if args.port else 0
        stop = threading.Event()
        threads = [threading.Thread(target=w, args=(stop,), daemon=True) for w in waiters]
        with ThreadedServer(control_app(apis), port=control_port) as control:
            print(f"control endpoint: {control.url} (loopback only; POST /{{emulator}}/{{verb}}, see README)")
            print("Ctrl-C stops the emulators.", flush=True)
            for thread in threads:
                thread.start()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            try:
                stop.wait()
            except KeyboardInterrupt:
                stop.set()
            for thread in threads:
                thread.join(15)
    return 0


async def _demo() -> int:
    from ..config import load_config
    from ..engine import SyncEngine
    from ..store.sqlite import SqliteStore
    from . import _output
    from .main import now

    with tempfile.TemporaryDirectory(prefix="calbridge-demo-") as tmp:
        workdir = Path(tmp)
        with running_emulators(workdir) as started:
            cfg_path = workdir / "calbridge.yaml"
            write_config(cfg_path, started, workdir, "sqlite:///demo.db")
            print("== emulators")
            for emu, server in started:
                print(f"  {emu.name:8} {server.url}")
            config = load_config(cfg_path, registry=default_registry)
            async with SqliteStore(config.store_path) as store:
                changed: list[Any] = []
                async with SyncEngine(config, store, clock=now) as engine:
                    print("\n== first sync (full)")
                    _output.print_report(await engine.sync())
                    upcoming = Window(start=now(), end=config.settings.window(now()).end)
                    events = await store.query(window=upcoming, expand=True)
                    print(f"\n== the next happenings ({len(events)} in the window), first 15")
                    _output.print_events(events[:15], "table")
                    print("\n== server-side changes")
                    for emu, _ in started:
                        for line in emu.demo_changes():
                            print(f"  {emu.name}: {line}")
                    engine.add_listener(changed.append)
                    print("\n== second sync (incremental)")
                    _output.print_report(await engine.sync())
                print("\n== what changed")
                for batch in changed:
                    for change in batch.changes:
                        ev = getattr(change, "event", None)
                        if ev is not None:
                            flag = " [cancelled]" if ev.status.value == "cancelled" else ""
                            when = _output.when_text(ev.start)
                            print(f"  {batch.account}: upsert {ev.kind.value:10} {ev.title!r} ({when}){flag}")
                        else:
                            print(f"  {batch.account}: delete {change.key.id}")
    return 0
