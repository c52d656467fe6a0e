"""A quiet round is one list request per calendar (issue 11), counted from the emulators' logs
(:meth:`~calbridge.testing.emulator_api.RequestLog.answered`, token endpoints included): Google's
events.list with its syncToken, Graph's one delta request with its deltatoken, Feishu's events list
with its sync_token — and no attendee, token, discovery or calendar-list request once the first run
is done, though every run is a new engine and store (as every ``calbridge sync`` process is), because
the access token is reused from the store's secret slot.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import pytest

from calbridge.testing.emulator_api import Answered, RequestLog, SeriesEmulatorAPI
from calbridge.testing.kit import BaseHandle, EmulatorPool, Mirror, run

NOW = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
CALENDARS = 3
# The list request of each provider and the query parameter that carries its cursor.
LIST = {
    "google": ("/events", "syncToken"),
    "graph": ("/calendarView/delta", "$deltatoken"),
    "feishu": ("/events", "sync_token"),
}
_n = itertools.count(1)


class Calendars(BaseHandle):
    """The emulator's default account with several calendars named in its config."""

    def __init__(self, served: Any, calendars: list[str]) -> None:
        super().__init__(served)
        self.calendars = calendars

    def account(self, name: str) -> dict[str, Any]:
        return {**super().account(name), "calendars": list(self.calendars)}


def _mirror(pool: EmulatorPool, name: str, tmp_path: Path) -> tuple[Any, list[str], Mirror]:
    served = pool.serve(name)
    emu = served.emulator
    assert isinstance(emu, SeriesEmulatorAPI) and isinstance(emu, RequestLog)
    cals = [emu.new_calendar(f"quiet{next(_n)}") for _ in range(CALENDARS)]
    for cal in cals:
        for i in range(4):
            start = NOW + dt.timedelta(days=i - 1, hours=i)
            emu.add_event(f"single {i}", start, start + dt.timedelta(hours=1), calendar=cal)
        emu.add_event("weekly", NOW, NOW + dt.timedelta(hours=1), calendar=cal, rrule="FREQ=WEEKLY")
    return emu, cals, Mirror(Calendars(served, cals), tmp_path / f"{name}{next(_n)}", now=NOW)


def _round(emu: RequestLog, mirror: Mirror) -> list[Answered]:
    before = len(emu.answered())
    report = run(mirror.sync())
    assert report is not None and report.ok, [r.error for r in report.calendars]
    return emu.answered()[before:]


def _calendar_of(req: Answered, cals: list[str]) -> str | None:
    return next((c for c in cals if f"/calendars/{c}/" in req.path), None)


@pytest.mark.parametrize("name", ["google", "graph", "feishu"])
def test_a_quiet_round_is_one_list_request_per_calendar(
    name: str, calbridge_emulators: EmulatorPool, tmp_path: Path
) -> None:
    emu, cals, mirror = _mirror(calbridge_emulators, name, tmp_path)
    path, cursor = LIST[name]
    first = _round(emu, mirror)
    assert any(r.identity for r in first)  # the first run fetched a token (the slot was empty)
    mine = [r for r in first if not r.identity]
    listed = [_calendar_of(r, cals) for r in mine if r.path.endswith(path) and not r.query.get(cursor)]
    assert sorted(listed) == sorted(cals), mine  # and it listed every calendar in full
    if name == "feishu":
        assert any(r.path.endswith("/attendees") for r in mine)  # the list carries no attendees

    for _ in range(2):  # two quiet rounds, each a fresh engine and store: the same requests every time
        sent = _round(emu, mirror)
        assert not [r for r in sent if r.identity], sent  # no token or discovery request: the slot's token
        assert all(r.method == "GET" and r.path.endswith(path) and r.query.get(cursor) for r in sent), sent
        assert sorted(_calendar_of(r, cals) or r.path for r in sent) == sorted(cals), sent


def test_a_token_refused_after_it_came_from_the_slot_is_fetched_anew(
    calbridge_emulators: EmulatorPool, tmp_path: Path
) -> None:
    """Graph's msal cache (stored with the token) still holds the refused token when a process starts
    from the slot: it is purged before msal is asked, so the identity provider is asked once."""
    emu, _, mirror = _mirror(calbridge_emulators, "graph", tmp_path)
    _round(emu, mirror)
    assert not [r for r in _round(emu, mirror) if r.identity]
    emu.revoke_access_tokens()
    sent = _round(emu, mirror)
    tokens = [r for r in sent if r.identity and r.method == "POST"]
    assert len(tokens) == 1, sent
    assert not [r for r in _round(emu, mirror) if r.identity]  # the new token is the slot's now


@pytest.mark.parametrize("name", ["google", "graph", "feishu"])
def test_a_quiet_round_of_the_primary_calendar_is_one_list_request(
    name: str, calbridge_emulators: EmulatorPool, tmp_path: Path
) -> None:
    """``calendars: [primary]`` (the emulators' default account): Feishu resolves ``primary`` with
    ``POST calendars/primary`` once, and keeps the real id in its cursor for the rounds after."""
    served = calbridge_emulators.serve(name)
    emu = served.emulator
    assert isinstance(emu, RequestLog) and isinstance(emu, SeriesEmulatorAPI)
    emu.add_event("in the default calendar", NOW, NOW + dt.timedelta(hours=1))  # the one its account reads
    mirror = Mirror(BaseHandle(served), tmp_path / f"{name}{next(_n)}", now=NOW)
    _round(emu, mirror)
    for _ in range(2):
        sent = _round(emu, mirror)
        assert len(sent) == 1 and sent[0].path.endswith(LIST[name][0]) and sent[0].query.get(LIST[name][1]), sent
