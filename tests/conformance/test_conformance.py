"""Every scenario through every built-in provider: the mirror's series view and instance view,
after the full sync and after each scripted step, equal what the scenario says (the oracle in
``calbridge.testing._scenario_check``) and equal each other, except for the named exemptions.
Quiet rounds (nothing changed on the server) publish nothing."""

from __future__ import annotations

import itertools

import pytest

from calbridge.testing._scenario_catalog import SCENARIOS
from calbridge.testing._scenario_check import diff, exempted, expected_instances, expected_series, judge
from calbridge.testing.scenario import Scenario

from .conftest import MATRIX
from .exemptions import EXEMPTIONS, KnownDefect, exemptions_for, known_defects_for
from .harness import PROVIDERS, Emulators, Run

pytestmark = pytest.mark.timeout(300)


def _label(i: int) -> str:
    return "the full sync" if i == 0 else f"step {i}"


def _triage(problems: list[str], defects: list[KnownDefect]) -> tuple[list[str], list[KnownDefect]]:
    """(problems no known defect explains, the known defects that matched)."""
    matched = [k for k in defects if any(k.problem_contains in p for p in problems)]
    rest = [p for p in problems if not any(k.problem_contains in p for k in matched)]
    return rest, matched


def _expect_defects(scenario: str, provider: str, problems: list[str]) -> None:
    """Fail on unexplained problems or a known defect that no longer shows; xfail on known defects."""
    defects = known_defects_for(scenario, provider)
    rest, matched = _triage(problems, defects)
    assert not rest, f"{scenario} on {provider}:\n" + "\n".join(rest)
    stale = [k.name for k in defects if k not in matched]
    assert not stale, f"known defects that no longer show (remove them from exemptions.py): {stale}"
    if matched:
        pytest.xfail("; ".join(f"known defect {k.name}: {k.where}" for k in matched))


def _views(run: Run) -> dict[str, list[dict[str, dict[str, object]]]]:
    return {"series": run.series, "instances": run.instances}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
async def test_conformance(scenario: Scenario, provider: str, emulators: Emulators) -> None:
    run = await emulators.run(scenario, provider)
    if run.error is not None:
        for view in ("series", "instances", "quiet"):
            MATRIX[(scenario.name, provider, view)] = "✗"
        pytest.fail(f"{scenario.name} on {provider}: {run.error}")
    assert run.window is not None
    states = scenario.states()
    exemptions = exemptions_for(scenario.name, provider)
    problems: list[str] = []
    for view, snapshots in _views(run).items():
        used: set[str] = set()
        bad: list[str] = []
        assert len(snapshots) == len(states)
        for i, (state, actual) in enumerate(zip(states, snapshots, strict=True)):
            expected = expected_series(state) if view == "series" else expected_instances(state, run.window)
            verdict = judge(expected, actual, exemptions)
            used.update(verdict.used)
            bad += [f"{view} view after {_label(i)}: {p}" for p in verdict.problems]
        MATRIX[(scenario.name, provider, view)] = "✗" if bad else ("exempt" if used else "✓")
        problems += bad
    quiet = [f"quiet round published changes: {q}" for q in run.quiet]
    known = _triage(quiet, known_defects_for(scenario.name, provider))
    MATRIX[(scenario.name, provider, "quiet")] = "✗" if known[0] else ("bug" if known[1] else "✓")
    _expect_defects(scenario.name, provider, problems + quiet)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
async def test_providers_agree(scenario: Scenario, emulators: Emulators) -> None:
    """Pairwise, on everything but provider-assigned ids and what an exemption of either side names."""
    runs = {p: await emulators.run(scenario, p) for p in PROVIDERS}
    failed = [p for p, r in runs.items() if r.error]
    assert not failed, f"runs failed: {failed}"
    problems: list[str] = []
    for a, b in itertools.combinations(PROVIDERS, 2):
        fields = [x.field for x in (*exemptions_for(scenario.name, a), *exemptions_for(scenario.name, b))]
        for view in ("series", "instances"):
            for i, (left, right) in enumerate(zip(_views(runs[a])[view], _views(runs[b])[view], strict=True)):
                for p in diff(exempted(left, fields), exempted(right, fields)):
                    problems.append(f"{a} vs {b}, {view} view after {_label(i)}: {p}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_quiet_rounds_publish_nothing(provider: str, emulators: Emulators) -> None:
    """Incremental, forced-full and cursor-expired rounds with nothing changed publish no change
    (Feishu has no etag: the store compares normalized content)."""
    problems = []
    xfails = []
    for scenario in SCENARIOS:
        run = await emulators.run(scenario, provider)
        assert run.error is None, run.error
        rest, matched = _triage(run.quiet, known_defects_for(scenario.name, provider))
        problems += [f"{scenario.name}: {q}" for q in rest]
        xfails += [f"known defect {k.name}" for k in matched if f"known defect {k.name}" not in xfails]
    assert not problems, "\n".join(problems)
    if xfails:
        pytest.xfail("; ".join(xfails))


async def test_every_exemption_is_needed(emulators: Emulators) -> None:
    """An exemption that makes no difference anywhere is stale: remove it (and its docs entry)."""
    used: set[str] = set()
    for scenario in SCENARIOS:
        for state_index, state in enumerate(scenario.states()):
            for provider in PROVIDERS:
                run = await emulators.run(scenario, provider)
                if run.error or run.window is None:
                    continue
                xs = exemptions_for(scenario.name, provider)
                used.update(judge(expected_series(state), run.series[state_index], xs).used)
                used.update(judge(expected_instances(state, run.window), run.instances[state_index], xs).used)
    stale = [x.name for x in EXEMPTIONS if x.name not in used]
    assert not stale, f"exemptions that change nothing: {stale}"


async def test_what_a_loader_could_not_write_is_exempt(emulators: Emulators) -> None:
    """A loader that had to leave a field out says so; that field needs an exemption."""
    missing = []
    for scenario in SCENARIOS:
        for provider in PROVIDERS:
            run = await emulators.run(scenario, provider)
            fields = {x.field for x in exemptions_for(scenario.name, provider)}
            missing += [f"{scenario.name}/{provider}: {f}" for f in sorted(run.lossy - fields)]
    assert not missing, missing


def test_scenario_catalog_covers_the_issue() -> None:
    names = {s.name for s in SCENARIOS}
    assert {
        "weekly-dst-new-york", "weekly-dst-london", "monthly-second-tuesday", "monthly-last-friday",
        "yearly-all-day", "daily-count", "daily-until", "split-this-and-following", "all-day-single",
        "all-day-multi-day", "zone-asia-shanghai", "zone-los-angeles", "zone-utc", "attendee-responses",
        "private", "free-busy", "online-meeting", "unicode-long-text", "zero-duration",
    } <= names  # fmt: skip
