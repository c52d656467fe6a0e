"""The ``accounts`` entries: which plugin, where, which calendars, and the plugin-structured ``auth``."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ConfigError, PluginError
from ._auth import structure_auth

if TYPE_CHECKING:
    from ..registry import Registry
    from ._raw import RawAccount


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
    # Raw: the file's mapping, None (absent) or False (`push: false`). Structured (see structure_auth):
    # False, None (the plugin cannot push) or the plugin's frozen push settings (secrets inside).
    push: object = attrs.field(default=None, repr=False)


def _calendars(raw: list[str] | str | None, where: str) -> tuple[str, ...] | None:
    if raw is None or raw == "all":
        return None
    if isinstance(raw, str):
        return (raw,)
    if not raw:
        raise ConfigError("empty list (omit it or say `all`)", where=f"{where}.calendars")
    dup = sorted({c for c in raw if raw.count(c) > 1})
    if dup:
        raise ConfigError(f"calendar {dup[0]!r} listed twice", where=f"{where}.calendars")
    return tuple(raw)


def _account(acc: RawAccount, where: str, base_dir: Path) -> AccountConfig:
    """One file entry as an :class:`AccountConfig`, its ``auth`` still raw."""
    calendars = _calendars(acc.calendars, where)
    if acc.base_url is not None and not re.match(r"^https?://[^/\s]+", acc.base_url):
        raise ConfigError("expected an http(s):// URL", where=f"{where}.base_url")
    kind = acc.auth.get("kind") if isinstance(acc.auth, dict) else None
    if acc.push is True:
        raise ConfigError("expected a mapping of push settings, or false", where=f"{where}.push")
    ca = None
    if acc.ca_file:
        ca = Path(acc.ca_file).expanduser()
        ca = ca if ca.is_absolute() else base_dir / ca
    return AccountConfig(
        name=acc.name,
        provider=acc.provider,
        auth=acc.auth,
        auth_kind=str(kind) if kind is not None else None,
        base_url=acc.base_url.rstrip("/") if acc.base_url else None,
        ca_file=ca,
        calendars=calendars,
        user=acc.user,
        options=acc.options,
        push=acc.push,
    )


def parse_accounts(
    raw: Sequence[RawAccount], *, base_dir: Path, registry: Registry | None, resolve_auth: bool
) -> tuple[AccountConfig, ...]:
    """The file's accounts, each ``auth`` structured by its plugin (when there is a registry and
    ``resolve_auth``). Raises :class:`ConfigError` naming the place; none at all is an error too."""
    seen: set[str] = set()
    out: list[AccountConfig] = []
    for i, acc in enumerate(raw):
        where = f"accounts[{i}]"
        if not acc.name:
            raise ConfigError("required", where=f"{where}.name")
        if acc.name in seen:
            raise ConfigError(f"duplicate account name {acc.name!r}", where=f"{where}.name")
        seen.add(acc.name)
        account = _account(acc, where, base_dir)
        if registry is not None:
            try:
                plugin = registry.get(acc.provider)
            except PluginError as exc:
                raise ConfigError(str(exc), where=f"{where}.provider") from None
            if resolve_auth:
                if account.ca_file is not None and not account.ca_file.is_file():
                    raise ConfigError(f"no such file: {account.ca_file}", where=f"{where}.ca_file")
                account = structure_auth(plugin, account, base_dir=base_dir, where=f"{where}.auth")
        out.append(account)
    if not out:  # an empty file included: nothing to sync is a mistake, not a no-op
        raise ConfigError("none configured", where="accounts")
    return tuple(out)
