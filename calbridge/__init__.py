"""calbridge: a faithful, incrementally synced mirror of Feishu/Lark, Microsoft Graph and Google
calendars behind one event model.

``import calbridge`` gives what the README uses, and exactly ``__all__``:

- running it: :class:`SyncEngine`, its :class:`SyncReport` (per calendar a :class:`CalendarResult`)
  and the :class:`ChangeBatch` values listeners hear;
- the config: :func:`load_config`, :class:`Config`, :class:`AccountConfig`, :class:`Settings`;
- the store: the :class:`Store` protocol and :class:`SqliteStore`;
- the model: :class:`Event` (:class:`EventKey`, :class:`Kind`, :class:`Status`, :class:`When`,
  :class:`Person`, :class:`Attendee`), :class:`Calendar`, :class:`Window`, and the changes
  :class:`Change` = :class:`Upsert` | :class:`Delete`;
- the errors: :class:`CalbridgeError` and the ones a caller tells apart (config, plugin, store,
  provider, cursor, rate limit, transient, a held sweep);
- the provider seam, for plugin authors: :class:`ProviderPlugin`, :class:`Provider`,
  :class:`ProviderContext`, :class:`Capabilities`, :class:`Page`, :class:`Expansion`,
  :class:`Quarantined`, :class:`Cursor`, and the :class:`Registry` that finds plugins.

The engine, the config loader, the store and the registry load on first use (they bring aiohttp,
cattrs, YAML and SQLite), so ``import calbridge`` stays cheap for the CLI and the pytest plugin.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._run import CalendarResult, ChangeBatch, SyncReport
from .cursor import Cursor
from .errors import (
    AuthError,
    CalbridgeError,
    ConfigError,
    CursorExpired,
    PluginError,
    ProviderError,
    RateLimited,
    StoreBusy,
    StoreError,
    TransientError,
)
from .model import Attendee, Calendar, Change, Delete, Event, EventKey, Kind, Person, Status, Upsert, When, Window
from .provider import Capabilities, Expansion, Page, Provider, ProviderContext, ProviderPlugin, Quarantined

if TYPE_CHECKING:
    from .config import AccountConfig, Config, Settings, load_config
    from .engine import SyncEngine
    from .registry import Registry
    from .store import SqliteStore, Store

__version__ = "0.1.0"

_LAZY = {
    "AccountConfig": "calbridge.config",
    "Config": "calbridge.config",
    "Registry": "calbridge.registry",
    "Settings": "calbridge.config",
    "SqliteStore": "calbridge.store.sqlite",
    "Store": "calbridge.store.base",
    "SyncEngine": "calbridge.engine",
    "load_config": "calbridge.config",
}

__all__ = [
    "AccountConfig",
    "Attendee",
    "AuthError",
    "CalbridgeError",
    "Calendar",
    "CalendarResult",
    "Capabilities",
    "Change",
    "ChangeBatch",
    "Config",
    "ConfigError",
    "Cursor",
    "CursorExpired",
    "Delete",
    "Event",
    "EventKey",
    "Expansion",
    "Kind",
    "Page",
    "Person",
    "PluginError",
    "Provider",
    "ProviderContext",
    "ProviderError",
    "ProviderPlugin",
    "Quarantined",
    "RateLimited",
    "Registry",
    "Settings",
    "SqliteStore",
    "Status",
    "Store",
    "StoreBusy",
    "StoreError",
    "SyncEngine",
    "SyncReport",
    "TransientError",
    "Upsert",
    "When",
    "Window",
    "__version__",
    "load_config",
]


if not TYPE_CHECKING:  # type checkers read the imports above; a typo stays an error for them

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # resolved once
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
