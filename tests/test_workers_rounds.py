"""The emulators' round log (:mod:`calbridge.testing.rounds`), which the many-worker tests read: a full
round over several small pages, then an incremental one, recorded as two rounds and no overlap; two
rounds of one calendar interleaved are recorded as an overlap."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from calbridge.registry import default_registry
from calbridge.testing.control import call, verbs_of
from calbridge.testing.kit import Served
from calbridge.testing.rounds import RoundLog, round_log_of
from calbridge.testing.tls import TestCA

from ._service_world import serve
from ._workers import small_pages, workers_ca  # noqa: F401  (a fixture)
from .stateful.handles import HANDLES
from .test_cli_run import NOW, cli


def test_interleaved_rounds_are_an_overlap_and_continuations_are_not() -> None:
    log = RoundLog()
    log.page("a", sent=None, full=True, more="p1")
    log.page("a", sent="p1", full=False, more="p2")
    log.page("a", sent="sync0", full=False, more=None)  # a second round while the first is open
    log.page("a", sent="p2", full=False, more=None)  # the first goes on: both ran at once
    log.page("b", sent=None, full=True, more=None)
    rounds = log.rounds("a")
    assert [(r.full, r.pages, r.ended is not None) for r in rounds] == [(True, 3, True), (False, 1, True)]
    (overlap,) = log.overlaps()
    assert (overlap.calendar, overlap.earlier, overlap.later, overlap.interleaved) == ("a", 0, 1, True)
    assert log.full_listings() == {"a": 1, "b": 1}
    assert log.summary()["a"] == {"rounds": 2, "full": 1, "open": 0, "overlaps": 1}


@pytest.fixture(params=["google", "graph", "feishu"])
def served(request: pytest.FixtureRequest, workers_ca: TestCA) -> Iterator[Served]:  # noqa: F811
    got = serve(request.param, default_registry, workers_ca)
    yield got
    got.stop()


def test_each_emulator_records_a_paged_full_round_then_an_incremental_one(served: Served, tmp_path: Path) -> None:
    small_pages(served)
    handle = HANDLES[served.name](served)
    handle.reset()
    for i in range(5):
        start = NOW + dt.timedelta(hours=i)
        handle.create_single(f"e {i}", start, start + dt.timedelta(minutes=30))
    entry: dict[str, Any] = handle.account("a")
    config = tmp_path / "calbridge.yaml"
    doc = {"store": "sqlite:///mirror.db", "window": {"past": "30d", "future": "90d"}, "accounts": [entry]}
    config.write_text(yaml.safe_dump(doc))
    for _ in range(2):
        out = cli(config, "sync")
        assert out.returncode == 0, out.stdout + out.stderr
    log = round_log_of(served.emulator)
    assert log is not None
    (cal,) = entry["calendars"]
    rounds = log.rounds()
    assert {r.calendar for r in rounds} == {cal}, rounds
    assert [(r.full, r.ended is not None) for r in rounds] == [(True, True), (False, True)]
    assert rounds[0].pages >= 3, "small pages: the full round spans several"
    assert not log.overlaps()
    assert "rounds" in verbs_of(served.emulator)  # type: ignore[arg-type]
    assert call(served.emulator, "rounds", {})[cal] == {"rounds": 2, "full": 1, "open": 0, "overlaps": 0}  # type: ignore[arg-type]
