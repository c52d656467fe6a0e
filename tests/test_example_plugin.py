"""The example plugin (examples/calbridge-example-plugin) passes calbridge's plugin kit.

It must be installed (``pip install -e examples/calbridge-example-plugin``): calbridge finds it
through its ``calbridge.providers`` entry point, exactly as it would find any third-party plugin.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from calbridge.registry import Registry
from calbridge.testing.kit import EmulatorHandle, EmulatorPool, ProviderConformance

example = pytest.importorskip(
    "calbridge_example",
    reason="the example plugin is not installed: pip install -e examples/calbridge-example-plugin",
)
from calbridge_example.testing import ExampleHandle  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "calbridge-example-plugin"


def test_the_example_is_found_through_its_entry_point() -> None:
    registry = Registry()
    assert "example" in registry.names()
    assert registry.get("example") is example.plugin


class TestExamplePluginConformance(ProviderConformance):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "example"

    @pytest.fixture
    def emulator_handle(self, calbridge_emulators: EmulatorPool) -> EmulatorHandle:
        return ExampleHandle(calbridge_emulators.serve("example"))


def test_the_example_passes_its_own_test_suite() -> None:
    """What the plugin's author runs, in the plugin's own folder and pytest config."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=EXAMPLE, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
