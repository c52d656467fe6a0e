"""The emulator's delta pages cost what they hold: each round computes its items once (from the change
log when it is incremental) and each page renders only its own entries, so big calendars stay fast."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

import calbridge_providers.graph.emulator as emulator_module

from .conftest import Harness, at


def counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Count the calls of the emulator package's ``name`` (its delta code calls it by that name)."""
    calls = [0]
    real: Callable[..., Any] = getattr(emulator_module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(emulator_module, name, wrapper)
    return calls


async def test_a_delta_round_renders_each_entry_once_and_reads_only_the_changes(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = harness.emulator
    ids = [emu.create_event(f"Meeting {i}", at(2026, 3, 2, 9) + dt.timedelta(hours=i),
                            at(2026, 3, 2, 10) + dt.timedelta(hours=i)) for i in range(60)]  # fmt: skip
    renders = counting(monkeypatch, "render")
    expansions = counting(monkeypatch, "instances")
    pages = await harness.sync()  # page_size 3: 20 pages
    delta = [r for r in emu.requests if "/delta" in r.path.lower()]
    assert len(delta) >= 20 and len(harness.mirror) == 60
    assert renders[0] == 60  # not 60 per page
    assert expansions[0] == 60  # one computation of the round's items, sliced by every page
    assert pages[-1].last

    emu.update_event(ids[7], title="Moved")
    emu.delete_event(ids[8])
    renders[0] = expansions[0] = 0
    await harness.sync()
    assert renders[0] == 1  # the update (the removal is not rendered from a definition)
    assert expansions[0] == 4  # old and new of the two changed events, not the calendar
    assert harness.mirror[ids[7]].title == "Moved" and ids[8] not in harness.mirror
