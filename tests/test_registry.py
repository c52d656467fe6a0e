"""The registry's three groups: production providers (``calbridge.providers``), their emulators
(``calbridge.emulators``, with a plugin's ``create_emulator()`` as the fallback), and the kit's test
doubles (``calbridge.testing.providers``), which production never lists or loads."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml

import calbridge.registry as registry_module
from calbridge import emulation
from calbridge.emulation import EmulatedPlugin
from calbridge.errors import PluginError
from calbridge.registry import EMULATOR_GROUP, TEST_GROUP, TEST_PROVIDERS_ENV, Registry
from calbridge.testing.fake import FakePlugin
from calbridge_providers.feishu.emulator import FeishuEmulator
from calbridge_providers.google.emulator import GoogleEmulator
from calbridge_providers.graph.emulator import GraphEmulator

BUILT_IN = {"google": GoogleEmulator, "graph": GraphEmulator, "feishu": FeishuEmulator}


class Stub:
    """A plugin registered in code, shipping no emulator."""

    def __init__(self, name: str) -> None:
        self.name = name

    def parse_auth(self, raw: Mapping[str, Any], *, account: Mapping[str, Any], where: str) -> object:
        return raw

    def create(self, ctx: Any) -> Any:
        raise NotImplementedError


class StubWithEmulator(Stub):
    """One that ships its emulator the older way, through ``create_emulator()``."""

    def create_emulator(self) -> Any:
        return GoogleEmulator()


def isolated(**groups: str) -> Registry:
    return Registry(**{"group": "calbridge.none", "emulator_group": "calbridge.none", **groups})


# -- emulators ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_built_in_emulators_come_from_the_emulator_group(name: str) -> None:
    registry = Registry()
    assert name in {ep.name for ep in entry_points(group=EMULATOR_GROUP)}
    assert not isinstance(registry.get(name), EmulatedPlugin)  # the plugin itself ships none any more
    assert name in registry.emulator_names()
    emulator = registry.emulator(name)
    assert type(emulator) is BUILT_IN[name]
    assert registry.emulator(name) is not emulator  # a fresh one per call


def test_without_the_group_no_built_in_has_an_emulator() -> None:
    registry = Registry(emulator_group="calbridge.none")
    assert not set(BUILT_IN) & set(registry.emulator_names())
    with pytest.raises(PluginError, match="provider 'google' ships no emulator"):
        registry.emulator("google")


def test_create_emulator_is_the_fallback_for_a_plugin_outside_the_group() -> None:
    registry = isolated()
    registry.register("mine", StubWithEmulator("mine"))
    registry.register("bare", Stub("bare"))
    assert registry.emulator_names() == ["mine"]
    assert isinstance(registry.emulator("mine"), GoogleEmulator)
    with pytest.raises(PluginError, match="'bare' ships no emulator"):
        registry.emulator("bare")
    with pytest.raises(PluginError, match="unknown provider 'nope'"):
        registry.emulator("nope")


def test_the_example_plugin_is_found_both_ways() -> None:
    example = pytest.importorskip("calbridge_example", reason="pip install -e examples/calbridge-example-plugin")
    from calbridge_example.emulator import ExampleEmulator

    assert isinstance(Registry().emulator("example"), ExampleEmulator)  # its calbridge.emulators entry point
    fallback = Registry(emulator_group="calbridge.none")  # a calbridge that reads no group: create_emulator()
    assert fallback.emulator_names() == ["example"]
    assert isinstance(example.plugin, EmulatedPlugin)
    assert isinstance(fallback.emulator("example"), ExampleEmulator)


def fake_entry_points(table: dict[str, list[tuple[str, str]]]) -> Any:
    def lookup(*, group: str) -> list[EntryPoint]:
        return [EntryPoint(name=name, value=value, group=group) for name, value in table.get(group, [])]

    return lookup


def test_an_emulator_entry_point_must_make_the_emulator_it_is_named_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_module, "entry_points", fake_entry_points({
        "p": [("google", "calbridge_providers.google:plugin")],
        "e": [("google", "calbridge_providers.graph.emulator:GraphEmulator")],
    }))  # fmt: skip
    with pytest.raises(PluginError, match="emulator entry point 'google' makes an emulator named 'graph'"):
        Registry(group="p", emulator_group="e").emulator("google")


def test_an_emulator_entry_point_that_fails_to_load_names_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_module, "entry_points", fake_entry_points({
        "p": [("google", "calbridge_providers.google:plugin")],
        "e": [("google", "calbridge_no_such_module:Emulator")],
    }))  # fmt: skip
    registry = Registry(group="p", emulator_group="e")
    assert registry.emulator_names() == ["google"]
    with pytest.raises(PluginError, match="emulator 'google' failed to load: ModuleNotFoundError"):
        registry.emulator("google")


def test_an_emulator_without_its_provider_is_not_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    """``calbridge emulate`` would write a config that ``calbridge sync`` rejects."""
    monkeypatch.setattr(registry_module, "entry_points", fake_entry_points({
        "e": [("google", "calbridge_providers.google.emulator:GoogleEmulator")],
    }))  # fmt: skip
    assert Registry(group="p", emulator_group="e").emulator_names() == []


def test_the_old_emulator_protocol_names_still_resolve_with_a_warning() -> None:
    """Plugins written against ``calbridge.provider.EmulatorApp`` keep loading."""
    with pytest.warns(DeprecationWarning, match=r"calbridge\.emulation\.EmulatorApp"):
        from calbridge.provider import EmulatorApp
    with pytest.warns(DeprecationWarning, match=r"calbridge\.emulation\.EmulatedPlugin"):
        from calbridge.provider import EmulatedPlugin as Old
    assert EmulatorApp is emulation.EmulatorApp and Old is emulation.EmulatedPlugin
    with warnings.catch_warnings(), pytest.raises(ImportError):
        warnings.simplefilter("error")
        from calbridge.provider import AsyncCall  # type: ignore[attr-defined]  # noqa: F401  (dead, removed)


# -- test doubles -----------------------------------------------------------------------------------


def test_production_never_lists_or_loads_the_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TEST_PROVIDERS_ENV, raising=False)
    registry = Registry()
    assert "fake" in {ep.name for ep in entry_points(group=TEST_GROUP)}  # installed, in its own group
    assert "fake" not in registry.names() and "fake" not in registry.emulator_names()
    with pytest.raises(PluginError, match="unknown provider 'fake'") as err:
        registry.get("fake")
    assert "fake" not in str(err.value).split("installed:", 1)[1]
    assert "fake" not in entry_points(group=registry_module.GROUP).names


def fake_config(tmp_path: Path) -> Path:
    config = tmp_path / "calbridge.yaml"
    account = {"name": "f", "provider": "fake", "auth": {"kind": "token", "token": "t"},
               "options": {"state": str(tmp_path / "server.json")}}  # fmt: skip
    config.write_text(yaml.safe_dump({"accounts": [account]}))
    return config


def test_calbridge_check_config_in_production_knows_no_fake(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALBRIDGE")}
    proc = subprocess.run([sys.executable, "-m", "calbridge.cli.main", "-c", str(fake_config(tmp_path)),
                           "check-config"], capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("calbridge: accounts[0].provider: unknown provider 'fake'")
    assert "fake" not in line.split("installed:", 1)[1]


def test_the_kit_fixture_shows_the_fake_here_and_to_subprocesses(
    calbridge_test_providers: list[str], tmp_path: Path
) -> None:
    assert calbridge_test_providers == ["fake"]
    assert os.environ[TEST_PROVIDERS_ENV] == "1"
    registry = Registry()
    assert "fake" in registry.names() and isinstance(registry.get("fake"), FakePlugin)
    proc = subprocess.run([sys.executable, "-m", "calbridge.cli.main", "-c", str(fake_config(tmp_path)),
                           "check-config"], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_a_registry_forgets_the_fake_once_the_variable_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry()
    monkeypatch.setenv(TEST_PROVIDERS_ENV, "1")
    assert registry.get("fake").name == "fake"
    monkeypatch.setenv(TEST_PROVIDERS_ENV, "0")
    assert "fake" not in registry.names() and "fake" not in registry.loaded()
    with pytest.raises(PluginError, match="unknown provider 'fake'"):
        registry.get("fake")


def test_a_production_plugin_wins_a_name_a_test_double_also_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_module, "entry_points", fake_entry_points({
        "p": [("google", "calbridge_providers.google:plugin")],
        "t": [("google", "calbridge.testing.fake:plugin"), ("fake", "calbridge.testing.fake:plugin")],
    }))  # fmt: skip
    monkeypatch.setenv(TEST_PROVIDERS_ENV, "1")
    registry = Registry(group="p", test_group="t")
    assert registry.names() == ["fake", "google"]
    assert registry.get("google").name == "google"
    assert Registry(group="p", test_group=None).names() == ["google"]  # a registry may opt out
