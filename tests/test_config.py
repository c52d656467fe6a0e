"""Config loading: errors name the place, env vars, paths, and the CLI's exit 2."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

import calbridge
from calbridge.config import AccountConfig, Config, load_config, parse_duration
from calbridge.engine import SyncEngine
from calbridge.errors import ConfigError
from calbridge.provider import ProviderContext
from calbridge.registry import TEST_PROVIDERS_ENV, Registry, default_registry
from calbridge_providers.google import ServiceAccountAuth
from calbridge_providers.google import plugin as google

# GOOD names the testing kit's `fake` provider: visible here, and to the CLI subprocesses below.
pytestmark = pytest.mark.usefixtures("calbridge_test_providers")

GOOD = """
store: sqlite:///data/mirror.db
window: {past: 2w, future: 90d}
history: 365d
accounts:
  - name: f
    provider: fake
    auth: {kind: token, token: "${TOK}"}
    options: {state: /tmp/x.json}
    calendars: [a, b]
"""


def write(tmp: Path, text: str) -> Path:
    p = tmp / "c.yaml"
    p.write_text(text)
    return p


def test_good_config_structures(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD), env={"TOK": "t$x"}, registry=default_registry)
    assert cfg.store_path == tmp_path / "data" / "mirror.db"
    assert cfg.settings.window_past == dt.timedelta(weeks=2)
    assert cfg.settings.history == dt.timedelta(days=365)
    (acc,) = cfg.accounts
    assert acc.calendars == ("a", "b")
    assert acc.auth.token == "t$x"  # type: ignore[attr-defined]
    assert "t$x" not in repr(acc)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (GOOD.replace("provider: fake", "provider: nope"), "accounts[0].provider: unknown provider 'nope'"),
        (GOOD.replace('token: "${TOK}"', "other: 1"), "accounts[0].auth.token: required"),
        (GOOD.replace("past: 2w", "past: 2 weeks"), "window.past: bad duration"),
        (GOOD.replace("${TOK}", "${UNSET_VAR_XYZ}"), "accounts[0].auth.token: environment variable UNSET_VAR_XYZ"),
        (GOOD.replace("    provider: fake\n", ""), "accounts[0].provider: required"),
        (GOOD.replace("history: 365d", "histroy: 365d"), "histroy: unknown key"),
        (GOOD + "  - name: f\n    provider: fake\n    auth: {kind: token, token: x}\n", "accounts[1].name: duplicate"),
        ("accounts: [1, 2]", "accounts[0]"),
        ("store: [", "c.yaml:1"),
    ],
)
def test_bad_config_names_the_place(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), env={"TOK": "t"}, registry=default_registry)
    assert where in str(err.value)


def test_durations() -> None:
    assert parse_duration("45m") == dt.timedelta(minutes=45)
    with pytest.raises(ValueError):
        parse_duration("3y")


@pytest.mark.parametrize("command", ["check-config", "sync"])
@pytest.mark.parametrize(
    ("text", "where"),
    [
        (GOOD.replace("provider: fake", "provider: nope"), "accounts[0].provider: unknown provider"),
        (GOOD.replace('token: "${TOK}"', "other: 1"), "accounts[0].auth.token: required"),
        (GOOD.replace("past: 2w", "past: soon"), "window.past: bad duration"),
        (GOOD.replace("${TOK}", "${UNSET_VAR_XYZ}"), "accounts[0].auth.token: environment variable UNSET_VAR_XYZ"),
    ],
)
def test_cli_bad_config_exits_2_with_one_line(tmp_path: Path, command: str, text: str, where: str) -> None:
    p = write(tmp_path, text)
    proc = subprocess.run(
        [sys.executable, "-m", "calbridge.cli.main", command, "-c", str(p)],
        capture_output=True,
        text=True,
        env={"TOK": "t", "PATH": "/usr/bin", TEST_PROVIDERS_ENV: "1"},
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"calbridge: {where}"), proc.stderr
    assert not (tmp_path / "data").exists()  # nothing written for a bad config


def test_events_does_not_need_secrets(tmp_path: Path) -> None:
    p = write(tmp_path, GOOD)
    proc = subprocess.run(
        [sys.executable, "-m", "calbridge.cli.main", "-c", str(p), "events"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin", TEST_PROVIDERS_ENV: "1"},
    )
    assert proc.returncode == 1 and "run `calbridge sync` first" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "calbridge.cli.main", "-c", str(p), "events", "--account", "zzz"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "unknown account 'zzz'" in proc.stderr


# -- Config.base_dir: the one parse_auth call site always knows the config's folder ----------------


class CapturingGoogle:
    """The real google plugin's ``parse_auth``; ``create`` keeps the account the engine built it for."""

    name = "google"

    def __init__(self) -> None:
        self.accounts: list[AccountConfig] = []

    def parse_auth(self, raw: Mapping[str, Any], *, account: Mapping[str, Any], where: str) -> object:
        return google.parse_auth(raw, account=account, where=where)

    def create(self, ctx: ProviderContext) -> Any:
        self.accounts.append(ctx.account)
        return NoProvider()


class NoProvider:
    async def aclose(self) -> None:
        return None


SERVICE_ACCOUNT = {"kind": "service_account", "key_file": "keys/sa.json"}


def key_in(folder: Path) -> Path:
    key = folder / "keys" / "sa.json"
    key.parent.mkdir(parents=True)
    key.write_text("{}")  # parse_auth checks that it exists; it does not read it
    return key


async def structured_by_the_engine(config: Config) -> Any:
    """The auth the engine hands the provider it builds for the config's only account."""
    plugin = CapturingGoogle()
    registry = Registry(group="calbridge.none")
    registry.register("google", plugin)
    async with SyncEngine(config, store=None, registry=registry) as engine:  # type: ignore[arg-type]
        engine.provider(config.accounts[0])
    (account,) = plugin.accounts
    return account.auth


async def test_a_config_built_in_code_resolves_a_relative_key_file_against_its_base_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = key_in(tmp_path / "conf")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no keys/ here: resolving against the working directory fails
    account = AccountConfig(name="g", provider="google", auth=dict(SERVICE_ACCOUNT))
    config = Config(store_path=tmp_path / "m.db", accounts=(account,), base_dir=tmp_path / "conf")
    auth = await structured_by_the_engine(config)
    assert isinstance(auth, ServiceAccountAuth) and auth.key_file == key


async def test_a_config_built_in_code_defaults_its_base_dir_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = key_in(tmp_path)
    monkeypatch.chdir(tmp_path)
    account = AccountConfig(name="g", provider="google", auth=dict(SERVICE_ACCOUNT))
    config = Config(store_path=tmp_path / "m.db", accounts=(account,))
    assert config.base_dir == tmp_path
    auth = await structured_by_the_engine(config)
    assert isinstance(auth, ServiceAccountAuth) and auth.key_file == key


@pytest.mark.parametrize("resolve_auth", [True, False], ids=["structured-on-load", "structured-by-the-engine"])
async def test_a_loaded_config_resolves_a_relative_key_file_against_the_file_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resolve_auth: bool
) -> None:
    key = key_in(tmp_path / "conf")
    path = tmp_path / "conf" / "calbridge.yaml"
    path.write_text(yaml.safe_dump({"accounts": [{"name": "g", "provider": "google", "auth": SERVICE_ACCOUNT}]}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    registry = Registry(group="calbridge.none")
    registry.register("google", CapturingGoogle())
    config = load_config(path, env={}, registry=registry, resolve_auth=resolve_auth)
    assert config.base_dir == tmp_path / "conf"
    auth = await structured_by_the_engine(config)
    assert isinstance(auth, ServiceAccountAuth) and auth.key_file == key


def test_parse_auth_is_called_from_one_place_in_the_core() -> None:
    """Loading a file and the engine both go through ``structure_auth``; a second caller would again
    be free to forget the config folder."""
    root = Path(calbridge.__file__).parent
    callers = sorted(
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "testing" not in path.relative_to(root).parts and ".parse_auth(" in path.read_text(encoding="utf-8")
    )
    assert callers == ["config/_auth.py"]
