"""The whole config: where the store is, the shared settings, the accounts, and the folder relative
paths are read against."""

from __future__ import annotations

from pathlib import Path

import attrs

from ..errors import ConfigError
from ._accounts import AccountConfig
from ._service import FeedSettings, ServiceSettings
from ._settings import Settings
from ._store import StoreOptions


@attrs.frozen(kw_only=True)
class Config:
    """``base_dir`` is the config file's folder (the working directory when built in code): the engine
    structures a raw ``auth`` against it, so a relative Google ``key_file`` means the same either way.

    ``store_url`` set (a ``postgresql://`` DSN): the store is PostgreSQL, with ``store_options``, and
    ``store_path`` (the SQLite file otherwise) is unused; :func:`calbridge.store.open_store` picks."""

    store_path: Path
    store_url: str | None = attrs.field(default=None, repr=False)  # a DSN may carry a password
    store_options: StoreOptions = attrs.field(factory=StoreOptions)
    settings: Settings = attrs.field(factory=Settings)
    service: ServiceSettings = attrs.field(factory=ServiceSettings)
    feed: FeedSettings = attrs.field(factory=FeedSettings)
    accounts: tuple[AccountConfig, ...] = ()
    source: Path | None = None
    base_dir: Path = attrs.field(factory=Path.cwd)

    def account(self, name: str) -> AccountConfig:
        for acc in self.accounts:
            if acc.name == name:
                return acc
        raise ConfigError(f"unknown account {name!r}", where="--account")
