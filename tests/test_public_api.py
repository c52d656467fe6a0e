"""``import calbridge`` is a curated surface: exactly the documented ``__all__``, each name the object
its home module defines, cheap to import, and enough for every README code sample."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import calbridge

README = Path(__file__).resolve().parents[1] / "README.md"

HOMES = {
    "calbridge._run": ["CalendarResult", "ChangeBatch", "SyncReport"],
    "calbridge.config": ["AccountConfig", "Config", "Settings", "load_config"],
    "calbridge.cursor": ["Cursor"],
    "calbridge.engine": ["SyncEngine"],
    "calbridge.errors": [
        "AuthError", "CalbridgeError", "ConfigError", "CursorExpired", "PluginError", "ProviderError",
        "RateLimited", "StoreBusy", "StoreError", "TransientError",
    ],
    "calbridge.model": [
        "Attendee", "Calendar", "Change", "Delete", "Event", "EventKey", "Kind", "Person", "Status", "Upsert",
        "When", "Window",
    ],
    "calbridge.provider": [
        "Capabilities", "Expansion", "Page", "Provider", "ProviderContext", "ProviderPlugin", "Quarantined",
    ],
    "calbridge.registry": ["Registry"],
    "calbridge.store": ["SqliteStore", "Store"],
}  # fmt: skip


def test_all_is_exactly_the_documented_surface() -> None:
    expected = [*(name for names in HOMES.values() for name in names), "__version__"]
    assert sorted(calbridge.__all__) == sorted(expected)
    assert len(set(calbridge.__all__)) == len(calbridge.__all__)


@pytest.mark.parametrize("home", sorted(HOMES))
def test_each_name_is_the_object_its_home_module_defines(home: str) -> None:
    module = importlib.import_module(home)
    for name in HOMES[home]:
        assert getattr(calbridge, name) is getattr(module, name), name
        assert name in dir(calbridge)


def test_a_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from calbridge import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(calbridge.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'SyncEngin'"):
        calbridge.SyncEngin  # type: ignore[attr-defined]  # noqa: B018


def test_import_calbridge_loads_neither_the_engine_nor_the_kit_nor_a_provider() -> None:
    """The CLI and the pytest plugin (loaded in every pytest run where calbridge is installed) import
    ``calbridge`` first: the engine (aiohttp), the config loader and the store load on first use."""
    probe = "import sys, calbridge; print(' '.join(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = set(proc.stdout.split())
    heavy = {"aiohttp", "yaml", "cattrs", "sqlite3", "calbridge.engine", "calbridge.config", "calbridge.store",
             "calbridge.registry", "calbridge.testing", "calbridge_providers"}  # fmt: skip
    assert loaded & heavy == set()
    assert "calbridge.model" in loaded  # the probe did import calbridge


def python_samples() -> list[str]:
    # A sample inside a list item is indented with it.
    found = re.findall(r"^( *)```python\n(.*?)^ *```", README.read_text(encoding="utf-8"), flags=re.S | re.M)
    return [textwrap.dedent(body) for _, body in found]


def imports_in(sample: str) -> list[tuple[str, list[str]]]:
    return [
        (node.module, [alias.name for alias in node.names])
        for node in ast.walk(ast.parse(sample))
        if isinstance(node, ast.ImportFrom) and node.module is not None
    ]


def test_the_library_sample_imports_from_calbridge_itself() -> None:
    imported = [names for sample in python_samples() for module, names in imports_in(sample) if module == "calbridge"]
    assert imported, "the README's library sample no longer imports from calbridge"
    assert {"SyncEngine", "load_config", "SqliteStore"} <= {name for names in imported for name in names}


@pytest.mark.parametrize("index", range(len(python_samples())))
def test_every_name_a_readme_sample_imports_exists(index: int) -> None:
    for module, names in imports_in(python_samples()[index]):
        if module.split(".")[0] not in ("calbridge", "calbridge_providers"):
            continue
        if module == "calbridge":
            assert set(names) <= set(calbridge.__all__), names
        imported = importlib.import_module(module)
        for name in names:
            assert hasattr(imported, name), f"README: from {module} import {name}"
