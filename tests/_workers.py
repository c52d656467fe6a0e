"""Many ``calbridge run`` workers on one PostgreSQL store, for the multi-process tests of issue 15:
the three emulators served in this process (threads) with small pages and a round log each, N
calendars per account, a config whose store is a database of this test's own, worker processes to
start, kill, stop and continue, and the readers that say whether the mirror matches the emulators
(``calbridge events``), what the feed replays to (``calbridge changes``) and who holds what (``leases``).

The truth is what the test wrote through the emulators' API (:class:`Book`); the mirror must equal
it exactly, each event once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from calbridge.registry import default_registry
from calbridge.testing.kit import Served
from calbridge.testing.rounds import RoundLog, round_log_of
from calbridge.testing.tls import TestCA

from ._postgres import _admin, _unreachable, admin_dsn, with_database
from ._service_world import free_port, serve
from .stateful.handles import HANDLES
from .test_cli_run import LISTENING, NOW, Run, cli

LEASE = 2.0  # service.lease, seconds
WITHIN = 5 * LEASE  # every bound on what the contract promises "within lease"
PAGE = 2  # events a sync page, so every round spans pages
DONE = re.compile(r"^(\S+)/(\S+): (full|incremental) round, (\d+) pages; ")
LOST = re.compile(r"lease lost|lost its lease|LeaseLost", re.IGNORECASE)

Key = tuple[str, str]


@pytest.fixture
def database() -> Iterator[str]:
    """A database of this test's own (every worker's store; the store's tables sit in ``public``)."""
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        _unreachable("asyncpg is not installed (pip install 'calbridge[postgres]')")
    name = f"calbridge_mp_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(admin_dsn(), f"CREATE DATABASE {name}"))
    except Exception as exc:  # refused, timed out, auth: whatever keeps us from the server
        _unreachable(f"the server answered {type(exc).__name__}: {exc}")
    try:
        yield with_database(admin_dsn(), name)
    finally:
        asyncio.run(_admin(admin_dsn(), f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def small_pages(served: Served) -> None:
    """At most :data:`PAGE` events a sync page (Google and Feishu serve fewer than asked; Graph is
    asked for that many by the account's options)."""
    emulator: Any = served.emulator
    if served.name == "google":
        emulator.state.max_results = PAGE
    elif served.name == "feishu":
        emulator.page_cap = PAGE


def rounds_of(served: Served) -> RoundLog:
    log = round_log_of(served.emulator)
    assert log is not None, f"the {served.name} emulator records no rounds"
    return log


@pytest.fixture(scope="session")
def workers_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    from calbridge.testing.tls import make_test_ca

    return make_test_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def emulators(workers_ca: TestCA) -> Iterator[dict[str, Served]]:
    """Fresh Google, Graph (HTTPS) and Feishu emulators with small pages."""
    served = {name: serve(name, default_registry, workers_ca) for name in ("google", "graph", "feishu")}
    try:
        for one in served.values():
            small_pages(one)
        yield served
    finally:
        for one in served.values():
            one.stop()


class Book:
    """The calendars made on the emulators and what each holds (the truth the mirror must equal)."""

    def __init__(self) -> None:
        self.truth: dict[Key, dict[str, str]] = {}
        self.entries: list[dict[str, Any]] = []
        self._where: dict[Key, tuple[Served, str]] = {}  # key -> (emulator, its calendar id)
        self._n = 0

    def account(self, served: Served, name: str, calendars: int, events: int, **auth: Any) -> dict[str, Any]:
        """An account of ``calendars`` fresh calendars on ``served``, ``events`` singles each."""
        handle = HANDLES[served.name](served)
        handle.reset()
        entry = handle.account(name)
        if auth:
            entry["auth"] = {**entry["auth"], **auth}
        api: Any = served.emulator
        ids = []
        for c in range(calendars):
            cal = api.new_calendar(f"{name}-c{c:03d}")
            ids.append(cal)
            self.truth[(name, cal)] = {}
            self._where[(name, cal)] = (served, cal)
            for _ in range(events):
                self.add((name, cal))
        entry["calendars"] = ids
        self.entries.append(entry)
        return entry

    def add(self, key: Key, title: str | None = None) -> str:
        served, cal = self._where[key]
        self._n += 1
        title = title or f"{key[0]} e{self._n:05d}"
        start = NOW + dt.timedelta(hours=self._n % 500)
        eid: str = served.emulator.add_event(title, start, start + dt.timedelta(minutes=30), calendar=cal)  # type: ignore[attr-defined]
        self.truth[key][eid] = title
        return eid

    def rename(self, key: Key, eid: str, title: str) -> None:
        served, cal = self._where[key]
        served.emulator.update_event(eid, calendar=cal, title=title)  # type: ignore[attr-defined]
        self.truth[key][eid] = title

    def delete(self, key: Key, eid: str) -> None:
        served, cal = self._where[key]
        served.emulator.delete_event(eid, calendar=cal)  # type: ignore[attr-defined]
        del self.truth[key][eid]

    def change(self, key: Key) -> None:
        """One of each: an event added, one renamed, one deleted (when there are two to touch)."""
        ids = sorted(self.truth[key])
        if len(ids) >= 2:
            self.rename(key, ids[0], self.truth[key][ids[0]] + " (renamed)")
            self.delete(key, ids[1])
        self.add(key)

    def served_by(self, key: Key) -> tuple[Served, str]:
        return self._where[key]

    @property
    def keys(self) -> list[Key]:
        return sorted(self.truth)


def write_config(tmp: Path, dsn: str, book: Book, *, public_url: str | None = None, **service: str) -> Path:
    """The config every worker runs: the PostgreSQL store, ``lease`` :data:`LEASE`, the book's accounts."""
    svc: dict[str, Any] = {"lease": f"{LEASE:g}s", "poll": "1h", **service}
    if public_url is not None:
        svc["public_url"] = public_url
    doc = {"store": dsn, "window": {"past": "30d", "future": "90d"}, "service": svc, "accounts": book.entries}
    config = tmp / "calbridge.yaml"
    config.write_text(yaml.safe_dump(doc))
    return config


class Worker(Run):
    """One ``calbridge run --worker NAME --listen 127.0.0.1:PORT`` process (its stderr read as it comes)."""

    def __init__(self, config: Path, name: str, port: int | None = None) -> None:
        self.name = name
        self.listen_port = port or free_port()
        super().__init__(config, "--worker", name, "--listen", f"127.0.0.1:{self.listen_port}")

    def finished(self) -> list[tuple[Key, str]]:
        """The rounds it finished: (calendar, full|incremental), in order."""
        return [((m.group(1), m.group(2)), m.group(3)) for line in list(self.lines) if (m := DONE.match(line))]

    def finished_of(self, key: Key) -> int:
        return sum(1 for k, _ in self.finished() if k == key)

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def log(self) -> str:
        return f"--- {self.name} ---\n" + "\n".join(self.lines[-60:])


class Fleet:
    """The workers a test started; every one still running is killed at the end."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.workers: dict[str, Worker] = {}

    def start(self, *names: str, ports: dict[str, int] | None = None) -> list[Worker]:
        """Start the workers together; returns once each says it is listening (the store made)."""
        started = [Worker(self.config, name, (ports or {}).get(name)) for name in names]
        self.workers.update((w.name, w) for w in started)
        for worker in started:
            worker.wait_for(LISTENING, timeout=90)
        return started

    def __getitem__(self, name: str) -> Worker:
        return self.workers[name]

    def logs(self) -> str:
        return "\n".join(w.log() for w in self.workers.values())

    def close(self) -> None:
        for worker in self.workers.values():
            if worker.proc.poll() is None:
                worker.resume()  # a stopped process does not die of SIGKILL until continued on some kernels
                worker.kill()


@pytest.fixture
def fleet_of() -> Iterator[Callable[[Path], Fleet]]:
    made: list[Fleet] = []

    def make(config: Path) -> Fleet:
        made.append(Fleet(config))
        return made[-1]

    yield make
    for fleet in made:
        fleet.close()


# -- the readers --------------------------------------------------------------------------------


def _jsonl(config: Path, *args: str) -> list[dict[str, Any]]:
    out = cli(config, *args)
    assert out.returncode == 0, out.stdout + out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def mirror(config: Path) -> dict[Key, list[tuple[str, str]]]:
    """What the store holds, per calendar: (id, title) of every event, sorted (a duplicate shows twice)."""
    out: dict[Key, list[tuple[str, str]]] = {}
    for e in _jsonl(config, "events", "--format", "jsonl"):
        out.setdefault((e["account"], e["calendar_id"]), []).append((e["id"], e["title"]))
    return {k: sorted(v) for k, v in out.items()}


def want(book: Book) -> dict[Key, list[tuple[str, str]]]:
    return {k: sorted(v.items()) for k, v in book.truth.items() if v}


def differences(config: Path, book: Book) -> list[str]:
    got, expected = mirror(config), want(book)
    return [f"{k}: mirror {got.get(k)} != emulator {expected.get(k)}"
            for k in sorted(set(got) | set(expected)) if got.get(k) != expected.get(k)]  # fmt: skip


def until(check: Callable[[], Any], timeout: float, what: str, *, every: float = 0.5) -> Any:
    """Poll ``check`` until it returns something true (returned); AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


def converge(config: Path, book: Book, timeout: float, fleet: Fleet | None = None) -> None:
    """Until the mirror equals the emulators; the differences and the workers' logs otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        diff = differences(config, book)
        if not diff:
            return
        if time.monotonic() > deadline:
            logs = "" if fleet is None else "\n" + fleet.logs()
            raise AssertionError(f"no convergence within {timeout:g}s; {len(diff)} calendars differ:\n"
                                 + "\n".join(diff[:10]) + logs)  # fmt: skip
        time.sleep(1.0)


def feed(config: Path) -> list[dict[str, Any]]:
    """The whole change feed, from the start."""
    return _jsonl(config, "changes", "--after", "0")


def replay(changes: list[dict[str, Any]]) -> dict[Key, list[tuple[str, str]]]:
    """The feed applied by key: what a consumer that read it from the start holds."""
    held: dict[tuple[str, str, str], str] = {}
    for c in changes:
        key = (c["account"], c["calendar_id"], c["id"])
        if c["op"] == "delete":
            held.pop(key, None)
        else:
            held[key] = c["event"]["title"]
    out: dict[Key, list[tuple[str, str]]] = {}
    for (account, cal, eid), title in held.items():
        out.setdefault((account, cal), []).append((eid, title))
    return {k: sorted(v) for k, v in out.items()}


def applied_twice(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Changes that repeat the one before them for the same event (an upsert equal to what the
    mirror held, or a second delete): the feed records only real changes, so each is a change applied twice."""
    last: dict[tuple[str, str, str], tuple[str, Any]] = {}
    twice = []
    for c in changes:
        key = (c["account"], c["calendar_id"], c["id"])
        now = (c["op"], c["event"])
        if last.get(key) == now:
            twice.append(c)
        last[key] = now
    return twice


def _fetch(dsn: str, sql: str) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        import asyncpg

        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            return [dict(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(go())


def holders(dsn: str) -> dict[Key, str | None]:
    """Who holds each calendar now (``leases``; an expired lease counts as held by no one)."""
    rows = _fetch(dsn, "SELECT account, calendar_id, holder, expires > now() AS live FROM leases")
    return {(r["account"], r["calendar_id"]): (r["holder"] if r["live"] else None) for r in rows}


def held_counts(dsn: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key, holder in holders(dsn).items():
        if holder is not None and key[1] != "*":
            counts[holder] = counts.get(holder, 0) + 1
    return counts


def fetch(dsn: str, sql: str) -> list[dict[str, Any]]:
    """Rows of ``sql`` on the store's database (the schema's tables: ``leases``, ``workers``, …)."""
    return _fetch(dsn, sql)
