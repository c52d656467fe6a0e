"""Many ``calbridge run`` workers on one PostgreSQL store, as real processes with real signals (issue 15,
"Done means"): calendars shared out and each in one round at a time, a worker killed mid-round or
stopped past its lease and taken over without a change lost or applied twice, a push relayed to the
holder, a single-use refresh token spent once, ten workers migrating a fresh store once.

Every bound on a promise made "within ``lease``" is five times it (:data:`~tests._workers.WITHIN`).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from calbridge.testing.kit import Served

from ._service_world import free_port
from ._workers import (
    LEASE,
    LOST,
    WITHIN,
    Book,
    Fleet,
    Key,
    applied_twice,
    converge,
    database,  # noqa: F401  (a fixture)
    differences,
    emulators,  # noqa: F401  (a fixture)
    feed,
    fetch,
    fleet_of,  # noqa: F401  (a fixture)
    held_counts,
    holders,
    mirror,
    replay,
    rounds_of,
    until,
    workers_ca,  # noqa: F401  (a fixture)
    write_config,
)
from .test_cli_run import LISTENING, cli

pytestmark = pytest.mark.usefixtures("postgres_database")


def _book(servers: dict[str, Served], per: int, events: int = 3) -> Book:
    book = Book()
    for name, served in servers.items():
        book.account(served, f"{name}-a", per, events)
    return book


def _mid_round(feishu: Served, dsn: str) -> str | None:
    """The worker holding a Feishu calendar whose listing is being answered right now (a slow fault
    holds each a while), if any."""
    emulator: Any = feishu.emulator
    paths = [r["path"] for r in emulator.requests("/events") if r["end"] is None]
    for key, holder in holders(dsn).items():
        if holder is not None and any(f"/{key[1]}/events" in p for p in paths):
            return holder
    return None


def _held_by(dsn: str, worker: str) -> set[Key]:
    return {k for k, h in holders(dsn).items() if h == worker and k[1] != "*"}


def _assert_feed_is_the_mirror(config: Path) -> list[dict[str, Any]]:
    changes = feed(config)
    assert replay(changes) == mirror(config), "the feed replayed from the start is not the mirror: a change lost"
    twice = applied_twice(changes)
    assert not twice, f"changes applied twice: {twice[:3]}"
    return changes


def _stop_all(fleet: Fleet) -> None:
    codes = {name: w.stop(timeout=30) for name, w in fleet.workers.items() if w.proc.poll() is None}
    assert all(code == 0 for code in codes.values()), (codes, fleet.logs())


def test_three_workers_share_the_calendars_each_in_one_round_at_a_time(
    emulators: dict[str, Served],  # noqa: F811
    database: str,  # noqa: F811
    fleet_of: Callable[[Path], Fleet],  # noqa: F811
    tmp_path: Path,
) -> None:
    per = 100  # 300 calendars: about ten seconds on two cores
    book = _book(emulators, per)
    config = write_config(tmp_path, database, book)
    fleet = fleet_of(config)
    fleet.start("w1", "w2", "w3")
    converge(config, book, timeout=60 + per, fleet=fleet)
    total = len(book.keys)
    share = math.ceil(total / 3)

    def balanced() -> dict[str, int] | None:
        counts = held_counts(database)
        fair = all(share / 2 <= counts.get(w, 0) <= share * 1.5 for w in fleet.workers)
        fair = fair and sum(counts.values()) == total
        return counts if fair else None

    counts = until(balanced, WITHIN, f"each of 3 workers holding {share // 2}..{share * 3 // 2} of {total}")
    assert set(counts) == {"w1", "w2", "w3"}
    status = cli(config, "status")
    assert status.returncode == 0, status.stderr
    said = " ".join(status.stdout.split())  # the table wraps at the terminal's width
    assert "3 workers alive:" in said and all(f"w{i} (until" in said for i in (1, 2, 3)), status.stdout
    for served in emulators.values():
        log = rounds_of(served)
        assert not log.overlaps(), f"{served.name}: rounds of one calendar at once: {log.overlaps()[:5]}"
        ours = {cal for (account, cal) in book.keys if account.startswith(served.name)}
        assert log.full_listings() == dict.fromkeys(ours, 1), f"{served.name}: a first full listing repeated"
        assert all(r.pages >= 2 for r in log.rounds() if r.full), "small pages: every full round spans pages"
    _stop_all(fleet)
    assert not differences(config, book)


@pytest.mark.timeout(240)
def test_kill_9_mid_round_the_calendars_move_within_lease_and_nothing_is_lost_or_doubled(
    emulators: dict[str, Served],  # noqa: F811
    database: str,  # noqa: F811
    fleet_of: Callable[[Path], Fleet],  # noqa: F811
    tmp_path: Path,
) -> None:
    book = _book(emulators, 6)
    config = write_config(tmp_path, database, book, poll="1s")
    fleet = fleet_of(config)
    fleet.start("w1", "w2")
    converge(config, book, timeout=60, fleet=fleet)
    until(lambda: len(_held_by(database, "w1")) >= 6, WITHIN, "w1 holding its share")
    for key in book.keys:
        book.change(key)
    feishu: Any = emulators["feishu"].emulator
    feishu.slow(1.5, path="/events", count=10_000)  # each listing held a while: rounds are mid-way
    name = until(lambda: _mid_round(emulators["feishu"], database), WITHIN, "a worker mid-round", every=0.05)
    victim, survivor = fleet[name], fleet["w2" if name == "w1" else "w1"]
    victim.kill9()
    killed = time.monotonic()
    feishu.clear_faults()
    until(lambda: len(_held_by(database, survivor.name)) == len(book.keys), WITHIN, "the survivor holding all")
    assert time.monotonic() - killed < WITHIN
    converge(config, book, timeout=60, fleet=fleet)
    _assert_feed_is_the_mirror(config)
    assert survivor.proc.poll() is None, survivor.log()


@pytest.mark.timeout(240)
def test_a_worker_stopped_past_its_lease_commits_nothing_when_it_wakes(
    emulators: dict[str, Served],  # noqa: F811
    database: str,  # noqa: F811
    fleet_of: Callable[[Path], Fleet],  # noqa: F811
    tmp_path: Path,
) -> None:
    book = _book(emulators, 4)
    config = write_config(tmp_path, database, book, poll="1s")
    fleet = fleet_of(config)
    fleet.start("w1", "w2")
    converge(config, book, timeout=60, fleet=fleet)
    until(lambda: len(_held_by(database, "w1")) >= 4, WITHIN, "w1 holding its share")
    feishu: Any = emulators["feishu"].emulator
    feishu.slow(1.5, path="/events", count=10_000)
    name = until(lambda: _mid_round(emulators["feishu"], database), WITHIN, "a worker mid-round", every=0.05)
    w1, w2 = fleet[name], fleet["w2" if name == "w1" else "w1"]
    w1.pause()  # its page is answered while it sleeps; it wakes holding it
    stopped = time.monotonic()
    feishu.clear_faults()
    until(lambda: len(_held_by(database, w2.name)) == len(book.keys), WITHIN, "the other taking every calendar")
    assert time.monotonic() - stopped < WITHIN
    for key in book.keys:
        book.change(key)
    converge(config, book, timeout=60, fleet=fleet)
    before = len(feed(config))
    seen = len(w1.lines)
    w1.resume()
    time.sleep(3 * LEASE)  # it notices, gives up what it lost, perhaps claims a share again
    after = w1.lines[seen:]
    assert w1.proc.poll() is None, w1.log()
    assert any(LOST.search(line) or re.search(r"\blost [1-9]", line) for line in after), (
        "the woken worker never said it lost its leases:\n" + "\n".join(after)
    )
    assert len(feed(config)) == before, "the woken worker committed something: " + str(feed(config)[before:][:3])
    assert not differences(config, book)
    _assert_feed_is_the_mirror(config)
    _stop_all(fleet)


@pytest.mark.timeout(180)
def test_a_push_reaching_a_worker_that_does_not_hold_the_calendar_runs_one_round_by_the_holder(
    emulators: dict[str, Served],  # noqa: F811
    database: str,  # noqa: F811
    fleet_of: Callable[[Path], Fleet],  # noqa: F811
    tmp_path: Path,
) -> None:
    book = Book()
    book.account(emulators["google"], "google-a", 6, 2)
    ports = {"w1": free_port(), "w2": free_port()}
    config = write_config(tmp_path, database, book, public_url=f"http://127.0.0.1:{ports['w1']}")
    fleet = fleet_of(config)
    w1, w2 = fleet.start("w1", "w2", ports=ports)  # every notice reaches w1
    converge(config, book, timeout=60, fleet=fleet)
    google: Any = emulators["google"].emulator
    until(lambda: len(_held_by(database, "w2")) == 3, WITHIN, "w2 holding half")
    until(lambda: len(google.state.push.channels()) >= 6, 5 * 5, "a channel for every calendar")
    key = sorted(_held_by(database, "w2"))[0]
    cal = book.served_by(key)[1]
    log = rounds_of(emulators["google"])
    rounds_before, w1_before, w2_before = len(log.rounds(cal)), w1.finished_of(key), w2.finished_of(key)
    book.change(key)  # Google pushes to public_url: w1's port
    until(lambda: w2.finished_of(key) > w2_before, 5 * 5, f"a round of {key} by its holder w2", every=0.1)
    time.sleep(LEASE)  # room for a second round, if one were to follow
    assert w2.finished_of(key) == w2_before + 1, w2.log()
    assert w1.finished_of(key) == w1_before, w1.log()  # the worker the notice reached ran none
    assert len(log.rounds(cal)) == rounds_before + 1
    converge(config, book, timeout=10, fleet=fleet)
    _stop_all(fleet)


@pytest.mark.timeout(180)
def test_two_workers_of_one_feishu_user_account_spend_each_refresh_token_once(
    emulators: dict[str, Served],  # noqa: F811
    database: str,  # noqa: F811
    fleet_of: Callable[[Path], Fleet],  # noqa: F811
    tmp_path: Path,
) -> None:
    feishu: Any = emulators["feishu"].emulator
    app = emulators["feishu"].account_config("x")["auth"]["app_id"]
    book = Book()
    book.account(emulators["feishu"], "feishu-u", 6, 2, kind="user", refresh_token=feishu.issue_refresh_token(app))
    config = write_config(tmp_path, database, book, poll="1s")
    fleet = fleet_of(config)
    w1, w2 = fleet.start("w1", "w2")
    converge(config, book, timeout=60, fleet=fleet)
    until(lambda: len(_held_by(database, "w1")) == 3 and len(_held_by(database, "w2")) == 3, WITHIN, "3 each")
    spent = len(feishu.requests("/authen/v2/oauth/token"))
    # Each refresh answered two seconds late: the other worker's rounds meanwhile find the access
    # token revoked too, and would spend the same refresh token were they not made to wait.
    feishu.slow(2.0, path="/authen/v2/oauth/token", count=10)
    feishu.revoke_access_tokens()
    for key in book.keys:
        book.change(key)
    converge(config, book, timeout=60, fleet=fleet)
    grants = feishu.requests("/authen/v2/oauth/token")
    assert len(grants) > spent, "no refresh happened after the access tokens were revoked"
    with feishu.lock:
        dead = [t for t, (_, alive) in feishu.refresh_tokens.items() if not alive]
    # Each grant request spent one live token; a reused one would be refused and spend nothing.
    assert len(grants) == len(dead), (len(grants), len(dead), fleet.logs())
    for worker in (w1, w2):
        assert {k for k, _ in worker.finished()} & set(book.keys), f"{worker.name} ran no round"
    failed = [line for w in (w1, w2) for line in w.lines if "FAILED" in line]
    assert not failed, failed
    _stop_all(fleet)


@pytest.mark.timeout(180)
def test_ten_workers_starting_at_once_on_an_empty_database_migrate_it_once(
    emulators: dict[str, Served],  # noqa: F811
    database: str,  # noqa: F811
    fleet_of: Callable[[Path], Fleet],  # noqa: F811
    tmp_path: Path,
) -> None:
    book = Book()
    book.account(emulators["google"], "google-a", 10, 1)
    config = write_config(tmp_path, database, book)
    fleet = fleet_of(config)
    started = fleet.start(*(f"w{i}" for i in range(10)))
    for worker in started:
        worker.wait_for(LISTENING, timeout=90)
    from calbridge.store.postgres import _schema

    versions = [r["version"] for r in fetch(database, "SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == list(range(1, _schema.SCHEMA_VERSION + 1))
    converge(config, book, timeout=60, fleet=fleet)
    errors = [line for w in started for line in w.lines if "Traceback" in line or "ERROR" in line]
    assert not errors, errors
    _stop_all(fleet)
