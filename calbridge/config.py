"""The YAML config (see the contract) → frozen attrs values, with errors that name the place.

Loading has two phases: cattrs structures the core keys into :class:`RawConfig` (unknown keys are
errors, so typos surface), then each account's plugin structures its own ``auth`` mapping. ``${VAR}``
is read from the environment (``$$`` is a literal ``$``); relative paths are relative to the
config file's folder. Library users can build :class:`Config` directly in code.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import cattrs
import yaml

from ._auth_fields import auth_fields as auth_fields  # re-exported for plugins
from .errors import ConfigError, PluginError
from .model import Window

if TYPE_CHECKING:
    from .registry import Registry

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def parse_duration(text: object) -> dt.timedelta:
    """``30d`` → 30 days; units s, m, h, d, w."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ValueError(f"expected a duration like 30d, got {text!r}")
    m = _DURATION.match(str(text)) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"bad duration {text!r} (use a number and one of s, m, h, d, w: 30d)")
    return dt.timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


@attrs.frozen(kw_only=True)
class Settings:
    """Window and history, shared by every account."""

    window_past: dt.timedelta = dt.timedelta(days=30)
    window_future: dt.timedelta = dt.timedelta(days=365)
    history: dt.timedelta | None = None

    def window(self, now: dt.datetime) -> Window:
        """The instance window around ``now``, at whole UTC days so it moves once a day."""
        day = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return Window(start=day - self.window_past, end=day + self.window_future + dt.timedelta(days=1))

    def history_floor(self, now: dt.datetime) -> dt.datetime | None:
        return None if self.history is None else now - self.history


def _calendar_ids(value: Iterable[str] | None) -> tuple[str, ...] | None:
    """A list (or any iterable, or one id) of calendar ids as the tuple a frozen config holds."""
    return None if value is None else (value,) if isinstance(value, str) else tuple(value)


@attrs.frozen(kw_only=True)
class AccountConfig:
    """One account: which plugin, where, and the plugin-structured ``auth``."""

    name: str
    provider: str
    auth: object = attrs.field(default=None, repr=False)  # secrets live here
    auth_kind: str | None = None
    base_url: str | None = None
    ca_file: Path | None = None
    # None: every calendar the account can see; a list is accepted and kept as a tuple.
    calendars: tuple[str, ...] | None = attrs.field(default=None, converter=_calendar_ids)
    user: str | None = None
    options: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Config:
    store_path: Path
    settings: Settings = attrs.field(factory=Settings)
    accounts: tuple[AccountConfig, ...] = ()
    source: Path | None = None

    def account(self, name: str) -> AccountConfig:
        for acc in self.accounts:
            if acc.name == name:
                return acc
        raise ConfigError(f"unknown account {name!r}", where="--account")


# -- raw, cattrs-structured shape of the file ------------------------------------------------


@attrs.frozen(kw_only=True)
class _RawWindow:
    past: str = "30d"
    future: str = "365d"


@attrs.frozen(kw_only=True)
class _RawAccount:
    name: str
    provider: str
    auth: dict[str, Any]
    base_url: str | None = None
    ca_file: str | None = None
    calendars: list[str] | str | None = None
    user: str | None = None
    options: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class _RawConfig:
    store: str = "sqlite:///calbridge.db"
    window: _RawWindow = attrs.field(factory=_RawWindow)
    history: str | None = None
    accounts: list[_RawAccount] = attrs.field(factory=list)


_converter = cattrs.Converter(forbid_extra_keys=True)


def _strict_str(value: object, _: type) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return str(value)


_converter.register_structure_hook(str, _strict_str)
_converter.register_structure_hook(
    list[str] | str | None,
    lambda v, _: None if v is None else (v if isinstance(v, str) else [_strict_str(x, str) for x in _list(v)]),
)


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {type(value).__name__}")
    return value


def _path_of(exc: BaseException, path: str = "") -> list[tuple[str, str]]:
    """Flatten a cattrs error tree into (``accounts[1].auth``, message) pairs."""
    out: list[tuple[str, str]] = []
    if isinstance(exc, cattrs.ClassValidationError | cattrs.IterableValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            name = note.name if hasattr(note, "name") else getattr(note, "index", "")
            step = f"[{name}]" if isinstance(name, int) else (f".{name}" if path else str(name))
            out.extend(_path_of(sub, path + step))
        for sub in without:
            out.extend(_path_of(sub, path))
        return out
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        key = sorted(exc.extra_fields)[0]
        return [((f"{path}.{key}" if path else key), "unknown key")]
    if isinstance(exc, KeyError):
        return [(path, "required")]
    return [(path, str(exc) or type(exc).__name__)]


def _expand_vars(value: Any, where: str, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            name = m.group(1)
            if name not in env:
                raise ConfigError(f"environment variable {name} is not set", where=where)
            return env[name]

        return _VAR.sub(sub, value)
    if isinstance(value, list):
        return [_expand_vars(v, f"{where}[{i}]", env) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _expand_vars(v, f"{where}.{k}" if where else str(k), env) for k, v in value.items()}
    return value


def _store_path(store: str, base: Path) -> Path:
    if not store.startswith("sqlite:///"):
        raise ConfigError("only sqlite:///PATH stores are supported", where="store")
    raw = store[len("sqlite:///") :]
    if not raw:
        raise ConfigError("the sqlite store needs a path", where="store")
    path = Path(raw).expanduser()
    return path if path.is_absolute() else base / path


def _check_shapes(data: dict[Any, Any]) -> None:
    """Type errors cattrs would report as Python internals, said plainly."""
    accounts = data.get("accounts")
    if accounts is not None and not isinstance(accounts, list):
        raise ConfigError("expected a list of accounts", where="accounts")
    for i, acc in enumerate(accounts or ()):
        if not isinstance(acc, dict):
            raise ConfigError("expected a mapping (name, provider, auth, ...)", where=f"accounts[{i}]")
        for key in ("auth", "options"):
            if key in acc and not isinstance(acc[key], dict):
                raise ConfigError("expected a mapping", where=f"accounts[{i}].{key}")
    if "window" in data and not isinstance(data["window"], dict):
        raise ConfigError("expected a mapping with past and future", where="window")


def parse_config(
    data: object,
    *,
    base_dir: Path,
    env: Mapping[str, str] | None = None,
    registry: Registry | None = None,
    resolve_auth: bool = True,
    source: Path | None = None,
) -> Config:
    """Structure a parsed YAML document. With ``resolve_auth=False`` the ``auth`` blocks are neither
    expanded nor checked (``events``/``status`` read the store and need no secrets)."""
    env = os.environ if env is None else env
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the config must be a mapping", where="$")
    if data.get("accounts") is None:  # `accounts:` with nothing under it: none, said below
        data = {**data, "accounts": []}
    auths: list[Any] = []
    if isinstance(data.get("accounts"), list):
        for acc in data["accounts"]:
            auths.append(acc.get("auth") if isinstance(acc, dict) else None)
    _check_shapes(data)
    stripped = {k: v for k, v in data.items() if k != "accounts"}
    expanded = _expand_vars(stripped, "", env)
    if "accounts" in data:
        accounts = data["accounts"]
        if isinstance(accounts, list):
            new_accounts: list[Any] = []
            for i, acc in enumerate(accounts):
                if isinstance(acc, dict):
                    rest = {k: v for k, v in acc.items() if k != "auth"}
                    acc2 = _expand_vars(rest, f"accounts[{i}]", env)
                    if "auth" in acc:
                        auth = acc["auth"]
                        acc2["auth"] = _expand_vars(auth, f"accounts[{i}].auth", env) if resolve_auth else auth
                    new_accounts.append(acc2)
                else:
                    new_accounts.append(acc)
            expanded["accounts"] = new_accounts
        else:
            expanded["accounts"] = accounts
    try:
        raw = _converter.structure(expanded, _RawConfig)
    except Exception as exc:  # cattrs raises ExceptionGroups; report the first place
        problems = _path_of(exc) or [("$", str(exc))]
        where, msg = problems[0]
        raise ConfigError(msg, where=where or "$") from None

    try:
        settings = Settings(
            window_past=parse_duration(raw.window.past),
            window_future=parse_duration(raw.window.future),
            history=None if raw.history is None else parse_duration(raw.history),
        )
    except ValueError as exc:
        key = "history"
        for k in ("past", "future"):
            try:
                parse_duration(getattr(raw.window, k))
            except ValueError:
                key = f"window.{k}"
                break
        raise ConfigError(str(exc), where=key) from None

    seen: set[str] = set()
    accounts_out: list[AccountConfig] = []
    for i, acc in enumerate(raw.accounts):
        where = f"accounts[{i}]"
        if not acc.name:
            raise ConfigError("required", where=f"{where}.name")
        if acc.name in seen:
            raise ConfigError(f"duplicate account name {acc.name!r}", where=f"{where}.name")
        seen.add(acc.name)
        if acc.calendars is None or acc.calendars == "all":
            calendars: tuple[str, ...] | None = None
        elif isinstance(acc.calendars, str):
            calendars = (acc.calendars,)
        else:
            if not acc.calendars:
                raise ConfigError("empty list (omit it or say `all`)", where=f"{where}.calendars")
            dup = sorted({c for c in acc.calendars if acc.calendars.count(c) > 1})
            if dup:
                raise ConfigError(f"calendar {dup[0]!r} listed twice", where=f"{where}.calendars")
            calendars = tuple(acc.calendars)
        if acc.base_url is not None and not re.match(r"^https?://[^/\s]+", acc.base_url):
            raise ConfigError("expected an http(s):// URL", where=f"{where}.base_url")
        kind = acc.auth.get("kind") if isinstance(acc.auth, dict) else None
        ca = None
        if acc.ca_file:
            ca = Path(acc.ca_file).expanduser()
            ca = ca if ca.is_absolute() else base_dir / ca
        account = AccountConfig(
            name=acc.name,
            provider=acc.provider,
            auth=acc.auth,
            auth_kind=str(kind) if kind is not None else None,
            base_url=acc.base_url.rstrip("/") if acc.base_url else None,
            ca_file=ca,
            calendars=calendars,
            user=acc.user,
            options=acc.options,
        )
        if registry is not None:
            try:
                plugin = registry.get(acc.provider)
            except PluginError as exc:
                raise ConfigError(str(exc), where=f"{where}.provider") from None
            if resolve_auth:
                if ca is not None and not ca.is_file():
                    raise ConfigError(f"no such file: {ca}", where=f"{where}.ca_file")
                # Plugins resolve relative paths in their auth keys (key_file) against this folder.
                raw_acc = {**attrs.asdict(acc), "config_dir": str(base_dir)}
                parsed = plugin.parse_auth(acc.auth, account=raw_acc, where=f"{where}.auth")
                account = attrs.evolve(account, auth=parsed)
        accounts_out.append(account)
    if not accounts_out:  # an empty file included: nothing to sync is a mistake, not a no-op
        raise ConfigError("none configured", where="accounts")

    return Config(
        store_path=_store_path(raw.store, base_dir),
        settings=settings,
        accounts=tuple(accounts_out),
        source=source,
    )


def load_config(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    registry: Registry | None = None,
    resolve_auth: bool = True,
) -> Config:
    """Read and structure the YAML file at ``path``.

    ``registry`` defaults to the installed plugins (entry points); each account's ``auth`` is
    structured by its plugin unless ``resolve_auth`` is false.

    Raises:
        ConfigError: naming the place (``accounts[1].auth.client_secret: required``).
    """
    if registry is None:
        from .registry import default_registry

        registry = default_registry
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no config file at {p} (pass -c FILE)", where=str(p)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", where=str(p)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(p)
        problem = str(getattr(exc, "problem", None) or "invalid YAML")
        line = text.splitlines()[mark.line] if mark is not None and mark.line < len(text.splitlines()) else ""
        if "${" in line:
            problem += ' (inside {...} a ${VAR} value must be quoted: "${VAR}")'
        raise ConfigError(problem, where=where) from None
    return parse_config(
        data,
        base_dir=p.resolve().parent,
        env=env,
        registry=registry,
        resolve_auth=resolve_auth,
        source=p,
    )
