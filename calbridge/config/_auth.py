"""An account's ``auth`` and its plugin: :func:`structure_auth`, the one place calbridge calls a
plugin's ``parse_auth``, and :func:`auth_fields`, the check every plugin's ``parse_auth`` runs over
the keys. Plugins import both from :mod:`calbridge.config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from ..errors import ConfigError
from ..toolkit.scrub import register_secrets_of

if TYPE_CHECKING:
    from ..provider import ProviderPlugin
    from ._accounts import AccountConfig


def structure_auth(plugin: ProviderPlugin, account: AccountConfig, *, base_dir: Path, where: str) -> AccountConfig:
    """``account`` with its raw ``auth`` mapping structured by ``plugin`` (unchanged when already structured).

    Loading a file and the engine (a :class:`~calbridge.config.Config` built in code, or loaded with
    ``resolve_auth=False``) both come here, so the plugin always sees the same account fields plus
    ``config_dir`` (``base_dir``), against which it resolves relative paths (Google's ``key_file``).

    Raises:
        ConfigError: from the plugin, naming the key under ``where``.
    """
    fields = {**attrs.asdict(account, recurse=False), "config_dir": str(base_dir)}
    if isinstance(account.auth, Mapping):
        account = attrs.evolve(account, auth=plugin.parse_auth(account.auth, account=fields, where=where))
    register_secrets_of(account.auth)  # its repr=False fields, for toolkit.scrub
    return _structure_push(plugin, account, fields=fields, where=where.rsplit(".", 1)[0] + ".push")


def _structure_push(
    plugin: ProviderPlugin, account: AccountConfig, *, fields: dict[str, object], where: str
) -> AccountConfig:
    """The account's ``push`` structured by a plugin that can push (``push: false`` stays off; a plugin
    that cannot push leaves ``None``, and a ``push`` mapping for it is an error naming the place)."""
    from ..push import push_plugin

    raw = account.push
    if raw is False or (raw is not None and not isinstance(raw, Mapping)):
        return account  # off, or already structured
    pusher = push_plugin(plugin)
    if pusher is None:
        if raw is not None:
            raise ConfigError(f"provider {account.provider!r} cannot push", where=where)
        return account
    return attrs.evolve(account, push=pusher.parse_push(raw, account=fields, where=where))


def auth_fields(
    raw: object, *, where: str, provider: str, kinds: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]
) -> tuple[str, dict[str, str]]:
    """Check an ``auth`` mapping against ``kinds`` (kind → (required keys, optional keys)), for plugins.

    Returns the kind and its string values (optional keys only when given). Raises
    :class:`ConfigError` naming the key: ``accounts[1].auth.client_secret: required``, an unknown
    kind, an unknown key, or a value that is not a string.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError("expected a mapping with a `kind`", where=where)
    kind = raw.get("kind")
    names = ", ".join(kinds)
    if kind is None:
        raise ConfigError(f"required (one of {names})", where=f"{where}.kind")
    if kind not in kinds:
        raise ConfigError(f"unknown kind {kind!r} ({provider} accepts {names})", where=f"{where}.kind")
    required, optional = kinds[kind]
    for key in raw:
        if key != "kind" and key not in required and key not in optional:
            raise ConfigError(f"unknown key for kind {kind}", where=f"{where}.{key}")
    values: dict[str, str] = {}
    for key in (*required, *optional):
        value = raw.get(key)
        if value is None or value == "":
            if key in required:
                raise ConfigError("required", where=f"{where}.{key}")
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ConfigError(f"expected a string, got {type(value).__name__}", where=f"{where}.{key}")
        values[key] = str(value)
    return str(kind), values
