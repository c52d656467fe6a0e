"""Fixtures for the conformance run and the matrix printed at the end of the session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from calbridge.testing.tls import make_test_ca

from .harness import PROVIDERS, Emulators

VIEWS = ("series", "instances", "quiet")
MATRIX: dict[tuple[str, str, str], str] = {}
"""(scenario, provider, view) → ✓, ✗, exempt (equal thanks to a named exemption) or bug (a
known defect, xfail); filled by the tests, printed by the summary hook."""


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulators]:
    tmp = tmp_path_factory.mktemp("conformance")
    emus = Emulators(Path(tmp), make_test_ca(Path(tmp) / "ca"))
    try:
        yield emus
    finally:
        emus.close()


def render_matrix() -> list[str]:
    scenarios = list(dict.fromkeys(s for s, _, _ in MATRIX))
    heads = [f"{p}/{v}" for p in PROVIDERS for v in VIEWS]
    width = max(len(s) for s in [*scenarios, "scenario"])
    cols = [max(len(h), 6) for h in heads]
    lines = ["  ".join(["scenario".ljust(width), *(h.ljust(c) for h, c in zip(heads, cols, strict=True))])]
    lines.append("  ".join(["-" * width, *("-" * c for c in cols)]))
    for s in scenarios:
        cells = [MATRIX.get((s, p, v), "·") for p in PROVIDERS for v in VIEWS]
        lines.append("  ".join([s.ljust(width), *(x.ljust(c) for x, c in zip(cells, cols, strict=True))]))
    return lines


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not MATRIX:
        return
    terminalreporter.section("conformance matrix (scenario × provider × view)")
    for line in render_matrix():
        terminalreporter.write_line(line)
    marks = list(MATRIX.values())
    terminalreporter.write_line(
        f"{marks.count('✓')} ✓, {marks.count('exempt')} exempt, {marks.count('bug')} bug, {marks.count('✗')} ✗ "
        "(exemptions: tests/conformance/exemptions.py, docs/conformance.md)"
    )
