"""The plugin kit fails a plugin with a planted bug, and runs what a partial handle can: each suite
runs in a pytest of its own (a subprocess), against the real emulators over loopback HTTP."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from calbridge.testing.kit import ProviderConformance

STUCK = '''
import attrs
import pytest
from calbridge_example import ExamplePlugin
from calbridge_example.provider import ExampleProvider
from calbridge_example.testing import ExampleHandle

from calbridge.registry import Registry
from calbridge.testing.kit import ProviderConformance


class StuckProvider(ExampleProvider):
    """The planted bug: the next round's cursor is the one this round was given (never advances)."""

    async def sync(self, calendar_id, cursor, *, window, view):
        async for page in super().sync(calendar_id, cursor, window=window, view=view):
            if page.last and cursor is not None and cursor.state.get("sync_token"):
                page = attrs.evolve(page, cursor=attrs.evolve(page.cursor, state={**cursor.state, "page_token": None}))
            yield page


class StuckPlugin(ExamplePlugin):
    def create(self, ctx):
        return StuckProvider(ctx)


class TestStuckCursor(ProviderConformance):
    @pytest.fixture
    def plugin_name(self):
        return "example"

    @pytest.fixture
    def plugin_registry(self):
        registry = Registry()
        registry.register("example", StuckPlugin())
        return registry

    @pytest.fixture
    def emulator_handle(self, calbridge_emulators):
        return ExampleHandle(calbridge_emulators.serve("example"))
'''

PARTIAL = '''
import pytest

from calbridge.testing.kit import BaseHandle, ProviderConformance


class CancelOnlyHandle(BaseHandle):
    """Series it can create and cancel occurrences of; nothing else of SeriesHandle."""

    options = {"page_size": 2}

    def create_series(self, title, start, end, *, freq, count):
        return self.api.add_event(title, start, end, calendar=self.calendar_id, rrule=f"FREQ={freq};COUNT={count}")

    def cancel_occurrence(self, series_id, original_start):
        self.api.cancel_occurrence(series_id, original_start, calendar=self.calendar_id)


class TestPartial(ProviderConformance):
    @pytest.fixture
    def plugin_name(self):
        return "graph"

    @pytest.fixture
    def emulator_handle(self, calbridge_emulators):
        return CancelOnlyHandle(calbridge_emulators.serve("graph"))
'''


def pytest_run(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_planted.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-rs", "-p", "no:cacheprovider", "test_planted.py", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def outcomes(out: str) -> dict[str, str]:
    found = {}
    for line in out.splitlines():
        if "::" in line and line.rstrip().endswith("%]"):
            name, _, rest = line.partition(" ")
            found[name.rsplit("::", 1)[1]] = rest.split()[0]
    return found


def test_a_plugin_whose_cursor_never_advances_fails_the_kit(tmp_path: Path) -> None:
    pytest.importorskip("calbridge_example")
    proc = pytest_run(tmp_path, STUCK)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    got = outcomes(proc.stdout)
    assert got["test_incremental_create_update_delete"] == "FAILED", got
    assert got["test_a_quiet_round_publishes_nothing"] == "FAILED", got
    assert "does its cursor advance" in proc.stdout
    assert got["test_full_sync_mirrors_the_server"] == "PASSED", "only the rounds after a change show it"


def test_a_handle_with_some_series_methods_runs_the_series_tests_it_can(tmp_path: Path) -> None:
    proc = pytest_run(tmp_path, PARTIAL, "-k", "series or occurrence")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    got = outcomes(proc.stdout)
    assert got == {
        "test_series_expand_into_the_instance_view": "PASSED",
        "test_a_cancelled_occurrence_leaves_the_instance_view": "PASSED",
        "test_a_moved_occurrence_shows_at_its_new_time": "SKIPPED",
        "test_a_renamed_series_renames_its_occurrences": "SKIPPED",
        "test_a_deleted_series_leaves_both_views": "SKIPPED",
    }, got
    reasons = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")]
    assert sorted(r.rsplit(": ", 1)[1] for r in reasons) == [
        f"the handle has no {m} (optional SeriesHandle methods)"
        for m in ("delete_series", "move_occurrence", "rename_series")
    ], reasons


def test_every_kit_test_ends_comparing_with_a_fresh_full_sync() -> None:
    """What the README promises: each check also compares the mirror with a fresh full sync."""
    tests = {n: f for n, f in vars(ProviderConformance).items() if n.startswith("test_")}
    assert len(tests) >= 12
    lacking = [n for n, f in tests.items() if "self.assert_matches_fresh(mirror)" not in inspect.getsource(f)]
    assert not lacking, lacking
