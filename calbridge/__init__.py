"""calbridge: a faithful, incrementally synced mirror of Feishu/Lark, Microsoft Graph and Google
calendars behind one event model."""

from __future__ import annotations

from .cursor import Cursor
from .errors import CalbridgeError, ConfigError, CursorExpired, ProviderError
from .model import Attendee, Calendar, Change, Delete, Event, EventKey, Kind, Person, Upsert, When, Window
from .provider import Capabilities, Expansion, Page, Provider, ProviderContext, ProviderPlugin

__version__ = "0.1.0"

__all__ = [
    "Attendee",
    "CalbridgeError",
    "Calendar",
    "Capabilities",
    "Change",
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
    "Provider",
    "ProviderContext",
    "ProviderError",
    "ProviderPlugin",
    "Upsert",
    "When",
    "Window",
    "__version__",
]
