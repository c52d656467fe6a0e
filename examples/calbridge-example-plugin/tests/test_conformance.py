"""The example plugin against calbridge's conformance suite: every test is inherited."""

from __future__ import annotations

import pytest
from calbridge_example.testing import ExampleHandle

from calbridge.testing.kit import EmulatorHandle, EmulatorPool, ProviderConformance


class TestExampleConformance(ProviderConformance):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "example"

    @pytest.fixture
    def emulator_handle(self, calbridge_emulators: EmulatorPool) -> EmulatorHandle:
        # Started through the `example` entry point of the calbridge.emulators group.
        return ExampleHandle(calbridge_emulators.serve("example"))
