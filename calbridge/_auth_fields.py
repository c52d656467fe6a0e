"""``auth_fields``: the check every provider plugin's ``parse_auth`` runs over an account's ``auth`` keys.

Plugins import it from :mod:`calbridge.config`, which re-exports it.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import ConfigError


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
