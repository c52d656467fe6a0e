"""The fault soak: a real emulator behind the fault injector, the real engine and store syncing it in
rounds with server changes between them; once the faults stop, the mirror must equal a fresh full
sync of the server (the conformance kit's comparison)."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from calbridge._run import SyncReport
from calbridge.registry import default_registry
from calbridge.retry import RetryPolicy
from calbridge.testing.kit import Mirror, SeriesBaseHandle, Served, run
from calbridge.testing.server import ThreadedServer
from calbridge.testing.tls import make_test_ca

from ..stateful.handles import HANDLES
from .faults import ACCEPTED, CUT, FAILED, QUARANTINED, RESYNCED, RETRIED, TRANSIENT, Fault, Injector
from .wire import WIRES

TIMEOUT = 0.5  # seconds per request attempt: a slow answer sleeps past it
RETRY = RetryPolicy(attempts=6, base_backoff=0.001, max_backoff=0.01)


@attrs.frozen(kw_only=True)
class Size:
    """How big a soak is: events on the server at the start, faulted rounds, changes between rounds."""

    events: int
    series: int
    rounds: int
    changes: int


CI = Size(events=40, series=4, rounds=10, changes=12)
SLOW = Size(events=60, series=6, rounds=40, changes=15)
SLOW_FEISHU = attrs.evolve(SLOW, rounds=120)  # 50-event pages: few listings, where the page-only kinds land


def size_for(provider: str, *, slow: bool) -> Size:
    """The soak's size for ``provider``: the CI one, or the ``--slow`` one."""
    if not slow:
        return CI
    return SLOW_FEISHU if provider == "feishu" else SLOW


@attrs.frozen(kw_only=True)
class Outcome:
    """One soak: the faults injected and what became of each, requests seen, the clean runs needed."""

    provider: str
    seed: int
    faults: tuple[Fault, ...]
    requests: int
    rounds_failed: int
    clean_runs: int
    problems: tuple[str, ...]

    def table(self) -> Counter[tuple[str, str]]:
        return Counter((f.kind, f.outcome) for f in self.faults)


class SoakServed(Served):
    """:class:`Served` with the injector outermost, in front of the emulator and the kit's dropper."""

    def __init__(self, name: str, emulator: Any, injector: Injector, tmp: Path) -> None:
        ca = make_test_ca(tmp / "ca") if getattr(emulator, "tls", False) else None
        super().__init__(name, emulator, ca_file=None if ca is None else ca.ca_file,
                         server_context=None if ca is None else ca.server_context)  # fmt: skip
        build = self.server._app
        assert callable(build)
        self.server = ThreadedServer(lambda: injector.wrap(build()),
                                     ssl_context=None if ca is None else ca.server_context)  # fmt: skip


class Changes:
    """Server-side changes through the kit's handle: singles and series, their exceptions."""

    def __init__(self, handle: SeriesBaseHandle, now: dt.datetime, rng: random.Random) -> None:
        self.handle, self.day0, self.random = handle, now.replace(hour=0), rng
        self.singles: list[str] = []
        self.series: dict[str, tuple[dt.datetime, int, set[int]]] = {}  # start, count, slots touched
        self.n = 0

    def at(self) -> dt.datetime:
        return self.day0 + dt.timedelta(hours=self.random.randint(-25 * 24, 80 * 24))

    def title(self, what: str) -> str:
        self.n += 1
        return f"{what} {self.n}"

    def create_single(self) -> None:
        start = self.at()
        self.singles.append(self.handle.create_single(self.title("single"), start, start + dt.timedelta(hours=1)))

    def create_series(self) -> None:
        start, count = self.at(), self.random.randint(3, 8)
        sid = self.handle.create_series(self.title("series"), start, start + dt.timedelta(minutes=45),
                                        freq="DAILY", count=count)  # fmt: skip
        self.series[sid] = (start, count, set())

    def touch(self, event_id: str) -> bool:
        """Change ``event_id`` on the server (so the next round lists it again); False: not ours."""
        if event_id in self.singles:
            self.handle.update(event_id, title=self.title("fixed"))
        elif event_id in self.series:
            self.handle.rename_series(event_id, self.title("fixed series"))
        else:
            return False
        return True

    def step(self) -> None:
        """One random change of every kind the handle has."""
        moves = ["create_single", "create_single", "update", "delete"]
        if self.series:
            moves += ["rename_series", "cancel", "move", "delete_series"]
        move = self.random.choice([*moves, "create_series"])
        if move in ("update", "delete") and not self.singles:
            move = "create_single"
        if move == "create_single":
            self.create_single()
        elif move == "create_series":
            self.create_series()
        elif move == "update":
            eid = self.random.choice(self.singles)
            start = self.at()
            self.handle.update(eid, title=self.title("updated"), start=start, end=start + dt.timedelta(hours=2))
        elif move == "delete":
            self.handle.delete(self.singles.pop(self.random.randrange(len(self.singles))))
        elif move == "rename_series":
            self.handle.rename_series(self.random.choice(list(self.series)), self.title("renamed"))
        elif move == "delete_series":
            sid = self.random.choice(list(self.series))
            del self.series[sid]
            self.handle.delete_series(sid)
        else:
            self.exception(cancel=move == "cancel")

    def exception(self, *, cancel: bool) -> None:
        sid = self.random.choice(list(self.series))
        start, count, touched = self.series[sid]
        free = [k for k in range(1, count) if k not in touched]
        if not free:
            return
        k = self.random.choice(free)
        touched.add(k)
        slot = start + dt.timedelta(days=k)
        if cancel:
            self.handle.cancel_occurrence(sid, slot)
        else:
            moved = slot + dt.timedelta(hours=self.random.choice((-3, 2, 5)))
            self.handle.move_occurrence(sid, slot, moved, moved + dt.timedelta(minutes=45))


@contextmanager
def served(provider: str, seed: int, tmp: Path, **kw: Any) -> Iterator[tuple[SeriesBaseHandle, Injector]]:
    emulator = default_registry.emulator(provider)
    injector = Injector(WIRES[provider], emulator, seed=seed, slow=TIMEOUT + 0.5, **kw)
    srv = SoakServed(provider, emulator, injector, tmp).start()
    page_size = _small_google_pages() if provider == "google" else None
    try:
        handle = HANDLES[provider](srv)
        handle.options = {**handle.options, "request_timeout": TIMEOUT}  # type: ignore[misc]
        handle.reset()
        yield handle, injector
    finally:
        srv.stop()
        if page_size is not None:
            _google_provider().PAGE_SIZE = page_size


def _google_provider() -> Any:
    from calbridge_providers.google import _provider

    return _provider


def _small_google_pages() -> str:
    """The google provider always asks for 2,500 a page; ask for the handle's 3 (returns the old value)."""
    module = _google_provider()
    old: str = module.PAGE_SIZE
    module.PAGE_SIZE = str(HANDLES["google"].page_size)
    return old


def soak(provider: str, seed: int, size: Size, tmp: Path, *, now: dt.datetime) -> Outcome:
    """Run one soak; the mirror is compared with a fresh full sync at the end (``problems``)."""
    with served(provider, seed, tmp) as (handle, injector):
        rng = random.Random(seed)
        changes = Changes(handle, now, rng)
        for _ in range(size.events - size.series):
            changes.create_single()
        for _ in range(size.series):
            changes.create_series()
        injector.corruptible = lambda event_id: event_id in changes.singles or event_id in changes.series
        mirror = Mirror(handle, tmp / "mirror", now=now, retry=RETRY)
        failed = 0
        for number in range(1, size.rounds + 1):
            injector.round, injector.on = number, True
            report = run(mirror.sync())
            injector.on = False
            assert report is not None
            failed += not report.ok
            settle(injector, report, changes)
            for _ in range(size.changes):
                changes.step()
        clean = 1 if report.ok else 2  # after a failed round, the first clean run only finishes it
        for _ in range(clean):
            report = run(mirror.sync())
            assert report is not None and report.ok, [(r.error, r.sweep_held) for r in report.calendars]
        return Outcome(provider=provider, seed=seed, faults=tuple(injector.faults), requests=injector.requests,
                       rounds_failed=failed, clean_runs=clean, problems=tuple(compare(handle, mirror)))  # fmt: skip


def settle(injector: Injector, report: SyncReport, changes: Changes) -> None:
    """Give each fault of the round just run the outcome the round's report shows; a quarantined item
    is changed on the server (the wire lied once), so a later round lists it again."""
    (result,) = report.calendars
    for fault in injector.open():
        if fault.kind == "wrong_type":
            fault.outcome = QUARANTINED if result.quarantined else FAILED if result.error else "not quarantined"
            if fault.item and not changes.touch(fault.item):
                fault.outcome += " (deleted since: nothing to relist)"
        elif fault.kind == "dead_cursor" and result.expired:
            fault.outcome = RESYNCED
        elif result.error is not None:
            fault.outcome = CUT if fault.kind in TRANSIENT else FAILED
        else:
            fault.outcome = RETRIED if fault.kind in TRANSIENT else ACCEPTED


def compare(handle: SeriesBaseHandle, mirror: Mirror) -> list[str]:
    """The mirror against a fresh full sync of the same server (windowed for Graph's window-bound cursor)."""
    oracle = mirror.fresh("oracle")
    report = run(oracle.sync())
    assert report is not None and report.ok
    windowed = handle.plugin_name == "graph"
    return run(mirror.snapshot(windowed=windowed)).diff(run(oracle.snapshot(windowed=windowed)))
