"""The one Python API of every shipped emulator (calbridge.testing.emulator_api), driven while the
emulator serves on its own thread and checked through a real sync over loopback HTTP."""

from __future__ import annotations

import datetime as dt
import itertools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from calbridge.testing.emulator_api import EmulatorAPI, SeriesEmulatorAPI
from calbridge.testing.kit import BaseHandle, EmulatorPool, Mirror, run

NOW = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
SERIES = ("google", "graph", "feishu")
_n = itertools.count(1)


def _mirror(pool: EmulatorPool, name: str, tmp_path: Path) -> tuple[EmulatorAPI, str, Mirror]:
    served = pool.serve(name)
    emu = served.emulator
    assert isinstance(emu, EmulatorAPI)
    handle = BaseHandle(served)
    handle.calendar_id = emu.new_calendar(f"api{next(_n)}")
    return emu, handle.calendar_id, Mirror(handle, tmp_path / name, now=NOW)  # type: ignore[arg-type]


def _live(mirror: Mirror) -> dict[str, str | None]:
    snap = run(mirror.snapshot())
    return {e["id"]: e["title"] for e in snap.series.values() if e["status"] != "cancelled"}


@pytest.mark.parametrize("name", [*SERIES, "example"])
def test_singles_cursors_and_faults_through_the_shared_api(
    name: str, calbridge_emulators: EmulatorPool, tmp_path: Path
) -> None:
    pytest.importorskip("calbridge_example") if name == "example" else None
    emu, cal, mirror = _mirror(calbridge_emulators, name, tmp_path)
    at = [NOW + dt.timedelta(days=d) for d in range(1, 7)]
    with ThreadPoolExecutor(4) as pool:  # thread-safe: several writers while the server serves
        ids = list(pool.map(lambda s: emu.add_event(f"e{s:%d}", s, s + dt.timedelta(hours=1), calendar=cal), at))
    assert run(mirror.sync()) is not None
    assert _live(mirror) == {i: f"e{s:%d}" for i, s in zip(ids, at, strict=True)}
    emu.update_event(ids[0], calendar=cal, title="renamed", start=at[0] + dt.timedelta(hours=2),
                     end=at[0] + dt.timedelta(hours=3))  # fmt: skip
    emu.delete_event(ids[1], calendar=cal)
    emu.fail_next(503, count=2)
    emu.fail_next(429, retry_after=0)
    report = run(mirror.sync())
    assert report is not None and report.ok and not report.calendars[0].full
    live = _live(mirror)
    assert live[ids[0]] == "renamed" and ids[1] not in live
    emu.expire_cursors()
    report = run(mirror.sync())
    assert report is not None and report.ok and report.calendars[0].expired
    emu.fail_next(503, count=50)
    emu.clear_faults()
    assert run(mirror.sync()) is not None and run(mirror.sync()).ok  # type: ignore[union-attr]


@pytest.mark.parametrize("name", SERIES)
def test_series_verbs_through_the_shared_api(name: str, calbridge_emulators: EmulatorPool, tmp_path: Path) -> None:
    emu, cal, mirror = _mirror(calbridge_emulators, name, tmp_path)
    assert isinstance(emu, SeriesEmulatorAPI)
    first = NOW + dt.timedelta(days=1)
    sid = emu.add_event("daily", first, first + dt.timedelta(hours=1), calendar=cal, rrule="FREQ=DAILY;COUNT=4")
    emu.cancel_occurrence(sid, first + dt.timedelta(days=1), calendar=cal)
    moved = first + dt.timedelta(days=2, hours=5)
    emu.move_occurrence(sid, first + dt.timedelta(days=2), moved, moved + dt.timedelta(hours=1), calendar=cal)
    weekly = emu.add_event("weekly", first, first + dt.timedelta(hours=1), calendar=cal, rrule="FREQ=WEEKLY;COUNT=3")
    day = (NOW + dt.timedelta(days=3)).date()
    allday = emu.add_event("all day", day, day + dt.timedelta(days=2), calendar=cal)
    assert run(mirror.sync()) is not None
    snap = run(mirror.snapshot())
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    starts = sorted(e["start"]["datetime"] for (s, _), e in snap.instances.items()
                    if s == sid and e["status"] != "cancelled")  # fmt: skip
    want = [first, first + dt.timedelta(days=3), moved]
    assert starts == sorted(w.strftime(fmt) for w in want)
    assert len([k for k in snap.instances if k[0] == weekly]) == 3
    assert snap.series[allday]["start"] == {"date": day.isoformat()}
    assert snap.series[allday]["end"] == {"date": (day + dt.timedelta(days=2)).isoformat()}, "end is exclusive"
    emu.update_event(sid, calendar=cal, title="renamed series")
    emu.delete_event(weekly, calendar=cal)
    assert run(mirror.sync()) is not None
    snap = run(mirror.snapshot())
    assert snap.series[sid]["title"] == "renamed series"
    assert weekly not in _live(mirror) and not [k for k in snap.instances if k[0] == weekly]


@pytest.mark.parametrize("name", SERIES)
def test_seed_writes_singles_and_series(name: str, calbridge_emulators: EmulatorPool, tmp_path: Path) -> None:
    emu, cal, mirror = _mirror(calbridge_emulators, name, tmp_path)
    ids = emu.seed(12, 4, calendar=cal)
    assert len(ids) == 16
    assert run(mirror.sync()) is not None
    snap = run(mirror.snapshot())
    kinds = [e["kind"] for e in snap.series.values() if e["status"] != "cancelled" and e["id"] in ids]
    assert kinds.count("single") == 12 and kinds.count("series") == 4
    assert any(e["kind"] == "exception" for e in snap.series.values()), "some series have a moved occurrence"


def test_the_example_seeds_singles_only(calbridge_emulators: EmulatorPool, tmp_path: Path) -> None:
    pytest.importorskip("calbridge_example")
    emu, cal, mirror = _mirror(calbridge_emulators, "example", tmp_path)
    assert not isinstance(emu, SeriesEmulatorAPI)
    assert len(emu.seed(5, calendar=cal)) == 5
    with pytest.raises(ValueError, match="no recurring events"):
        emu.seed(1, 1, calendar=cal)
    assert run(mirror.sync()) is not None
    assert len(_live(mirror)) >= 5
