"""The plugin kit's conformance suite, run against each built-in provider's emulator."""

from __future__ import annotations

import pytest

from calbridge.testing.kit import EmulatorHandle, EmulatorPool, ProviderConformance

from .handles import FeishuHandle, GoogleHandle, GraphHandle


class TestGoogleConformance(ProviderConformance):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "google"

    @pytest.fixture
    def emulator_handle(self, calbridge_emulators: EmulatorPool, monkeypatch: pytest.MonkeyPatch) -> EmulatorHandle:
        GoogleHandle.small_pages(monkeypatch)
        return GoogleHandle(calbridge_emulators.serve("google"))


class TestGraphConformance(ProviderConformance):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "graph"

    @pytest.fixture
    def emulator_handle(self, calbridge_emulators: EmulatorPool) -> EmulatorHandle:
        return GraphHandle(calbridge_emulators.serve("graph"))


class TestFeishuConformance(ProviderConformance):
    @pytest.fixture
    def plugin_name(self) -> str:
        return "feishu"

    @pytest.fixture
    def emulator_handle(self, calbridge_emulators: EmulatorPool) -> EmulatorHandle:
        return FeishuHandle(calbridge_emulators.serve("feishu"))
