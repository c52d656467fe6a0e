"""The ``store`` value: ``sqlite:///PATH``, ``postgresql://…`` (or ``postgres://``), or a mapping
``{url: …, pool: 10, statement_timeout: 30s}``; ``${VAR}`` is expanded before this reads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from ..errors import ConfigError
from ._settings import parse_duration

_POSTGRES = ("postgresql://", "postgres://")
_KEYS = ("url", "pool", "statement_timeout")


@attrs.frozen(kw_only=True)
class StoreOptions:
    """How a server store is used: the most connections a process opens, and the seconds a statement
    may run (None: the server's setting)."""

    pool: int = 10
    statement_timeout: float | None = None


@attrs.frozen(kw_only=True)
class StoreSpec:
    """The parsed ``store``: a SQLite file, or a PostgreSQL DSN with its options."""

    path: Path
    url: str | None = None
    options: StoreOptions = attrs.field(factory=StoreOptions)


def _sqlite_path(url: str, base: Path) -> Path:
    raw = url[len("sqlite:///") :]
    if not raw:
        raise ConfigError("the sqlite store needs a path", where="store")
    path = Path(raw).expanduser()
    return path if path.is_absolute() else base / path


def parse_store(value: str | dict[str, Any], base: Path) -> StoreSpec:
    """``value`` as a :class:`StoreSpec`; relative SQLite paths are read against ``base``."""
    options: dict[str, Any] = {}
    if isinstance(value, dict):
        unknown = sorted(set(map(str, value)) - set(_KEYS))
        if unknown:
            raise ConfigError("unknown key", where=f"store.{unknown[0]}")
        if not isinstance(value.get("url"), str):
            raise ConfigError("expected a store URL (sqlite:///PATH or postgresql://…)", where="store.url")
        url, options = value["url"], value
    else:
        url = value
    default = base / "calbridge.db"  # what a PostgreSQL config keeps as ``store_path``: unused
    if url.startswith("sqlite:///"):
        extra = sorted(set(options) - {"url"})
        if extra:
            raise ConfigError("only a PostgreSQL store takes options", where=f"store.{extra[0]}")
        return StoreSpec(path=_sqlite_path(url, base))
    if not url.startswith(_POSTGRES):
        raise ConfigError("expected sqlite:///PATH or postgresql://… (postgres://…)", where="store")
    if len(url) == len(url.split("://")[0]) + 3:
        raise ConfigError("the PostgreSQL store needs a host or a database", where="store")
    return StoreSpec(path=default, url=url, options=_options(options))


def _options(raw: dict[str, Any]) -> StoreOptions:
    pool = raw.get("pool", 10)
    if isinstance(pool, bool) or not isinstance(pool, int) or not 1 <= pool <= 1000:
        raise ConfigError(f"expected a number of connections from 1 to 1000, got {pool!r}", where="store.pool")
    timeout = raw.get("statement_timeout")
    seconds: float | None = None
    if timeout is not None:
        try:
            seconds = parse_duration(timeout).total_seconds()
        except ValueError as exc:
            raise ConfigError(str(exc), where="store.statement_timeout") from None
        if seconds <= 0:
            raise ConfigError("expected a positive duration like 30s", where="store.statement_timeout")
    return StoreOptions(pool=pool, statement_timeout=seconds)
