"""``${VAR}`` in config values, read from the environment (``$$`` is a literal ``$``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_vars(value: Any, where: str, env: Mapping[str, str]) -> Any:
    """``value`` with every ``${VAR}`` in its strings replaced; an unset one names its place."""
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
        return [expand_vars(v, f"{where}[{i}]", env) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: expand_vars(v, f"{where}.{k}" if where else str(k), env) for k, v in value.items()}
    return value


def expand_document(data: dict[str, Any], env: Mapping[str, str], *, auth: bool) -> dict[str, Any]:
    """The document with its variables expanded; ``auth`` blocks only when ``auth`` (commands that read
    the store need no secrets, so an unset secret must not stop them). Shapes are checked already."""
    expanded: dict[str, Any] = expand_vars({k: v for k, v in data.items() if k != "accounts"}, "", env)
    accounts = []
    for i, acc in enumerate(data.get("accounts") or ()):
        entry = expand_vars({k: v for k, v in acc.items() if k != "auth"}, f"accounts[{i}]", env)
        if "auth" in acc:
            entry["auth"] = expand_vars(acc["auth"], f"accounts[{i}].auth", env) if auth else acc["auth"]
        accounts.append(entry)
    expanded["accounts"] = accounts
    return expanded
