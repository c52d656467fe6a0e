"""The file's shape as cattrs structures it (unknown keys are errors), and its errors as places
(``accounts[1].auth``) instead of Python internals."""

from __future__ import annotations

from typing import Any

import attrs
import cattrs

from ..errors import ConfigError


@attrs.frozen(kw_only=True)
class RawWindow:
    past: str = "30d"
    future: str = "365d"
    slack: str = "30d"


@attrs.frozen(kw_only=True)
class RawAccount:
    name: str
    provider: str
    auth: dict[str, Any]
    base_url: str | None = None
    ca_file: str | None = None
    calendars: list[str] | str | None = None
    user: str | None = None
    options: dict[str, Any] = attrs.field(factory=dict)
    push: dict[str, Any] | bool | None = None


@attrs.frozen(kw_only=True)
class RawService:
    listen: str = "127.0.0.1:8765"
    public_url: str | None = None
    poll: str = "15m"
    lease: str = "60s"
    drain: str = "30s"


@attrs.frozen(kw_only=True)
class RawFeed:
    keep: str = "30d"


@attrs.frozen(kw_only=True)
class RawConfig:
    store: str | dict[str, Any] = "sqlite:///calbridge.db"  # read by _store
    window: RawWindow = attrs.field(factory=RawWindow)
    history: str | None = None
    limits: dict[str, Any] = attrs.field(factory=dict)
    service: RawService = attrs.field(factory=RawService)
    feed: RawFeed = attrs.field(factory=RawFeed)
    accounts: list[RawAccount] = attrs.field(factory=list)


_converter = cattrs.Converter(forbid_extra_keys=True)


def _strict_str(value: object, _: type) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return str(value)


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {type(value).__name__}")
    return value


_converter.register_structure_hook(str, _strict_str)
_converter.register_structure_hook(
    list[str] | str | None,
    lambda v, _: None if v is None else (v if isinstance(v, str) else [_strict_str(x, str) for x in _list(v)]),
)


def _push(value: object, _: type) -> dict[str, Any] | bool | None:
    if value is None or isinstance(value, bool | dict):
        return value
    raise ValueError(f"expected a mapping of push settings, or false, got {type(value).__name__}")


_converter.register_structure_hook(dict[str, Any] | bool | None, _push)


def _store(value: object, _: type) -> str | dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        return value
    raise ValueError(f"expected a store URL or a mapping with url, got {type(value).__name__}")


_converter.register_structure_hook(str | dict[str, Any], _store)


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


def check_shapes(data: dict[Any, Any]) -> None:
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
    if "limits" in data and not isinstance(data["limits"], dict):
        raise ConfigError("expected a mapping of limits", where="limits")
    if "window" in data and not isinstance(data["window"], dict):
        raise ConfigError("expected a mapping with past and future", where="window")
    for section in ("service", "feed"):
        if data.get(section) is not None and not isinstance(data[section], dict):
            raise ConfigError("expected a mapping", where=section)


def structure(data: dict[str, Any]) -> RawConfig:
    """``data`` (variables expanded) as a :class:`RawConfig`; the first problem names its place."""
    try:
        return _converter.structure(data, RawConfig)
    except Exception as exc:  # cattrs raises ExceptionGroups; report the first place
        problems = _path_of(exc) or [("$", str(exc))]
        where, msg = problems[0]
        raise ConfigError(msg, where=where or "$") from None
